"""The recommendations' job over a million product events: how long it takes, and how long
each of its transactions holds the database, measured on this machine.

Seeds (fixed seed) a shop of ``--products`` products in 20 categories and ``--events``
product events over 30 days, in the order they happen: visitors view a few products each
(skewed towards popular ones), a third add one to the cart, a tenth buy one to three. The
events go straight into the ``events`` table (the writer is not what is measured). Then
one run of the job counts them all from an empty checkpoint and publishes the lists; then
10,000 more events come and a second run counts them (what every minute's run does).

SQLite: the file is seeded once, and each of ``--runs`` runs (default 3) works on a fresh
copy of it in its own process, so that its peak memory is the job's own; the median run is
reported. Each run first scans the same events with a plain SELECT (no job): its time is
the machine's speed at that moment, so that the job's ratio to it means something on a
loaded machine. Measure when ``uptime`` shows the machine idle.

Prints, per run: the job's wall and CPU time and rate, the baseline scan's, its batches
(count, median and max time of each commit: what a request's write may wait behind on
SQLite) and merges, the lists published, and the run's peak memory.

    python bench/recommend.py [--events 1000000] [--products 2000] [--engine sqlite|postgres]
                              [--batch N] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
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
from sitecue.store.recommend import EVENTS, Batch  # noqa: E402


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
    merges: list[float] = []
    commit, merge = store.recommend_commit, store.recommend_merge

    async def timed(site: str, holder: str, batch: Batch, lease_until: int) -> bool:
        t0 = time.perf_counter()
        try:
            return await commit(site, holder, batch, lease_until)
        finally:
            commits.append(time.perf_counter() - t0)

    async def timed_merge(*args: Any) -> bool:
        t0 = time.perf_counter()
        try:
            return await merge(*args)
        finally:
            merges.append(time.perf_counter() - t0)

    store.recommend_commit = timed  # type: ignore[method-assign]
    store.recommend_merge = timed_merge  # type: ignore[method-assign]
    started, cpu = time.perf_counter(), time.process_time()
    outcomes = await job.run()
    clock[0] += 60_000  # PostgreSQL: the second run counts what the first saw
    outcomes += await job.run()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.recommend_commit = commit  # type: ignore[method-assign]
    store.recommend_merge = merge  # type: ignore[method-assign]
    events = sum(o.events for o in outcomes)
    return {"took": took, "cpu": cpu, "events": events, "commits": commits, "merges": merges}


def scan(path: str) -> tuple[float, float, int]:
    """The baseline: the job's own query over every product event of the shop, rows fetched
    and nothing done with them; (wall s, CPU s, rows)."""
    db = sqlite3.connect(path)
    started, cpu = time.perf_counter(), time.process_time()
    rows = 0
    for _ in db.execute(EVENTS, ("shop", 0, 2**62, 2**62)):
        rows += 1
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    return took, cpu, rows


async def bench(url: str, more: list[EventRecord], label: str, batch: int) -> dict[str, Any]:
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
            f" merges {ms(first['merges'])}; {len(lists):,} lists published"
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
            f" commits {ms(second['commits'])}; merges {ms(second['merges'])}"
        )
    finally:
        await store.close()
    first["lists"] = len(lists)
    return {k: v for k, v in first.items() if k not in ("commits", "merges")}


def one_run(seeded: str, products: int, batch: int) -> None:
    """One SQLite run on a fresh copy of ``seeded`` (in a process of its own: see main);
    prints its figures, then a JSON line of them for the parent."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sitecue.db"
        shutil.copy(seeded, path)
        base_took, base_cpu, rows = scan(str(path))
        print(f"sqlite: baseline: a plain SELECT of the {rows:,} events: {base_took:.1f} s"
              f" (CPU {base_cpu:.1f} s)")  # fmt: skip
        ids = [p.id for p in products_of(products)]
        more = list(synthetic(10_000, ids, 2, NOW))
        figures = asyncio.run(bench(f"sqlite:///{path}", more, "sqlite", batch))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sqlite: peak memory of the run's process: {peak:.0f} MB", flush=True)
    figures.update(base_took=base_took, base_cpu=base_cpu, peak=peak)
    print("FIGURES " + json.dumps(figures), flush=True)


def products_of(count: int) -> list[Any]:
    return products(count, categories=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--batch", type=int, default=BATCH, help="events per transaction")
    parser.add_argument("--runs", type=int, default=3, help="SQLite runs (median reported)")
    parser.add_argument("--one-run", help=argparse.SUPPRESS)  # a run's process (see one_run)
    args = parser.parse_args()
    if args.one_run:
        one_run(args.one_run, args.products, args.batch)
        return
    engines = args.engine or ["sqlite"]
    catalogue = products_of(args.products)
    ids = [p.id for p in catalogue]
    more = list(synthetic(10_000, ids, 2, NOW))
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in engines:
            path = Path(tmp) / "seeded.db"
            url = f"sqlite:///{path}"
            asyncio.run(_migrate(url))
            put_products(url, "shop", catalogue)
            t0 = time.perf_counter()
            count = fill_sqlite(url, synthetic(args.events, ids, 1, NOW - DAY))
            print(f"sqlite: seeded {count:,} events in {time.perf_counter() - t0:.1f} s")
            runs = [sqlite_run(str(path), args, i) for i in range(args.runs)]
            median = sorted(runs, key=lambda r: r["took"])[len(runs) // 2]
            walls = ", ".join(f"{r['took']:.1f}" for r in runs)
            print(
                f"sqlite: median of {len(runs)} runs: {median['took']:.1f} s wall,"
                f" CPU {median['cpu']:.1f} s, {median['events'] / median['took']:,.0f} events/s,"
                f" peak memory {median['peak']:.0f} MB; baseline scan in the same run"
                f" {median['base_took']:.1f} s (CPU {median['base_cpu']:.1f} s): job/scan CPU"
                f" {median['cpu'] / median['base_cpu']:.1f}×; all runs' wall"
                f" {walls} s"
            )
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


def sqlite_run(seeded: str, args: argparse.Namespace, i: int) -> dict[str, Any]:
    """Run ``one_run`` in a process of its own; its figures."""
    print(f"sqlite: run {i + 1} of {args.runs} (load average {os.getloadavg()[0]:.1f})")
    command = [sys.executable, __file__, "--one-run", seeded, "--products", str(args.products)]
    command += ["--batch", str(args.batch)]
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    figures: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("FIGURES "):
            figures = json.loads(line.removeprefix("FIGURES "))
        else:
            print(f"  {line}")
    return figures


async def _migrate(url: str) -> None:
    store = await open_store(url)
    await store.close()


if __name__ == "__main__":
    main()
