"""Erasing a person forgets what the recommendations' job keeps of their browsers (the
products each viewed and bought, kept to pair the next ones), on both engines; the counts
and lists it made from them stay, as a log's counts stay."""

from __future__ import annotations

import asyncio

from recommend_shop import NOW, bought, products, put_products, shop, view
from sitecue.recommend import RecommendJob
from sitecue.store import open_store


def test_an_erased_persons_browsers_leave_no_product_history(store_url: str) -> None:
    async def migrate() -> None:
        await (await open_store(store_url)).close()

    async def main() -> None:
        store = await open_store(store_url)
        try:
            site = shop()
            ann, bob = "ann-browser-0000001", "bob-browser-0000001"
            await store.write([view(v, "p001", NOW) for v in (ann, bob)], [])
            await store.write([bought(v, ["p001", "p002"], NOW + 1) for v in (ann, bob)], [])
            await store.link("shop", ann, "ann@example.com", NOW, verified=True)
            clock = [NOW + 60_000]
            job = RecommendJob(store, lambda: {"shop": site}, clock=lambda: clock[0])
            await job.run()
            clock[0] += 60_000
            await job.run()  # PostgreSQL counts what the first run saw settle
            for kind in ("viewed", "bought"):
                assert set(await store.recommend_visitors("shop", kind, [ann, bob])) == {ann, bob}
            assert await store.erase_contact("shop", "ann@example.com")
            for kind in ("viewed", "bought"):
                assert set(await store.recommend_visitors("shop", kind, [ann, bob])) == {bob}
        finally:
            await store.close()

    asyncio.run(migrate())
    put_products(store_url, "shop", products(4))
    asyncio.run(main())
