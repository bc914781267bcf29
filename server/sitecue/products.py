"""Product signals: what a visitor's product views, add-to-carts and purchases leave in the
state cookie (:class:`sitecue.state.Products`), and what recommendations read back from it.

Each product is kept as its 6-byte key (:func:`sitecue.catalog.product_key`), newest first:
the products this browser viewed (at most the site's ``catalog.recent``; one viewed again
moves to the front), the products it bought (at most MAX_BOUGHT) and the products the
person bought anywhere, as the site's records say at the last identification or refresh
(``server``, at most MAX_BOUGHT; see sitecue.refresh). Only a verified identification
fills ``server``: a purchase a visitor forges in their own browser (the tag's events are
theirs to send) only ever filters their own recommendations, and no claim, no page and no
event of theirs can read or change what another browser holds.

Also here: the products an event names (``product`` and ``products``, checked by pattern
only: the server cannot know every product). ``page.data.product`` is read by
:func:`sitecue.catalog.page_product`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .catalog import product_key
from .config import Catalog, SiteConfig
from .protocol import MAX_PRODUCTS, PRODUCT_ID, TriggerSpec
from .state import PRODUCT_KEY_BYTES, Products, VisitorState

if TYPE_CHECKING:
    from collections.abc import Collection


__all__ = [
    "MAX_BOUGHT",
    "bought",
    "bought_keys",
    "catalog_triggers",
    "event_products",
    "keep_products",
    "keys_of",
    "recent_keys",
    "server_keys",
    "viewed",
]

MAX_BOUGHT = 16
"""The most products the state keeps as bought in this browser, and as bought by the
verified person (each list newest first)."""

_K = PRODUCT_KEY_BYTES
_ID = re.compile(PRODUCT_ID)


def keys_of(packed: bytes) -> list[bytes]:
    """The keys a packed list holds, in its order (newest first)."""
    return [packed[i : i + _K] for i in range(0, len(packed) - len(packed) % _K, _K)]


def _front(packed: bytes, keys: Iterable[bytes], most: int) -> bytes:
    """``keys`` (the first the newest) put in front of ``packed``, each once, at most
    ``most`` in all."""
    ordered = list(dict.fromkeys([*keys, *keys_of(packed)]))
    return b"".join(ordered[:most])


def recent_keys(state: VisitorState) -> list[bytes]:
    """The keys of the products this browser viewed, the newest first."""
    return keys_of(state.products.viewed) if state.products is not None else []


def bought_keys(state: VisitorState) -> set[bytes]:
    """The keys of the products this person bought: in this browser, and, when the browser
    is verified as theirs, anywhere (as of the last refresh)."""
    found = state.products
    if found is None:
        return set()
    keys = set(keys_of(found.bought))
    if state.verified:
        keys.update(keys_of(found.server))
    return keys


def _products(state: VisitorState) -> Products:
    if state.products is None:
        state.products = Products()
    return state.products


def viewed(state: VisitorState, product_id: str, recent: int) -> None:
    """A product page viewed: its key goes in front of the recent views (moved there if it
    was already in them), at most ``recent`` kept."""
    found = _products(state)
    found.viewed = _front(found.viewed, [product_key(product_id)], recent)


def bought(state: VisitorState, product_ids: Iterable[str]) -> None:
    """A purchase in this browser: its products go in front of the ones bought here."""
    found = _products(state)
    keys = [product_key(p) for p in product_ids]
    found.bought = _front(found.bought, keys, MAX_BOUGHT)


def server_keys(product_ids: Iterable[str]) -> bytes:
    """The packed keys of the products the verified person bought (newest first), at most
    MAX_BOUGHT."""
    return _front(b"", (product_key(p) for p in product_ids), MAX_BOUGHT)


def keep_products(state: VisitorState, catalog: Catalog | None) -> None:
    """Products are kept only where the site has a catalog, and the recent views only as
    many as it keeps now; an empty record is not kept at all."""
    found = state.products
    if found is None:
        return
    if catalog is None:
        state.products = None
        return
    found.viewed = found.viewed[: catalog.recent * _K]
    if not state.verified:
        found.server = b""  # only a verified identification brings the person's purchases
    if not (found.viewed or found.bought or found.server):
        state.products = None


def event_products(product: str | None, products: list[str] | None) -> list[str] | None:
    """The product ids an event names (``product`` first, then ``products``), each once;
    None when it names none."""
    ids = list(dict.fromkeys([*([product] if product else []), *(products or [])]))
    return ids[:MAX_PRODUCTS] or None


def catalog_triggers(config: SiteConfig, watched: Collection[str]) -> tuple[TriggerSpec, ...]:
    """The catalog's add-to-cart and purchase events, for the tag to post to decide (with
    their products and value) even where no rule counts them: as their trigger declares
    them (a click on a button, say), or else as custom events. ``watched``: the names the
    tag watches already."""
    catalog = config.catalog
    if catalog is None:
        return ()
    specs = []
    for name in dict.fromkeys(n for n in (catalog.cart, catalog.purchase) if n):
        if name in watched:
            continue
        t = config.triggers.get(name)
        if t is not None and t.on != "pageview":
            specs.append(TriggerSpec(name, t.on, t.selector, t.percent, t.seconds))
        else:
            specs.append(TriggerSpec(name, "custom"))
    return tuple(specs)
