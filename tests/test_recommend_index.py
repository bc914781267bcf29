"""The workers' Index: built from plain data or from the store, and reloaded only when the
site's version changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from recommend_shop import NOW, products, put_products, shop, view
from sitecue.catalog import product_key
from sitecue.recommend import Index, RecommendJob, Refresher
from sitecue.store import Product, Store, open_store
from sites import site

CATALOGUE = products(10)


def test_build_keeps_only_products_of_the_catalogue() -> None:
    index = Index.build(
        CATALOGUE[:3],
        {"viewed_together": {"p000": ["p001", "gone", "p002", "p001"], "gone": ["p000"]}},
        {None: ["p002", "gone"], "c1": ["p001"]},
    )
    assert index.neighbours["viewed_together"] == {"p000": ("p001", "p002")}
    assert index.popular == ("p002",) and index.popular_in == {"c1": ("p001",)}
    assert index.by_key[product_key("p001")].id == "p001"
    assert index.ids([product_key("p002"), b"nothing", product_key("p000")]) == ["p002", "p000"]


def test_a_worker_reloads_a_site_only_when_its_version_changes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sitecue.db'}"
    sites: dict[str, Any] = {"shop": shop(), "news": site()}  # news: no catalog

    async def body() -> list[list[str]]:
        store = await open_store(url)
        put_products(url, "shop", CATALOGUE)
        indexes: dict[str, Index] = {}
        refresher = Refresher(store, lambda: sites, indexes)
        loads = []
        try:
            loads.append(await refresher.refresh())  # first: loaded
            loads.append(await refresher.refresh())  # nothing changed
            assert [p.id for p in indexes["shop"].products.values()] == [p.id for p in CATALOGUE]
            put_products(url, "shop", [Product("p100", "New", "https://shop.example/n")])
            loads.append(await refresher.refresh())  # the catalogue changed
            views = [view(f"v{i}", p, NOW) for i in range(2) for p in ("p001", "p002")]
            await store.write(views, [])
            await job(store, sites).run()
            loads.append(await refresher.refresh())  # new lists were published
            assert indexes["shop"].neighbours["viewed_together"]["p001"] == ("p002",)
            await job(store, sites).run()  # nothing new: the same lists, the same version
            loads.append(await refresher.refresh())
            del sites["shop"]
            loads.append(await refresher.refresh())
            assert indexes == {}
        finally:
            await store.close()
        return loads

    assert asyncio.run(body()) == [["shop"], [], ["shop"], ["shop"], [], []]


def job(store: Store, sites: dict[str, Any]) -> RecommendJob:
    return RecommendJob(store, lambda: sites, clock=lambda: NOW + 60_000, lists_every_ms=0)
