"""The recommendations' job on both engines: a planted pattern comes out, floods do not,
runs are incremental, late and out-of-order records are counted once, one node at a time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from postgres_cluster import new_database
from recommend_shop import DAY, NOW, bought, carted, history, products, put_products, shop, view
from sitecue.catalog import product_key
from sitecue.config import Recommend
from sitecue.recommend import Index, RecommendJob, recommend
from sitecue.recommend.counting import MAX_PRODUCTS
from sitecue.recommend.index import load_index
from sitecue.recommend.job import LEASE_MS, Outcome, every_from
from sitecue.settings import SettingsError
from sitecue.store import EventRecord, Product, Store, open_store

CATALOGUE = products(40)
IDS = [p.id for p in CATALOGUE]
A, B = "p001", "p002"


def with_shop(url: str, body: Callable[[Store], Awaitable[Any]]) -> Any:
    """``body(store)`` on a migrated store whose shop has the 40-product catalogue."""

    async def migrate() -> None:
        store = await open_store(url)
        await store.close()

    async def main() -> Any:
        store = await open_store(url)
        try:
            return await body(store)
        finally:
            await store.close()

    asyncio.run(migrate())
    put_products(url, "shop", CATALOGUE)
    return asyncio.run(main())


def job(store: Store, clock: list[int] | None = None, **catalog: Any) -> RecommendJob:
    """A job over the shop; ``clock[0]`` is its time (the tests move it)."""
    now = clock if clock is not None else [NOW]
    site = shop(**catalog)
    return RecommendJob(store, lambda: {"shop": site}, clock=lambda: now[0], lists_every_ms=0)


async def settled(j: RecommendJob, clock: list[int] | None = None) -> list[Outcome]:
    """Two runs a minute apart: on PostgreSQL the first sees the newest ids, the second
    counts them (see store.recommend.Horizon); on SQLite the first counts them all."""
    first = await j.run()
    if clock is not None:
        clock[0] += 60_000
    else:
        j.clock = lambda: NOW + 60_000
    return first + await j.run()


async def write(store: Store, events: list[EventRecord], chunk: int = 500) -> None:
    for i in range(0, len(events), chunk):
        await store.write(events[i : i + chunk], [])


def planted(seed: int = 7) -> list[EventRecord]:
    """Noise from 300 random shoppers, and 25 people who bought A, then B a few days later."""
    events = history(seed, 300, IDS)
    for i in range(25):
        at = NOW - 15 * DAY + i * 3_600_000
        events.append(bought(f"pair-{i}", [A], at))
        events.append(bought(f"pair-{i}", [B, f"p{10 + i % 20:03d}"], at + 3 * DAY))
    return events


ALL = Recommend(
    strategies=["bought_together", "viewed_together", "popular_in_category", "popular"],
    limit=12,
)


def test_buyers_of_a_get_b_recommended_on_a_and_never_what_they_bought(store_url: str) -> None:
    async def body(store: Store) -> tuple[Index, list[Outcome]]:
        await write(store, planted())
        outcomes = await settled(job(store))
        return await load_index(store, "shop"), outcomes

    index, outcomes = with_shop(store_url, body)
    assert sum(o.events for o in outcomes) == len(planted())
    together = recommend(index, Recommend(strategies=["bought_together"]), A, [], set())
    assert together[0].product.id == B and together[0].strategy == "bought_together"
    # Someone who bought B (here or anywhere) never gets it, by any strategy, on any page.
    for page in [A, None, *IDS[:10]]:
        recent = [product_key(i) for i in IDS[:8]]
        picks = recommend(index, ALL, page, recent, {product_key(B)})
        assert picks and B not in {p.product.id for p in picks}
        assert page not in {p.product.id for p in picks}


def test_a_flood_from_one_visitor_counts_once_per_pair_and_product(store_url: str) -> None:
    flood = [view("bot", (A, B)[i % 2], NOW - DAY + i) for i in range(2_000)]
    flood += [view("bot", p, NOW - DAY + 5_000 + i) for i, p in enumerate(IDS * 3)]
    honest = [view(f"h{i}", p, NOW - DAY + i) for i in range(3) for p in ("p005", "p006")]

    async def body(store: Store) -> tuple[dict[str, int], list[tuple[str, str, int]], Index]:
        await write(store, flood + honest)
        await settled(job(store, min_support=1))
        totals = await store.recommend_totals("shop", "viewed")
        pairs = await store.recommend_pairs("shop", "viewed", 1, ("", ""), 10_000)
        return totals, pairs, await load_index(store, "shop")

    totals, pairs, index = with_shop(store_url, body)
    assert totals[A] == totals[B] == 1  # one viewer, however many views
    assert (A, B, 1) in pairs
    bot_pairs = [p for p in pairs if (p[0], p[1]) != ("p005", "p006")]
    assert len(bot_pairs) <= MAX_PRODUCTS * (MAX_PRODUCTS - 1) // 2
    assert all(n == 1 for a, b, n in bot_pairs)
    assert ("p005", "p006", 4) in pairs  # three honest viewers, and the bot once
    # Three honest viewers outweigh one bot's two thousand views in popularity.
    assert index.popular[:2] == ("p005", "p006")


def test_runs_are_incremental_and_end_where_one_run_would(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = sorted(planted(11), key=lambda e: e.at)  # as they happen
    half = len(events) // 2

    async def in_steps(store: Store) -> dict[str, str]:
        clock = [events[half - 1].at + 60_000]  # a run while the second half is to come
        j = job(store, clock)
        j.batch = 37  # many small batches: memory bounded by the batch, same result
        await write(store, events[:half])
        await settled(j, clock)
        await write(store, events[half:])
        clock[0] = NOW
        await settled(j, clock)
        return await store.recommend_lists("shop")

    async def at_once(store: Store) -> dict[str, str]:
        await write(store, events)
        await settled(job(store))
        return await store.recommend_lists("shop")

    with monkeypatch.context() as patched:  # the pairs merged in many transactions
        patched.setattr("sitecue.recommend.job.MERGE", 50)
        stepped = with_shop(store_url, in_steps)
    assert stepped["bought:" + A].startswith(f'[["{B}"')
    if store_url.startswith("sqlite"):  # (one PostgreSQL database per test)
        assert stepped == with_shop(store_url.replace("sitecue.db", "again.db"), at_once)


def test_a_late_record_pairs_by_its_own_time(store_url: str) -> None:
    async def body(store: Store) -> list[tuple[str, str, int]]:
        clock = [NOW]
        j = job(store, clock, min_support=1)
        await write(store, [view("late", A, NOW - 2 * DAY), view("late", "p009", NOW - DAY // 2)])
        await settled(j, clock)
        # Spooled during an outage: written now (a new id), made 3 hours after the first view.
        await write(store, [view("late", B, NOW - 2 * DAY + 3 * 3_600_000)])
        clock[0] += 60_000
        await settled(j, clock)
        return await store.recommend_pairs("shop", "viewed", 1, ("", ""), 100)

    pairs = with_shop(store_url, body)
    assert pairs == [(A, B, 1)]  # p009 came a day and more after both: not within 1d


def test_one_node_at_a_time_runs_a_site(store_url: str) -> None:
    async def body(store: Store) -> tuple[Outcome, Outcome, bool]:
        await write(store, planted())
        held = await store.recommend_claim("shop", "other-node", NOW, LEASE_MS)
        assert held is not None
        blocked = (await job(store).run())[0]
        # Once the other node's lease has run out, a run takes over; the other node's
        # next batch is then refused, and nothing of it is written.
        late = job(store, [NOW + LEASE_MS + 1])
        taken = (await late.run())[0]
        from sitecue.store.recommend import Batch

        stale = await store.recommend_commit(
            "shop",
            "other-node",
            Batch(10**9, pairs=[(f"viewed {A} {B}", 1000)]),
            NOW + 2 * LEASE_MS,
        )
        return blocked, taken, stale

    blocked, taken, stale = with_shop(store_url, body)
    assert blocked.skipped == "another node is running it" and blocked.events == 0
    assert taken.skipped is None
    assert stale is False


def test_cosine_scores_keep_a_bestseller_from_every_slot(store_url: str) -> None:
    events = []
    for i in range(40):  # everybody views the bestseller p000 with some random product
        events += [view(f"b{i}", "p000", NOW - DAY), view(f"b{i}", IDS[1 + i % 39], NOW - DAY)]
    for i in range(4):  # four people view A and B together
        events += [view(f"ab{i}", A, NOW - DAY), view(f"ab{i}", B, NOW - DAY)]

    async def body(store: Store) -> dict[str, str]:
        await write(store, events)
        await settled(job(store, min_support=2))
        return await store.recommend_lists("shop")

    lists = with_shop(store_url, body)
    assert lists["viewed:" + A].startswith(f'[["{B}"')  # B before the bestseller p000
    assert "viewed:p030" not in lists  # seen with p000 by one person only: below support


def test_popular_lists_span_popular_over_by_category(store_url: str) -> None:
    events = [view(f"o{i}", "p003", NOW - 40 * DAY) for i in range(9)]  # too old to count
    events += [view(f"n{i}", "p008", NOW - DAY) for i in range(2)]
    events += [carted("c", "p013", NOW - DAY), bought("c", ["p013"], NOW - DAY)]

    async def body(store: Store) -> Index:
        await write(store, events)
        await settled(job(store))
        return await load_index(store, "shop")

    index = with_shop(store_url, body)
    assert index.popular == ("p013", "p008")
    assert index.popular_in["c3"] == ("p013", "p008")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    with new_database(postgres_server, "t") as url:
        yield url


def test_postgres_ids_committed_out_of_order_are_not_skipped(postgres_url: str) -> None:
    """A writer that took a smaller id commits after a larger one was seen: the job counts
    only up to an id seen a while ago, so it finds the straggler."""

    async def body(store: Store) -> list[tuple[str, str, int]]:
        clock = [NOW]
        j = job(store, clock, min_support=1)
        await write(store, [view("x", A, NOW - 1000)])
        db = await asyncpg.connect(postgres_url)
        newest = await db.fetchval("SELECT MAX(id) FROM events")
        await db.execute("SELECT setval('events_id_seq', $1)", newest + 10)
        await write(store, [view("y", A, NOW - 900)])  # id newest + 11, committed
        first = await j.run()  # sees newest + 11; counts nothing yet
        # The straggler: id newest + 5, committed only now.
        await db.execute(
            "INSERT INTO events (id, site, visitor, type, at, products)"
            " VALUES ($1, 'shop', 'x', 'product_view', $2, $3)",
            newest + 5, NOW - 800, f'["{B}"]',
        )  # fmt: skip
        await db.close()
        clock[0] += 60_000
        second = await j.run()
        assert first[0].events == 0 and second[0].events == 3
        return await store.recommend_pairs("shop", "viewed", 1, ("", ""), 100)

    assert with_shop(postgres_url, body) == [(A, B, 1)]


def test_every_comes_from_the_environment_and_fails_fast_naming_it() -> None:
    assert every_from({}) == 60.0
    assert every_from({"SITECUE_RECOMMEND_EVERY": "5"}) == 5.0
    with pytest.raises(SettingsError, match="SITECUE_RECOMMEND_EVERY"):
        every_from({"SITECUE_RECOMMEND_EVERY": "0"})


def test_lists_wait_their_interval_while_counting_goes_on(store_url: str) -> None:
    async def body(store: Store) -> tuple[list[int], list[int]]:
        clock = [NOW]
        j = job(store, clock, min_support=1)
        j.lists_every_ms = 300_000
        counted, changed = [], []
        for minute, visitor in enumerate("abcdefghijkl"):
            await write(store, [view(visitor, A, NOW + minute), view(visitor, B, NOW + minute)])
            (outcome,) = await j.run()
            counted.append(outcome.events)
            if outcome.changed:
                changed.append(clock[0])
            clock[0] += 60_000
        return counted, changed

    counted, changed = with_shop(store_url, body)
    # Every run counts (SQLite what just came, PostgreSQL what the run before saw).
    assert counted[1:] == [2] * 11
    # The lists follow, at most every five minutes (their popular list changes every time).
    assert len(changed) >= 2
    assert all(later - earlier >= 300_000 for earlier, later in itertools.pairwise(changed))


def test_products_pages_describe_go_to_the_catalogue_and_then_count(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sitecue.db'}"
    handed: list[tuple[str, list[tuple[str, str, str]], int]] = []

    async def take(
        store: Store, site: str, described: Any, confirm: int, now: int | None = None
    ) -> list[str]:
        handed.append((site, list(described), confirm))
        put_products(url, "shop", [Product("new-1", "New", "https://shop.example/new-1")])
        return ["new-1"]

    async def body(store: Store) -> list[tuple[str, str, int]]:
        detail = '{"name":"New"}'
        await write(store, [
            view("p", "new-1", NOW, detail=detail), view("p", A, NOW),
            view("q", "new-1", NOW, detail=detail), view("q", A, NOW),
        ])  # fmt: skip
        site = shop(from_pages=True, confirm=2, min_support=2)
        j = RecommendJob(store, lambda: {"shop": site}, clock=lambda: NOW, apply_pages=take)
        await j.run()
        return await store.recommend_pairs("shop", "viewed", 1, ("", ""), 10)

    pairs = with_shop(url, body)
    described = [("new-1", '{"name":"New"}', "p"), ("new-1", '{"name":"New"}', "q")]
    assert handed == [("shop", described, 2)]
    assert pairs == [("new-1", A, 2)]  # counted in the same run that took it


def test_the_job_hands_page_descriptions_to_the_catalogue_itself(store_url: str) -> None:
    """Without an ``apply_pages`` given, the job uses sitecue.catalog.upsert_page_products:
    a description two visitors sent becomes a product (source ``page``) and is counted."""
    detail = msgspec.json.encode({"name": "New", "url": "https://shop.example/new-1"}).decode()

    async def body(store: Store) -> list[Any]:
        await write(store, [
            view("p", "new-1", NOW, detail=detail), view("p", A, NOW),
            view("q", "new-1", NOW, detail=detail), view("q", A, NOW),
        ])  # fmt: skip
        j = job(store, from_pages=True, confirm=2, min_support=2)
        await settled(j)
        taken = await store.product("shop", "new-1")
        pairs = await store.recommend_pairs("shop", "viewed", 1, ("", ""), 10)
        return [taken and (taken.name, taken.source), pairs]

    assert with_shop(store_url, body) == [("New", "page"), [("new-1", A, 2)]]


def test_the_first_events_counted_are_listed_at_once(store_url: str) -> None:
    """On PostgreSQL the first run only sees the newest ids (and publishes nothing to list);
    the next, a minute on, lists what it counts at once, not five minutes later."""

    async def body(store: Store) -> dict[str, str]:
        await write(store, [view(v, p, NOW) for v in "ab" for p in (A, B)])
        j = job(store, min_support=2)
        j.lists_every_ms = 300_000
        await settled(j)
        return await store.recommend_lists("shop")

    assert with_shop(store_url, body)["viewed:" + A] == f'[["{B}",1.0]]'
