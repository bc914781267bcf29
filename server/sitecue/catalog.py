"""The catalogue: each site's products, as its systems and (where it allows) its pages
describe them, and the keys the state cookie names them by.

Interfaces (other modules rely on them):

- ``PRODUCT_ID``: the pattern of a product id (the protocol's).
- ``product_of(catalog, product_id, fields, where="$", now=0) -> Product``: a product as
  the site's systems describe it (``PUT /v1/catalog``), checked; raises BadRequest naming
  ``<where>.<field>``. ``check_product`` returns every problem instead (the imports).
- ``page_product(site, page_url, raw, extra_origins=()) -> (id, detail | None) | None``:
  what decide makes of ``page.data.product``: None when the site has no catalog or the page
  names no product; else the product id and, when the site takes products from its pages
  (``catalog.from_pages``) and the page described one, the description as canonical JSON
  text (the ``detail`` of the ``product_view`` event), else None. A bad description raises
  BadRequest naming ``$.page.data.product.<field>``.
- ``upsert_page_products(store, site, described, confirm, now=None) -> list[str]``: what
  the recommendations job calls with the ``(product id, detail, visitor)`` of the product
  views it reads; a description is taken (source ``page``) once ``confirm`` distinct
  visitors sent it, never over a product of source ``site``. Returns the ids it wrote.

A page's description is the visitor's word: anyone can post a decide call with any page
URL and data. So it is checked as strictly as the site's own, its ``url`` is the page's
own URL (on one of the site's origins; never what the page claims), its image is on one
of those origins, and it is only taken once several visitors agree (see store.catalog).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from .errors import BadRequest, Problem
from .protocol import PRODUCT_ID
from .state import PRODUCT_KEY_BYTES
from .store.catalog import PageClaim, Product

if TYPE_CHECKING:
    from .config import AttributeType, Catalog
    from .rules import CompiledSite
    from .store import Store

__all__ = [
    "BATCH",
    "ESTABLISHED_MS",
    "ESTABLISHED_VIEWS",
    "FIELDS",
    "MAX_CATEGORY",
    "MAX_NAME",
    "MAX_PRICE",
    "MAX_STRING",
    "MAX_URL",
    "PRODUCT_ID",
    "Product",
    "check_product",
    "page_product",
    "page_view",
    "product_key",
    "product_of",
    "store_products",
    "upsert_page_products",
]

log = logging.getLogger("sitecue")

MAX_NAME = 200
MAX_URL = 2048
MAX_CATEGORY = 64
MAX_PRICE = 1e9
MAX_STRING = 256  # a declared string field
BATCH = 1000  # products an import stores in one transaction
FIELDS = ("id", "name", "url", "image", "price", "category", "in_stock")
"""A product's own fields, in the order of a CSV's columns; declared ones follow."""

# fullmatch, not match: ``$`` also matches before a final newline, which an id never has.
_ID = re.compile(PRODUCT_ID)
# A control character (PostgreSQL refuses a NUL in text; the rest have no place in a name),
# and what a URL never holds here: whitespace, quotes and angle brackets (an attribute
# breaking out in a template that forgot to escape), a backslash (browsers read it as ``/``).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f\"'<>\\`]")
_EXPECTED = {
    "id": "1 to 64 letters, digits and _ . : / -, starting with a letter or digit",
    "name": f"a name of 1 to {MAX_NAME} characters, without control characters",
    "url": f"an absolute http(s) URL of at most {MAX_URL} characters",
    "image": f"an http(s) URL or a path starting with / (at most {MAX_URL} characters)",
    "price": f"a finite number from 0 to {MAX_PRICE:.0f}, or null",
    "category": f"a category of 1 to {MAX_CATEGORY} characters, or null",
    "in_stock": "true or false",
}
_TYPED = {
    "string": f"a string of at most {MAX_STRING} characters, or null",
    "number": f"a finite number within ±{MAX_PRICE:.0f}, or null",
    "boolean": "true or false, or null",
}
_canonical = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.Decoder().decode


def product_key(product_id: str) -> bytes:
    """The product's key in the state cookie: 6 bytes of a hash of its id, so a list of
    recent views costs 6 bytes a product, whatever the ids are."""
    return hashlib.blake2b(product_id.encode(), digest_size=PRODUCT_KEY_BYTES).digest()


def _text(value: Any, longest: int) -> bool:
    return type(value) is str and 0 < len(value) <= longest and not _CONTROL.search(value)


def _number(value: Any, low: float, high: float) -> bool:
    # A plain comparison: false for NaN and the infinities, exact for an int of any size.
    return type(value) in (int, float) and low <= value <= high


def _http_url(value: Any) -> bool:
    if type(value) is not str or len(value) > MAX_URL or _NOT_IN_URL.search(value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _path(value: Any) -> bool:
    """A path on the page's own origin: ``/img/a.svg``, never ``//host/…`` (another host)."""
    return (
        type(value) is str
        and len(value) <= MAX_URL
        and value.startswith("/")
        and not value.startswith("//")
        and not _NOT_IN_URL.search(value)
    )


def _valid(field: str, value: Any) -> bool:
    if field == "id":
        return type(value) is str and _ID.fullmatch(value) is not None
    if field == "name":
        return _text(value, MAX_NAME)
    if field == "url":
        return _http_url(value)
    if field == "image":
        return value is None or _http_url(value) or _path(value)
    if field == "price":
        return value is None or _number(value, 0, MAX_PRICE)
    if field == "category":
        return value is None or _text(value, MAX_CATEGORY)
    return type(value) is bool  # in_stock


def _fits(kind: AttributeType, value: Any) -> bool:
    if value is None:
        return True
    if kind == "string":
        return type(value) is str and len(value) <= MAX_STRING and not _CONTROL.search(value)
    if kind == "number":
        return _number(value, -MAX_PRICE, MAX_PRICE)
    return type(value) is bool


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def check_product(
    catalog: Catalog, fields: Any, product_id: str | None = None, now: int = 0
) -> tuple[Product | None, list[Problem]]:
    """The product ``fields`` (a JSON object's values) describe, and every problem found
    (each a field and what was expected there). ``product_id``: the id the caller already
    has (a URL's), which an ``id`` among the fields must equal. The product is None when a
    problem was found."""
    if not isinstance(fields, dict):
        return None, [Problem("", "expected a JSON object of the product's fields")]
    problems: list[Problem] = []
    declared = catalog.fields
    for key in fields:
        if key not in FIELDS and key not in declared:
            named = ", ".join([*FIELDS, *declared])
            problems.append(Problem(str(key)[:64], f"expected one of the fields {named}"))
    if product_id is None:
        product_id = fields.get("id")
        if product_id is None:
            problems.append(Problem("id", f"expected {_EXPECTED['id']}"))
    elif "id" in fields and fields["id"] != product_id:
        problems.append(Problem("id", f"expected the id of the path, {product_id!r}"))
    values: dict[str, Any] = {"id": product_id, "image": None, "price": None, "category": None}
    values |= {"in_stock": True, **{k: v for k, v in fields.items() if k in FIELDS}}
    for field in FIELDS:
        if field not in values:
            problems.append(Problem(field, f"expected {_EXPECTED[field]} (it is required)"))
        elif not (field == "id" and product_id is None) and not _valid(field, values[field]):
            got = _shown(values[field])
            problems.append(Problem(field, f"expected {_EXPECTED[field]}, got {got}"))
    extra: dict[str, Any] = {}
    for name, kind in declared.items():
        value = fields.get(name)
        if not _fits(kind, value):
            got = _shown(value)
            problems.append(
                Problem(name, f"expected {_TYPED[kind]} (declared a {kind}), got {got}")
            )
        elif value is not None:
            extra[name] = value
    if problems:
        return None, problems
    price = values["price"]
    product = Product(
        values["id"], values["name"], values["url"], values["image"],
        None if price is None else float(price), values["category"], values["in_stock"],
        extra, "site", now,
    )  # fmt: skip
    return product, []


def _where(where: str, field: str) -> str:
    return f"{where}.{field}" if field else where


def product_of(
    catalog: Catalog, product_id: str, fields: Any, where: str = "$", now: int = 0
) -> Product:
    """The product ``fields`` describe, as the site's systems send it; BadRequest naming
    ``<where>.<field>`` for everything wrong or undeclared (one problem a line)."""
    product, problems = check_product(catalog, fields, product_id, now)
    if product is None:
        raise BadRequest("; ".join(f"{_where(where, p.path)}: {p.expected}" for p in problems))
    return product


def _origin(url: str) -> tuple[str, str] | None:
    """The origin of an absolute http(s) URL (``https://shop.example``, as a site's
    ``origins`` list it, default ports left out) and its path, or None."""
    if not _http_url(url):
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    netloc = host if port in (None, default) else f"{host}:{port}"
    if ":" in host:  # an IPv6 address keeps its brackets
        netloc = f"[{host}]" if port in (None, default) else f"[{host}]:{port}"
    return f"{parts.scheme}://{netloc}", parts.path or "/"


def page_product(
    site: CompiledSite, page_url: str, raw: Any, extra_origins: Collection[str] = ()
) -> tuple[str, str | None] | None:
    """``page.data.product`` as decide records it (see the module's docstring). ``raw``
    is what the page sent (a msgspec.Raw, or the decoded value); ``extra_origins``: origins
    the caller also trusts for this page (the one a browser's ``Origin`` named, when the
    request was allowed from it). For example, on a site taking products from its pages:
    ``page_product(shop, "https://shop.example/p/lamp?utm=x#top", {"id": "lamp-1", "name":
    "Lamp", "url": "https://evil.example"})`` is ``("lamp-1", '{"category":null,…,"url":
    "https://shop.example/p/lamp"}')``: the page's own URL, not the one it claimed.
    """
    catalog = site.config.catalog
    if catalog is None or raw is None:
        return None
    where = "$.page.data.product"
    value = raw
    if isinstance(raw, msgspec.Raw):
        try:
            value = _decode(raw)
        except (msgspec.DecodeError, RecursionError):
            raise BadRequest(f"{where}: expected an object of the product's fields") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: expected an object of the product's fields, with its id")
    product_id: str = value.get("id", "")  # checked at once
    if not _valid("id", product_id):
        raise BadRequest(f"{where}.id: expected {_EXPECTED['id']}, got {_shown(product_id)}")
    if not catalog.from_pages or value.get("name") is None:
        return product_id, None  # a product view; no description to learn from
    located = _origin(page_url)
    origins = {*site.origins, *extra_origins}
    if located is None or located[0] not in origins:
        return product_id, None  # not a page of the site's: nothing to learn from it
    # The page's own URL, never the one it claims, without query and fragment (they carry
    # campaign tags and sessions, and would make one product look like many).
    url = located[0] + located[1]
    image = value.get("image")
    if image is not None and not _path(image):
        image_origin = _origin(image) if type(image) is str else None
        if image_origin is None or image_origin[0] not in origins:
            raise BadRequest(
                f"{where}.image: expected a path starting with / or a URL on one of the"
                f" site's origins, got {_shown(image)}"
            )
    # The page may say more than a product's fields (its own keys): only these are read.
    fields = {k: v for k, v in value.items() if k in FIELDS or k in catalog.fields}
    fields["url"] = url
    product, problems = check_product(catalog, fields, None)
    if product is None:
        raise BadRequest("; ".join(f"{where}.{p.path}: {p.expected}" for p in problems))
    return product_id, _detail(product)


ESTABLISHED_MS = 3_600_000
ESTABLISHED_VIEWS = 3
"""A page's description of its product counts towards ``catalog.confirm`` only from a
browser first seen an hour ago with three page views: a new cookie costs nothing, so
counting fresh browsers as distinct visitors let two requests put any product in the
catalogue. (It deters, it does not prove: see the README.)"""
_mistaken: set[tuple[str, str]] = set()  # (site, field) of the page mistakes logged, once each
_MISTAKES_LOGGED = 1000


def page_view(
    site: CompiledSite, page_url: str, raw: Any, established: bool
) -> tuple[str, str | None] | None:
    """The product a page view shows, as decide records it: :func:`page_product`, except
    that a mistake in the page's description is the page's, not the visitor's: it is logged
    (once per site and field) and only the product's id is kept (nothing for a bad id), so
    the page view, its decisions and the events sent with it are never refused for it. A
    browser that is not ``established`` names the product but describes nothing."""
    try:
        found = page_product(site, page_url, raw)
    except BadRequest as err:
        where = str(err).split(":", 1)[0]
        if (site.name, where) not in _mistaken and len(_mistaken) < _MISTAKES_LOGGED:
            _mistaken.add((site.name, where))
            log.warning("site %s: a page described its product wrongly (%s)", site.name, err)
        try:
            value = _decode(raw) if isinstance(raw, msgspec.Raw) else raw
        except (msgspec.DecodeError, RecursionError):
            return None
        product_id = value.get("id") if isinstance(value, dict) else None
        return (
            (product_id, None) if isinstance(product_id, str) and _valid("id", product_id) else None
        )
    if found is None or established:
        return found
    return found[0], None


def _detail(product: Product) -> str:
    """A description as canonical JSON (sorted keys), so two visitors' equal descriptions
    are equal texts."""
    described = msgspec.structs.asdict(product)
    for key in ("id", "source", "updated"):
        described.pop(key)
    return _canonical(described).decode()


class _Described(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A product_view event's ``detail``, as page_product wrote it."""

    name: str
    url: str
    image: str | None = None
    price: float | None = None
    category: str | None = None
    in_stock: bool = True
    extra: dict[str, str | float | bool] = {}


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _claim(product_id: str, detail: str, visitor: str) -> PageClaim | None:
    """A product view's description as a claim, or None when it is not one page_product
    could have written (the event log is checked again: it outlives versions)."""
    try:
        described = msgspec.json.decode(detail, type=_Described)
    except (msgspec.DecodeError, RecursionError):
        return None
    fields: dict[str, Any] = msgspec.structs.asdict(described)
    extra = fields.pop("extra")
    if not all(_valid(f, fields[f]) for f in FIELDS if f != "id") or not _valid("id", product_id):
        return None
    kinds: dict[type, AttributeType] = {str: "string", float: "number", int: "number"}
    if not all(_fits(kinds.get(type(v), "boolean"), v) for v in extra.values()):
        return None
    product = Product(product_id, **fields, extra=extra, source="page")
    # The visitor's digest is of the product too: the claims count distinct visitors per
    # product, and no row can be joined to another to list what one visitor viewed.
    return PageClaim(product, _digest(_detail(product)), _digest(f"{product_id}\0{visitor}"))


async def upsert_page_products(
    store: Store,
    site: str,
    described: Sequence[tuple[str, str, str]],
    confirm: int,
    now: int | None = None,
) -> list[str]:
    """Count each visitor's description of a product, and take into the catalogue (source
    ``page``) each one ``confirm`` distinct visitors sent, unless the site's systems
    describe that product; the ids written. ``described``: ``(product id, detail,
    visitor)`` of product views, as page_product made the detail. Visitors are kept only
    as digests (of the visitor with the product), until their description is taken or
    forgotten (after 30 days)."""
    claims = [c for c in (_claim(*d) for d in described) if c is not None]
    if not claims:
        return []
    at = time.time_ns() // 1_000_000 if now is None else now
    return await store.confirm_page_products(site, claims, confirm, at)


async def store_products(
    store: Store, site: str, products: Sequence[Product], batch: int = BATCH
) -> int:
    """Store ``products`` as the site's, in transactions of ``batch``; how many there were.
    Each replaces the product of its id, so storing a file again is harmless."""
    batches = 0
    for start in range(0, len(products), batch):
        await store.put_products(site, products[start : start + batch])
        batches += 1
    return batches
