"""Retention's batches: how long each holds the writer, on SQLite and on PostgreSQL, and
what page views' writes wait while a round runs, measured in the same run on this machine.

Fills a store through the writer with 60 days of two sites' records (``--per-day``
decisions and as many events a site and day): news keeps 90 days of decisions, shop 30,
both 45 days of events. One retention round then deletes shop's 30 oldest days of
decisions (batches on both engines: news still keeps those days) and both sites' 15 oldest
days of events (batches on SQLite; whole partitions dropped on PostgreSQL), then vacuums
(SQLite). Meanwhile page views write (one event and one decision each, ``--in-flight`` at
a time), as they do under load; the same load runs first without retention, for a baseline.

Prints each engine's batches (count, median, p90, p99, max ms: each store call's whole
time), what held the writer (SQLite: each holder's turns of the write lock; PostgreSQL: each
batch's DELETE and each partition drop's transaction), and the page views' write latencies
with and without the round. The machine's other load shows in the baseline's tail.

    python bench/retention.py [--per-day 2500] [--in-flight 20] [--engine sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from postgres_cluster import postgres_cluster  # noqa: E402
from sitecue.decide import Verdict  # noqa: E402
from sitecue.ids import record_id  # noqa: E402
from sitecue.retention import Retention, Round  # noqa: E402
from sitecue.store import (  # noqa: E402
    DecisionRecord,
    EventRecord,
    Store,
    open_store,
    partitions,
)
from sites import site  # noqa: E402

DAY = 86_400_000
DAYS = 60
NOW = 1_790_000_000_000 // DAY * DAY + 12 * 3_600_000  # noon UTC
VERDICTS = [Verdict("paywall-faq", True, variant="faq"), Verdict("newsletter", False, reason="x")]
SITES = {
    "news": site(retention={"decisions": "90d", "events": "45d"}),
    "shop": site(
        site="shop",
        origins=["https://shop.example"],
        retention={"decisions": "30d", "events": "45d"},
    ),
}


def ms(values: list[float]) -> str:
    if not values:
        return "none"
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    over = sum(v > 0.05 for v in values)
    return (
        f"{len(values)} × median {statistics.median(values) * 1e3:.1f} ms,"
        f" p90 {p90 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, max {values[-1] * 1e3:.1f} ms,"
        f" {over} over 50 ms"
    )


async def fill(store: Store, per_day: int) -> None:
    for day in range(DAYS, 0, -1):
        await store.rotate_partitions(NOW - day * DAY, {})  # PostgreSQL: the day's partition
        for s in SITES:
            start = NOW - day * DAY
            ats = [start + i * (DAY // per_day) for i in range(per_day)]
            for chunk in range(0, per_day, 1000):
                part = ats[chunk : chunk + 1000]
                await store.write(
                    [EventRecord(s, f"v{at % 997}", "trigger", at, "paywall_view") for at in part],
                    [
                        DecisionRecord(record_id(at), s, f"v{at % 997}", at, "https://x/", VERDICTS)
                        for at in part
                    ],
                )
    await store.rotate_partitions(NOW, {})


async def page_views(store: Store, in_flight: int, until: asyncio.Event, n: int) -> list[float]:
    """Write what page views write until ``until`` is set (or n of them, if it is None);
    each write's latency."""
    waits: list[float] = []
    done = 0

    async def one(i: int) -> None:
        at = NOW + i
        t0 = time.perf_counter()
        await store.write(
            [EventRecord("news", f"p{i}", "trigger", at, "paywall_view")],
            [DecisionRecord(record_id(at), "news", f"p{i}", at, "https://x/", VERDICTS)],
        )
        waits.append(time.perf_counter() - t0)

    async def worker(w: int) -> None:
        nonlocal done
        while not until.is_set() and done < n:
            done += 1
            await one(done * in_flight + w)

    await asyncio.gather(*(worker(w) for w in range(in_flight)))
    return waits


def hold_times(store: Store) -> dict[str, list[float]]:
    """SQLite: how long each holder of the write lock held it, by the holder's task name
    (the lock's wait left out). PostgreSQL has no such lock: nothing."""
    holds: dict[str, list[float]] = {}
    taken = getattr(store, "_write_lock", None)
    if taken is None:
        return holds

    @contextlib.asynccontextmanager
    async def timed() -> AsyncIterator[None]:
        async with taken():
            t0 = time.perf_counter()
            try:
                yield
            finally:
                task = asyncio.current_task()
                name = task.get_name() if task else "?"
                holds.setdefault(name, []).append(time.perf_counter() - t0)

    store._write_lock = timed  # type: ignore[attr-defined]
    return holds


def statement_times(holds: dict[str, list[float]]) -> None:
    """PostgreSQL: the time of each batch's DELETE (one transaction: all it holds are the
    rows it deletes; inserts take no lock it conflicts with) and of each partition drop's
    transaction (lock, check, DROP: inserts wait for that one), in ``holds``."""
    execute = asyncpg.Connection.execute

    began: dict[int, float] = {}  # connection -> when its batch's transaction began

    async def timed_execute(self: asyncpg.Connection, sql: str, *args: Any, **kw: Any) -> Any:
        if sql.startswith("SET LOCAL synchronous_commit"):  # a batch's, after BEGIN
            began[id(self)] = time.perf_counter()
        try:
            return await execute(self, sql, *args, **kw)
        finally:
            if sql.startswith(("COMMIT", "ROLLBACK")) and id(self) in began:
                took = time.perf_counter() - began.pop(id(self))
                holds.setdefault("DELETE batch transaction", []).append(took)

    drop = partitions._drop

    async def timed_drop(*args: Any) -> bool:
        t0 = time.perf_counter()
        try:
            return await drop(*args)
        finally:
            holds.setdefault("partition drop", []).append(time.perf_counter() - t0)

    asyncpg.Connection.execute = timed_execute  # type: ignore[method-assign]
    partitions._drop = timed_drop  # type: ignore[assignment]


async def engine(name: str, url: str, per_day: int, in_flight: int) -> None:
    store = await open_store(url)
    holds = hold_times(store)
    if name == "postgres":
        statement_times(holds)
    try:
        t0 = time.perf_counter()
        await fill(store, per_day)
        print(
            f"{name}: filled {2 * 2 * DAYS * per_day:,} records in {time.perf_counter() - t0:.0f} s"
        )
        never = asyncio.Event()
        baseline = await page_views(store, in_flight, never, 3000)
        finished = asyncio.Event()
        retention = Retention(store, lambda: SITES, clock=lambda: NOW)

        async def round_then_stop() -> Round:
            try:
                return await retention.run_once()
            finally:
                finished.set()

        holds.clear()
        t0 = time.perf_counter()
        done, during = await asyncio.gather(
            asyncio.create_task(round_then_stop(), name="retention"),
            page_views(store, in_flight, finished, 10**9),
        )
        took = time.perf_counter() - t0
        print(
            f"{name}: round of {took:.1f} s deleted {done.deleted['decisions']:,} decisions,"
            f" {done.deleted['events']:,} events; partitions dropped {len(done.rotation.dropped)},"
            f" free pages left {done.free_pages}"
        )
        print(f"{name}: delete batches {ms(done.batches)}")
        print(f"{name}: vacuum steps {ms(done.steps)}")
        for holder, times in sorted(holds.items()):
            print(f"{name}: held by {holder}: {ms(times)}")
        print(f"{name}: page view writes, no retention:     {ms(baseline)}")
        print(f"{name}: page view writes, during the round: {ms(during)}")
    finally:
        await store.close()


async def main(per_day: int, in_flight: int, engines: list[str]) -> None:
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory() as tmp:
            await engine("sqlite", f"sqlite:///{tmp}/bench.db", per_day, in_flight)
    if "postgres" in engines:
        with postgres_cluster(fsync=True) as server:
            await engine("postgres", server, per_day, in_flight)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=2500)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--engine", action="append", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    asyncio.run(main(args.per_day, args.in_flight, args.engine or ["sqlite", "postgres"]))
