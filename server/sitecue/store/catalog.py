"""The catalogue's records and tables: the products of each site, as the site's systems
(``PUT /v1/catalog``, ``sitecue catalog import``) or its pages (``sitecue('set', {product})``)
describe them. Products a page described are marked ``page``: unverified, they never replace
what the site's systems said (see sitecue.catalog)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["CATALOG_POSTGRES", "CATALOG_SQLITE", "Product", "ProductSource"]

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
