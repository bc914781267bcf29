"""The catalogue: a site's products, as its own systems describe them.

    GET    /v1/catalog?site=S&category=&after=&limit=   a page of products, by id
    PUT    /v1/catalog/{id}?site=S      {"name", "url", "image", "price", "category",
                                        "in_stock", <declared fields>}: create or replace
    GET    /v1/catalog/{id}?site=S      the product
    DELETE /v1/catalog/{id}?site=S      remove it
    POST   /v1/catalog/import?site=S    NDJSON or CSV of products (see catalog_files):
                                        every line checked before any is stored

Each needs an admin key for the site, and the site a ``catalog`` section in its config. A
product written here is the site's (source ``site``): a page's description never replaces
it (see sitecue.catalog). A mistake is a 400 naming the field, and in a file its line.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..bulk import MEDIA_TYPES, format_of_type
from ..catalog import BATCH, MAX_CATEGORY, PRODUCT_ID, product_of, store_products
from ..catalog_files import read_products
from ..config import Catalog
from ..errors import BadRequest, NotFound, UnsupportedMediaType
from ..store import Product
from .bodies import MAX_ADMIN_BODY, decode, json_response, read_body
from .decisions import int_param
from .keys import authorised_site

if TYPE_CHECKING:
    from ..rules import CompiledSite

__all__ = [
    "BATCH",
    "MAX_PAGE",
    "MAX_PRODUCT_BODY",
    "ProductPage",
    "ProductView",
    "ProductsImported",
    "catalog_endpoint",
    "catalog_import_endpoint",
    "catalog_list_endpoint",
]

MAX_PRODUCT_BODY = 64 * 1024  # one product: its fields are short (a URL is the longest)
MAX_PAGE = 1000
SHOWN_PROBLEMS = 20  # a refused import's message names these, and counts the rest
_ID = re.compile(PRODUCT_ID)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ProductView(msgspec.Struct, frozen=True):
    """A product as the API shows it: every field, the declared ones under ``extra``;
    ``source`` says who described it (``site``: its systems; ``page``: its pages, once
    enough visitors agreed); ``updated`` is epoch ms."""

    id: str
    name: str
    url: str
    image: str | None
    price: float | None
    category: str | None
    in_stock: bool
    extra: dict[str, Any]
    source: str
    updated: int


class ProductPage(msgspec.Struct, frozen=True):
    """Products by id; ``next``: the ``after`` of the next page (None: the last page)."""

    products: list[ProductView]
    next: str | None = None


class ProductsImported(msgspec.Struct, frozen=True):
    imported: int  # products created or replaced
    batches: int  # transactions they were stored in (of up to 1000)


def view(product: Product) -> ProductView:
    return ProductView(**msgspec.structs.asdict(product))


def _catalog(site: CompiledSite) -> Catalog:
    catalog = site.config.catalog
    if catalog is None:
        raise NotFound(f"catalog: site '{site.name}' has no catalog section in its config")
    return catalog


def _product_id(text: str, name: str = "id") -> str:
    if not _ID.fullmatch(text):
        shown = repr(text[:70])
        raise BadRequest(
            f"{name}: expected a product id of 1 to 64 letters, digits and _ . : / -,"
            f" starting with a letter or digit; got {shown}"
        )
    return text


def _now() -> int:
    return time.time_ns() // 1_000_000


async def catalog_endpoint(request: Request) -> Response:
    """One product: GET, PUT (create or replace, whole) or DELETE."""
    runtime, site = await authorised_site(request, "the product belongs to")
    catalog = _catalog(site)
    product_id = _product_id(request.path_params["product"])
    store = runtime.store
    if request.method == "DELETE":
        if not await store.delete_product(site.name, product_id):
            raise NotFound(f"id: no product '{product_id}' in the catalog of {site.name}")
        return Response(status_code=204)
    if request.method == "PUT":
        fields = decode(await read_body(request, MAX_PRODUCT_BODY), dict[str, Any])
        product = product_of(catalog, product_id, fields, "body: $", _now())
        await store.put_products(site.name, [product])
        return json_response(view(product))
    held = await store.product(site.name, product_id)
    if held is None:
        raise NotFound(f"id: no product '{product_id}' in the catalog of {site.name}")
    return json_response(view(held))


async def catalog_list_endpoint(request: Request) -> Response:
    """A page of the site's products by id, from after the cursor ``after``."""
    runtime, site = await authorised_site(request, "the products belong to")
    _catalog(site)
    params = request.query_params
    after = params.get("after")
    if after is not None:
        _product_id(after, "after")
    category = params.get("category")
    if category is not None and not (
        0 < len(category) <= MAX_CATEGORY and not _CONTROL.search(category)
    ):
        raise BadRequest(f"category: expected 1 to {MAX_CATEGORY} characters")
    limit = int_param(params, "limit", 1, MAX_PAGE) or 100
    # One more than asked shows whether there is a next page.
    found = await runtime.store.products(site.name, category, after, limit + 1)
    more = len(found) > limit
    page = ProductPage([view(p) for p in found[:limit]], found[limit - 1].id if more else None)
    return json_response(page)


async def catalog_import_endpoint(request: Request) -> Response:
    """A product file, NDJSON or CSV as its ``Content-Type`` says (415 for any other). Every
    line is checked before any is stored, so a bad file changes nothing; a good one is
    stored in transactions of BATCH products. Importing it again replaces the same
    products (by id) with what the file says."""
    runtime, site = await authorised_site(request, "the products belong to")
    catalog = _catalog(site)
    content_type = request.headers.get("content-type", "")
    kind = format_of_type(content_type)
    if kind is None:
        raise UnsupportedMediaType(
            f"content-type: expected one of {', '.join(MEDIA_TYPES)}, got '{content_type[:100]}'"
        )
    body = await read_body(request, MAX_ADMIN_BODY)
    products, problems = read_products(body, kind, catalog, _now())
    if problems:
        shown = "; ".join(str(p) for p in problems[:SHOWN_PROBLEMS])
        more = len(problems) - SHOWN_PROBLEMS
        raise BadRequest(f"body: {shown}" + (f"; and {more} more" if more > 0 else ""))
    batches = await store_products(runtime.store, site.name, products, BATCH)
    return json_response(ProductsImported(len(products), batches))
