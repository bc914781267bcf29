"""The catalogue: each site's products, as its systems and (where it allows) its pages
describe them, and the keys the state cookie names them by."""

from __future__ import annotations

import hashlib

from .state import PRODUCT_KEY_BYTES
from .store.catalog import Product

__all__ = ["Product", "product_key"]


def product_key(product_id: str) -> bytes:
    """The product's key in the state cookie: 6 bytes of a hash of its id, so a list of
    recent views costs 6 bytes a product, whatever the ids are."""
    return hashlib.blake2b(product_id.encode(), digest_size=PRODUCT_KEY_BYTES).digest()
