"""The recommendations' job over a million product events: how long it takes, and how long
each of its transactions holds the database, measured on this machine.

Seeds (fixed seed) a shop of ``--products`` products in 20 categories and ``--events``
product events over 30 days, in the order they happen: visitors view a few products each
(skewed towards popular ones), a third add one to the cart, a tenth buy one to three. The
events go straight into the ``events`` table (the writer is not what is measured). Then
one run of the job counts them all from an empty checkpoint and publishes the lists; then
10,000 more events come and a second run counts them (what every minute's run does).

Prints, per engine: the run's time and rate, its batches (count, median and max time of
each commit: what a request's write may wait behind on SQLite), the lists published, and
the process's peak memory.

    python bench/recommend.py [--events 1000000] [--products 2000] [--engine sqlite|postgres]
                              [--batch N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from postgres_cluster import new_database, postgres_cluster  # noqa: E402
from recommend_shop import DAY, NOW, products, put_products, shop  # noqa: E402
from sitecue.recommend import RecommendJob  # noqa: E402
from sitecue.recommend.job import BATCH  # noqa: E402
from sitecue.store import EventRecord, Store, open_store  # noqa: E402
from sitecue.store.base import INSERT_EVENT, event_row  # noqa: E402
from sitecue.store.recommend import Batch  # noqa: E402


def synthetic(count: int, catalogue: list[str], seed: int, start: int) -> Iterator[EventRecord]:
    """``count`` product events of shoppers over the 30 days before ``start``, a day at a
    time in the order they happen (as the log holds them), seeded."""
    rng = random.Random(seed)
    weights = [1 / (rank + 10) for rank in range(len(catalogue))]  # a long tail
    per_day = -(-count // 30)
    visitor = 0
    for day in range(30, 0, -1):
        events: list[EventRecord] = []
        while len(events) < per_day:
            visitor += 1
            events += _shopper(rng, catalogue, weights, f"{seed}-{visitor:07d}", start - day * DAY)
        events.sort(key=lambda e: e.at)
        yield from events[: min(per_day, count)]
        count -= per_day
        if count <= 0:
            return


def _shopper(
    rng: random.Random, catalogue: list[str], weights: list[float], who: str, day: int
) -> list[EventRecord]:
    """One visitor's session that day: a few views, maybe a cart and a purchase."""
    at = day + rng.randrange(DAY)
    seen = list(dict.fromkeys(rng.choices(catalogue, weights, k=rng.randint(2, 12))))
    events = []
    for product in seen:
        at += rng.randrange(10_000, 600_000)
        events.append(EventRecord("shop", who, "product_view", at, products=[product]))
    if rng.random() < 0.33:
        events.append(
            EventRecord("shop", who, "trigger", at + 1, name="add_to_cart", products=seen[:1])
        )
    if rng.random() < 0.1:
        lines = seen[: rng.randint(1, 3)]
        events.append(EventRecord("shop", who, "event", at + 2, name="purchase", products=lines))
    return events


def _chunks(items: Iterable[EventRecord], size: int) -> Iterator[list[EventRecord]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def fill_sqlite(url: str, events: Iterable[EventRecord]) -> int:
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    count = 0
    for chunk in _chunks(events, 100_000):
        with db:
            db.executemany(INSERT_EVENT, map(event_row, chunk))
        count += len(chunk)
    db.close()
    return count


async def fill_postgres(url: str, events: Iterable[EventRecord]) -> int:
    db = await asyncpg.connect(url)
    columns = ["site", "visitor", "type", "at", "name", "rule", "variant", "decision"]
    columns += ["value", "products", "detail"]
    count = 0
    try:
        for chunk in _chunks(events, 100_000):
            rows = list(map(event_row, chunk))
            await db.copy_records_to_table("events", records=rows, columns=columns)
            count += len(rows)
    finally:
        await db.close()
    return count


def ms(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"{len(values)} × median {statistics.median(values) * 1e3:.1f} ms,"
        f" max {max(values) * 1e3:.1f} ms"
    )


async def timed_run(store: Store, job: RecommendJob, clock: list[int]) -> dict[str, Any]:
    commits: list[float] = []
    commit = store.recommend_commit

    async def timed(site: str, holder: str, batch: Batch, lease_until: int) -> bool:
        t0 = time.perf_counter()
        try:
            return await commit(site, holder, batch, lease_until)
        finally:
            commits.append(time.perf_counter() - t0)

    store.recommend_commit = timed  # type: ignore[method-assign]
    started, cpu = time.perf_counter(), time.process_time()
    outcomes = await job.run()
    clock[0] += 60_000  # PostgreSQL: the second run counts what the first saw
    outcomes += await job.run()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.recommend_commit = commit  # type: ignore[method-assign]
    events = sum(o.events for o in outcomes)
    return {"took": took, "cpu": cpu, "events": events, "commits": commits}


async def bench(url: str, more: list[EventRecord], label: str, batch: int) -> None:
    store = await open_store(url)
    try:
        clock = [NOW]
        site = shop(min_support=2)
        job = RecommendJob(store, lambda: {"shop": site}, clock=lambda: clock[0], batch=batch)
        first = await timed_run(store, job, clock)
        lists = await store.recommend_lists("shop")
        print(
            f"{label}: {first['events']:,} events counted in {first['took']:.1f} s"
            f" ({first['events'] / first['took']:,.0f}/s; this process's CPU time"
            f" {first['cpu']:.1f} s); commits {ms(first['commits'])};"
            f" {len(lists):,} lists published"
        )
        if url.startswith("sqlite"):
            fill_sqlite(url, more)
        else:
            await fill_postgres(url, more)
        clock[0] += 60_000
        second = await timed_run(store, job, clock)
        print(
            f"{label}: the next run: {second['events']:,} new events in {second['took']:.2f} s"
            f" (CPU {second['cpu']:.2f} s);"
            f" commits {ms(second['commits'])}"
        )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--batch", type=int, default=BATCH, help="events per transaction")
    args = parser.parse_args()
    engines = args.engine or ["sqlite"]
    catalogue = products(args.products, categories=20)
    ids = [p.id for p in catalogue]
    more = list(synthetic(10_000, ids, 2, NOW))
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in engines:
            url = f"sqlite:///{Path(tmp) / 'sitecue.db'}"
            asyncio.run(_migrate(url))
            put_products(url, "shop", catalogue)
            t0 = time.perf_counter()
            count = fill_sqlite(url, synthetic(args.events, ids, 1, NOW - DAY))
            print(f"sqlite: seeded {count:,} events in {time.perf_counter() - t0:.1f} s")
            asyncio.run(bench(url, more, "sqlite", args.batch))
        if "postgres" in engines:
            with postgres_cluster() as server, new_database(server, "bench") as url:
                asyncio.run(_migrate(url))
                put_products(url, "shop", catalogue)
                t0 = time.perf_counter()
                events = synthetic(args.events, ids, 1, NOW - DAY)
                count = asyncio.run(fill_postgres(url, events))
                print(f"postgres: seeded {count:,} events in {time.perf_counter() - t0:.1f} s")
                asyncio.run(bench(url, more, "postgres", args.batch))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the process (seeding included): {peak:.0f} MB")


async def _migrate(url: str) -> None:
    store = await open_store(url)
    await store.close()


if __name__ == "__main__":
    main()
