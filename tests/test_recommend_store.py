"""The recommendations' store methods, on both engines (see store.recommend)."""

from __future__ import annotations

import msgspec

from recommend_shop import NOW, products, put_products, view
from sitecue.store import EventRecord, Store
from sitecue.store.recommend import Batch, ListChanges
from stores import with_store


def test_the_lease_goes_to_one_holder_until_it_runs_out(store_url: str) -> None:
    async def body(store: Store) -> list[object]:
        first = await store.recommend_claim("shop", "a", NOW, 1000)
        other = await store.recommend_claim("shop", "b", NOW + 999, 1000)
        elsewhere = await store.recommend_claim("news", "b", NOW, 1000)  # per site
        taken = await store.recommend_claim("shop", "b", NOW + 1000, 1000)
        # "a" lost it: its batch is refused, and nothing of it is kept.
        lost = await store.recommend_commit(
            "shop", "a", Batch(5, pairs=[("viewed p1 p2", 9)]), NOW + 5000
        )
        kept = await store.recommend_commit(
            "shop", "b", Batch(7, pairs=[("viewed p1 p2", 1)]), NOW + 5000
        )
        deltas = await store.recommend_deltas("shop", 0, 10)
        merged = await store.recommend_merge(
            "shop", "b", deltas[-1][0], [("viewed", "p1", "p2", 1)], NOW + 5000
        )
        left = await store.recommend_deltas("shop", 0, 10)
        assert len(deltas) == 1 and left == []  # a's batch left none
        pairs = await store.recommend_pairs("shop", "viewed", 1, ("", ""), 10)
        done = await store.recommend_publish("shop", "b", ListChanges(9, NOW, NOW, 7))
        again = await store.recommend_claim("shop", "c", NOW + 1001, 1000)  # given back
        return [first, other, elsewhere is not None, taken, lost, kept, merged, pairs, done, again]

    first, other, elsewhere, taken, lost, kept, merged, pairs, done, again = with_store(
        store_url, body
    )
    assert first is not None and first.done == 0 and other is None and elsewhere
    assert taken is not None and lost is False and kept is True and merged is True
    assert pairs == [("p1", "p2", 1)] and done is True
    assert again is not None and (again.done, again.seen, again.listed) == (7, 9, 7)


def test_events_naming_products_come_in_id_order_within_the_range(store_url: str) -> None:
    async def body(store: Store) -> list[list[object]]:
        await store.write(
            [
                view("v", "p1", NOW),
                EventRecord("shop", "v", "trigger", NOW, name="paywall_view"),  # no products
                EventRecord("news", "v", "product_view", NOW, products=["p9"]),  # another site
                view("v", "p2", NOW + 1, detail='{"name":"Two"}'),
                view("v", "p3", NOW + 2),
            ],
            [],
        )
        newest = (await store.recommend_horizon("shop")).id
        every = await store.recommend_events("shop", 0, newest, 10)
        first = await store.recommend_events("shop", 0, newest, 1)
        rest = await store.recommend_events("shop", first[0].id, newest - 1, 10)
        return [
            [(e.products, e.detail) for e in every],
            [e.products for e in first],
            [e.products for e in rest],
        ]

    every, first, rest = with_store(store_url, body)
    assert every == [(["p1"], None), (["p2"], '{"name":"Two"}'), (["p3"], None)]
    assert first == [["p1"]] and rest == [["p2"]]


def test_pairs_page_in_key_order_above_the_support(store_url: str) -> None:
    async def body(store: Store) -> tuple[list[object], dict[str, int], bool]:
        await store.recommend_claim("shop", "h", NOW, 60_000)
        pairs = [("viewed", f"p{a}", f"p{b}", 2) for a in range(4) for b in range(a + 1, 5)]
        await store.recommend_commit(
            "shop", "h", Batch(1, totals=[("viewed", "p0", 4)]), NOW + 60_000
        )
        assert await store.recommend_merge("shop", "h", 0, pairs, NOW + 60_000)
        more = [("viewed", "p0", "p1", 1), ("bought", "p0", "p1", 1)]
        assert await store.recommend_merge("shop", "h", 0, more, NOW + 60_000)
        pages, after = [], ("", "")
        while page := await store.recommend_pairs("shop", "viewed", 2, after, 3):
            pages.append(page)
            after = page[-1][:2]
        lost = await store.recommend_merge("shop", "other", 0, more, NOW + 60_000)
        return pages, await store.recommend_totals("shop", "viewed"), lost

    pages, totals, lost = with_store(store_url, body)
    flat = [p for page in pages for p in page]
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert flat[0] == ("p0", "p1", 3) and all(n == 2 for _, _, n in flat[1:])
    assert flat == sorted(flat) and totals == {"p0": 4} and lost is False


def test_the_version_moves_with_the_lists_and_the_catalogue(store_url: str) -> None:
    async def body(store: Store) -> list[object]:
        versions = [await store.recommend_version("shop")]
        await store.recommend_claim("shop", "h", NOW, 60_000)
        changed = ListChanges(0, NOW, NOW, 0, upserts=[("popular", '[["p1",3]]')])
        await store.recommend_publish("shop", "h", changed)
        versions.append(await store.recommend_version("shop"))
        await store.recommend_claim("shop", "h", NOW, 60_000)
        await store.recommend_publish("shop", "h", ListChanges(0, NOW, NOW, 0))  # no change
        versions.append(await store.recommend_version("shop"))
        lists = await store.recommend_lists("shop")
        await store.recommend_claim("shop", "h", NOW, 60_000)
        await store.recommend_publish("shop", "h", ListChanges(0, NOW, NOW, 0, deletes=["popular"]))
        versions.append(await store.recommend_version("shop"))
        return [versions, lists, await store.recommend_lists("shop")]

    def catalogue_changes(url: str) -> list[tuple[int, int]]:
        """The version as products come, and as one changes with neither the catalogue's
        size nor its latest ``updated`` moving (a restock written with the same time)."""
        seen = []

        async def read(store: Store) -> tuple[int, int]:
            return await store.recommend_version("shop")

        for items in (products(3), [msgspec.structs.replace(products(1)[0], in_stock=False)]):
            put_products(url, "shop", items)
            seen.append(with_store(url, read))
        return seen

    versions, lists, after = with_store(store_url, body)
    assert versions == [(0, 0), (1, 0), (1, 0), (2, 0)]
    assert lists == {"popular": '[["p1",3]]'} and after == {}
    assert catalogue_changes(store_url) == [(2, 1), (2, 2)]


def test_old_visitors_and_days_are_forgotten(store_url: str) -> None:
    async def body(store: Store) -> list[object]:
        await store.recommend_claim("shop", "h", NOW, 60_000)
        batch = Batch(
            1,
            visitors=[
                ("viewed", "old", b"\x93\x90\x90\x90", NOW - 10),
                ("viewed", "new", b"x", NOW),
            ],
            days=[("p1", 10, 1, 0, 0), ("p1", 20, 2, 0, 0)],
        )
        await store.recommend_commit("shop", "h", batch, NOW + 60_000)
        gone = await store.recommend_prune("shop", "viewed", NOW - 5, 15, 100)
        return [
            gone,
            await store.recommend_visitors("shop", "viewed", ["old", "new"]),
            await store.recommend_popularity("shop", 0),
        ]

    gone, visitors, popularity = with_store(store_url, body)
    assert gone == 1 and visitors == {"new": b"x"} and popularity == {"p1": 2}


def test_the_visitors_untouched_longest_are_forgotten_first(store_url: str) -> None:
    async def body(store: Store) -> list[object]:
        await store.recommend_claim("shop", "h", NOW, 60_000)
        visitors = [("viewed", name, b"x", NOW - age) for name, age in
                    [("a", 10), ("b", 40), ("c", 20), ("d", 30), ("e", 1)]]  # fmt: skip
        await store.recommend_commit("shop", "h", Batch(1, visitors=visitors), NOW + 60_000)
        first = await store.recommend_prune("shop", "viewed", NOW - 5, 0, 2)
        left = await store.recommend_visitors("shop", "viewed", list("abcde"))
        rest = await store.recommend_prune("shop", "viewed", NOW - 5, 0, 2)
        return [first, sorted(left), rest, sorted(await store.recommend_visitors(
            "shop", "viewed", list("abcde")))]  # fmt: skip

    assert with_store(store_url, body) == [2, ["a", "c", "e"], 2, ["e"]]
