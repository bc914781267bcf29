"""The catalogue's records and tables: the products of each site, as the site's systems
(``PUT /v1/catalog``, ``sitecue catalog import``) or its pages (``sitecue('set', {product})``)
describe them. Products a page described are marked ``page``: unverified, they never replace
what the site's systems said (see sitecue.catalog)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

__all__ = [
    "CATALOG_CLAIMS_POSTGRES",
    "CATALOG_CLAIMS_SQLITE",
    "CATALOG_POSTGRES",
    "CATALOG_SQLITE",
    "CLAIM_TTL_MS",
    "PageClaim",
    "Product",
    "ProductSource",
]

ProductSource = Literal["site", "page"]


class Product(msgspec.Struct, frozen=True, omit_defaults=True):
    """One product of a site's catalogue. ``extra`` holds the fields the site declares
    (``catalog.fields``); ``updated`` is epoch ms."""

    id: str
    name: str
    url: str
    image: str | None = None
    price: float | None = None
    category: str | None = None
    in_stock: bool = True
    extra: dict[str, Any] = {}
    source: ProductSource = "site"
    updated: int = 0


# The products, and the columns events carry for them: which products an event is about (a
# JSON array of ids) and a page's description of the product it shows (JSON text).
CATALOG_SQLITE = """
CREATE TABLE products (
    site TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, url TEXT NOT NULL,
    image TEXT, price REAL, category TEXT, in_stock INTEGER NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}', source TEXT NOT NULL DEFAULT 'site',
    updated INTEGER NOT NULL,
    PRIMARY KEY (site, id)
) WITHOUT ROWID;
CREATE INDEX products_category ON products (site, category);
ALTER TABLE events ADD COLUMN products TEXT;
ALTER TABLE events ADD COLUMN detail TEXT;
"""
CATALOG_POSTGRES = """
CREATE TABLE products (
    site TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, url TEXT NOT NULL,
    image TEXT, price DOUBLE PRECISION, category TEXT, in_stock BOOLEAN NOT NULL DEFAULT TRUE,
    extra TEXT NOT NULL DEFAULT '{}', source TEXT NOT NULL DEFAULT 'site',
    updated BIGINT NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE INDEX products_category ON products (site, category);
ALTER TABLE events ADD COLUMN products TEXT;
ALTER TABLE events ADD COLUMN detail TEXT;
"""


class PageClaim(msgspec.Struct, frozen=True):
    """One visitor's sighting of a page's description of a product: the product as the
    page described it, a digest of the description (equal descriptions, equal digests) and
    a digest of the visitor (distinct visitors are counted, never named)."""

    product: Product
    digest: str
    visitor: str


# A description waits this long (epoch ms) for the visitors that confirm it, then is
# forgotten: the claims table holds at most a month of sightings of unconfirmed ones.
CLAIM_TTL_MS = 30 * 86_400_000

# The visitors who saw each description of a product (digests only), until it is taken or
# forgotten; and a counter per site that every change of its products moves on, so each
# worker reloads its in-memory catalogue only when it changed (a read of one row).
CATALOG_CLAIMS_SQLITE = """
CREATE TABLE product_claims (
    site TEXT NOT NULL, id TEXT NOT NULL, digest TEXT NOT NULL, visitor TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (site, id, digest, visitor)
) WITHOUT ROWID;
CREATE INDEX product_claims_at ON product_claims (site, at);
CREATE TABLE catalog_versions (
    site TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL
) WITHOUT ROWID;
"""
CATALOG_CLAIMS_POSTGRES = """
CREATE TABLE product_claims (
    site TEXT NOT NULL, id TEXT NOT NULL, digest TEXT NOT NULL, visitor TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (site, id, digest, visitor)
);
CREATE INDEX product_claims_at ON product_claims (site, at);
CREATE TABLE catalog_versions (site TEXT NOT NULL PRIMARY KEY, version BIGINT NOT NULL);
"""

# Statements both engines run, with ``?`` placeholders (PostgreSQL's are numbered on load).
PRODUCT_COLUMNS = "id, name, url, image, price, category, in_stock, extra, source, updated"
_SET_ALL = ", ".join(f"{c} = excluded.{c}" for c in PRODUCT_COLUMNS.split(", ")[1:])
UPSERT_PRODUCT = (
    f"INSERT INTO products (site, {PRODUCT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    f" ON CONFLICT (site, id) DO UPDATE SET {_SET_ALL}"
)
# A page's description replaces only another page's: the guard is in the statement itself,
# so a product the site's systems write between our read and this write is never replaced.
UPSERT_PAGE_PRODUCT = f"{UPSERT_PRODUCT} WHERE products.source = 'page'"
SELECT_PRODUCT = f"SELECT {PRODUCT_COLUMNS} FROM products WHERE site = ? AND id = ?"
ALL_PRODUCTS = f"SELECT {PRODUCT_COLUMNS} FROM products WHERE site = ? ORDER BY id"
DELETE_PRODUCT = "DELETE FROM products WHERE site = ? AND id = ?"
BUMP_VERSION = (
    "INSERT INTO catalog_versions (site, version) VALUES (?, 1)"
    " ON CONFLICT (site) DO UPDATE SET version = catalog_versions.version + 1"
)
SELECT_VERSION = "SELECT version FROM catalog_versions WHERE site = ?"
INSERT_CLAIM = (
    "INSERT INTO product_claims (site, id, digest, visitor, at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (site, id, digest, visitor) DO NOTHING"
)
COUNT_PRODUCT_CLAIMS = (
    "SELECT COUNT(*) FROM product_claims WHERE site = ? AND id = ? AND digest = ?"
)
SETTLE_CLAIMS = "DELETE FROM product_claims WHERE site = ? AND id = ?"
EXPIRE_CLAIMS = "DELETE FROM product_claims WHERE site = ? AND at < ?"

_encode = msgspec.json.Encoder(order="sorted").encode
_extra = msgspec.json.Decoder(dict[str, Any]).decode


def product_row(site: str, p: Product, source: ProductSource) -> tuple[object, ...]:
    """A product as a row of UPSERT_PRODUCT, written as coming from ``source``."""
    extra = _encode(p.extra).decode()
    return (site, p.id, p.name, p.url, p.image, p.price, p.category, p.in_stock, extra,
            source, p.updated)  # fmt: skip


def product_of_row(row: Any) -> Product:
    """A row of PRODUCT_COLUMNS as a Product (SQLite keeps in_stock as 0 or 1)."""
    price = None if row[4] is None else float(row[4])
    return Product(
        row[0], row[1], row[2], row[3], price, row[5], bool(row[6]), _extra(row[7]), row[8],
        int(row[9]),
    )  # fmt: skip


def same_product(a: Product, b: Product) -> bool:
    """Whether two products say the same (whenever each was written, whoever wrote it)."""
    return msgspec.structs.replace(a, updated=0, source="page") == msgspec.structs.replace(
        b, updated=0, source="page"
    )


def product_list_sql(
    site: str, category: str | None, after: str | None, limit: int
) -> tuple[str, list[object]]:
    """The statement and arguments of one page of a site's products, by id, after the
    cursor ``after`` (an id), narrowed to a ``category``."""
    where, args = ["site = ?"], [site]
    if category is not None:
        where.append("category = ?")
        args.append(category)
    if after is not None:
        where.append("id > ?")
        args.append(after)
    sql = f"SELECT {PRODUCT_COLUMNS} FROM products WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
    return sql, [*args, limit]


def open_claims(claims: Sequence[PageClaim], held: Mapping[str, Product]) -> list[PageClaim]:
    """The claims still worth counting: not about a product the site's systems wrote (a
    page never replaces one), nor saying what the catalogue already says."""
    kept = []
    for claim in claims:
        known = held.get(claim.product.id)
        if known is not None and (known.source == "site" or same_product(known, claim.product)):
            continue
        kept.append(claim)
    return kept


def descriptions(claims: Sequence[PageClaim]) -> dict[tuple[str, str], Product]:
    """Each (product id, digest) claimed, with the product it describes, in order."""
    return {(c.product.id, c.digest): c.product for c in claims}
