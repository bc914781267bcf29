"""What a worker recommends from: per site, an in-memory ``Index`` of the catalogue (by id,
and by the 6-byte key the state cookie names products by), each product's neighbours
(viewed together, bought together) and the popular lists, as the job published them.

A ``Refresher`` (one per worker, started with the app) asks the store every REFRESH_S
seconds for each site's version (the lists' version and the catalogue's counter,
``catalog_version``: one cheap read) and reloads only a site whose version changed, swapping the new
Index in whole. A request never reads the store for recommendations: until a site's index
is loaded, it has none (``Runtime.recommendations.get(site)`` is None).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import msgspec

from ..catalog import product_key
from ..store import Product

if TYPE_CHECKING:
    from ..rules import CompiledSite
    from ..store import Store

__all__ = ["REFRESH_S", "Index", "Neighbours", "Refresher", "load_index"]

log = logging.getLogger("sitecue")

REFRESH_S = 10.0
Neighbours = Literal["viewed_together", "bought_together"]
_LIST_KINDS: dict[str, Neighbours] = {"viewed": "viewed_together", "bought": "bought_together"}
_items = msgspec.json.Decoder(list[tuple[str, float]]).decode


@dataclass(frozen=True)
class Index:
    """One site's products and lists. Build one with ``Index.build``; every list names
    only products of ``products`` (the others are dropped at build)."""

    products: Mapping[str, Product]
    by_key: Mapping[bytes, Product]
    keys: Mapping[str, bytes]  # each product's key (sitecue.catalog.product_key)
    neighbours: Mapping[Neighbours, Mapping[str, tuple[str, ...]]]
    popular: tuple[str, ...]
    popular_in: Mapping[str, tuple[str, ...]]
    version: tuple[int, int] = (0, 0)

    @classmethod
    def build(
        cls,
        products: Iterable[Product],
        neighbours: Mapping[Neighbours, Mapping[str, Sequence[str]]] | None = None,
        popular: Mapping[str | None, Sequence[str]] | None = None,
        version: tuple[int, int] = (0, 0),
    ) -> Index:
        """From plain data: the products, each product's neighbours of each kind (best
        first), and the popular lists (best first): ``None`` the overall one, else by
        category; for example ``Index.build([Product("a", "A", "https://s.example/a")],
        popular={None: ["a"]})``."""
        by_id = {p.id: p for p in products}

        def known(ids: Sequence[str]) -> tuple[str, ...]:
            return tuple(i for i in dict.fromkeys(ids) if i in by_id)

        lists = {
            kind: {p: known(ids) for p, ids in of.items() if p in by_id}
            for kind, of in (neighbours or {}).items()
        }
        popular = popular or {}
        keys = {i: product_key(i) for i in by_id}
        return cls(
            by_id,
            {keys[i]: p for i, p in by_id.items()},
            keys,
            lists,
            known(popular.get(None, ())),
            {c: known(ids) for c, ids in popular.items() if c is not None},
            version,
        )

    def ids(self, keys: Iterable[bytes]) -> list[str]:
        """The ids of the products these keys name, in order (unknown keys left out)."""
        return [p.id for p in map(self.by_key.get, keys) if p is not None]


def index_of(
    products: Iterable[Product], lists: Mapping[str, str], version: tuple[int, int]
) -> Index:
    """An Index from the store's rows: the products and the published lists (see
    store.recommend)."""
    neighbours: dict[Neighbours, dict[str, list[str]]] = {k: {} for k in _LIST_KINDS.values()}
    popular: dict[str | None, list[str]] = {}
    for name, items in lists.items():
        prefix, _, rest = name.partition(":")
        ids = [i for i, _ in _items(items)]
        if prefix in _LIST_KINDS:
            neighbours[_LIST_KINDS[prefix]][rest] = ids
        elif prefix == "popular":
            popular[rest if rest else None] = ids
    return Index.build(products, neighbours, popular, version)


async def load_index(store: Store, site: str) -> Index:
    """The site's index as the store holds it now."""
    version = await store.recommend_version(site)
    products = await store.all_products(site)
    lists = await store.recommend_lists(site)
    return await asyncio.to_thread(index_of, products, lists, version)


@dataclass
class Refresher:
    """Keeps ``indexes`` (the runtime's ``recommendations``) current for each site of
    ``sites()`` with a catalog; a site gone from the config leaves it."""

    store: Store
    sites: Callable[[], Mapping[str, CompiledSite]]
    indexes: MutableMapping[str, Index]
    every_s: float = REFRESH_S
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _stopping: bool = field(default=False, init=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sitecue-recommend-index")

    def wake(self) -> None:
        """Look now (this worker's job just published), not at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def refresh(self) -> list[str]:
        """Reload the sites whose version changed; their names."""
        sites = {n for n, s in self.sites().items() if s.config.catalog is not None}
        for gone in set(self.indexes) - sites:
            del self.indexes[gone]
        reloaded = []
        for site in sorted(sites):
            version = await self.store.recommend_version(site)
            current = self.indexes.get(site)
            if current is None or current.version != version:
                self.indexes[site] = await load_index(self.store, site)
                reloaded.append(site)
        return reloaded

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.refresh()
            except Exception as err:  # the store is down, say: the indexes held keep serving
                log.warning("recommend: index refresh failed: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.every_s)
            if not self._stopping:
                self._wake.clear()
