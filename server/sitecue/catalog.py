"""The catalogue: each site's products, as its systems and (where it allows) its pages
describe them, and the keys the state cookie names them by.

Interfaces (other modules rely on them):

- ``PRODUCT_ID``: the pattern of a product id (protocol.py uses the same literal).
- ``product_of(catalog, product_id, fields, where) -> Product``: a product as the site's
  systems describe it (``PUT /v1/catalog``, ``sitecue catalog import``), checked; raises
  BadRequest naming ``<where>.<field>``.
- ``page_product(site, page_url, raw, extra_origins=()) -> (id, detail | None) | None``:
  what decide makes of ``page.data.product``: None when the site has no catalog or the page
  names no product; else the product id and, when the site takes products from its pages
  (``catalog.from_pages``), the description as canonical JSON text (the ``detail`` of the
  ``product_view`` event), None otherwise. A bad description raises BadRequest naming
  ``$.page.data.product.<field>``.
- ``upsert_page_products(store, site, described, confirm, now=None) -> list[str]``: what
  the recommendations job calls with the ``(product id, detail, visitor)`` of the product
  views it reads; a description is taken (source ``page``) once ``confirm`` distinct
  visitors sent it, never over a product of source ``site``. Returns the ids it wrote.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from .state import PRODUCT_KEY_BYTES
from .store.catalog import Product

if TYPE_CHECKING:
    from .config import Catalog
    from .rules import CompiledSite
    from .store import Store

__all__ = [
    "PRODUCT_ID",
    "Product",
    "page_product",
    "product_key",
    "product_of",
    "upsert_page_products",
]

PRODUCT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$"
"""A product id: 1 to 64 letters, digits and ``_ . : / -``, starting with a letter or digit
(the same literal as protocol.py's)."""


def product_key(product_id: str) -> bytes:
    """The product's key in the state cookie: 6 bytes of a hash of its id, so a list of
    recent views costs 6 bytes a product, whatever the ids are."""
    return hashlib.blake2b(product_id.encode(), digest_size=PRODUCT_KEY_BYTES).digest()


def product_of(
    catalog: Catalog, product_id: str, fields: Any, where: str = "body", now: int = 0
) -> Product:
    """The product ``fields`` describe, as the site's systems send it; BadRequest naming
    ``<where>.<field>`` for anything wrong or undeclared."""
    raise NotImplementedError


def page_product(
    site: CompiledSite, page_url: str, raw: Any, extra_origins: Collection[str] = ()
) -> tuple[str, str | None] | None:
    """``page.data.product`` as decide records it (see the module's docstring)."""
    raise NotImplementedError


async def upsert_page_products(
    store: Store,
    site: str,
    described: Sequence[tuple[str, str, str]],
    confirm: int,
    now: int | None = None,
) -> list[str]:
    """Count each visitor's description and take those ``confirm`` visitors agree on."""
    raise NotImplementedError
