"""Reports at size: fill a store with N decisions of the demo sites (and their impressions,
clicks, dismissals, conversions and valued goal events) through the store's writer, spread
over 90 days with injected time, then time ``GET /v1/results`` and a 90-day
``GET /v1/reports`` through the real ASGI app, called in-process (the median of 25 calls
each), on SQLite and on PostgreSQL (a throwaway cluster, with fsync). Also printed: the
writer's records per second while filling (it maintains the rollups in the same
transactions), and the bytes the store holds per decision, table by table. Idempotency keys
older than two days are pruned each simulated day, as the server's retention task does.

    python bench/reports.py                          # 1M and 10M decisions, both engines
    python bench/reports.py --sizes 1e5 --engines sqlite   # a quick run
    python bench/reports.py --until 05:10    # measure what is filled by then (UTC)

Each size is measured when the fill reaches it, and a copy of the store is kept; at the end
every copy is timed again side by side (calls alternating between them), which gives the
ratios: a size measured alone, half an hour earlier, may have had a busier or a quieter
machine. Targets: both calls under 50 ms at 10M decisions, and within 2x of their time at 1M.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlencode

import asyncpg
from starlette.types import ASGIApp, Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from engines import copy_database, engine_urls  # noqa: E402
from sitecue.api.keys import mint_key  # noqa: E402
from sitecue.app import build_app  # noqa: E402
from sitecue.rules import load_sites  # noqa: E402
from sitecue.runtime import goals_of  # noqa: E402
from sitecue.settings import Settings  # noqa: E402
from sitecue.store import DecisionRecord, EventRecord, open_store  # noqa: E402
from traffic import DAY_MS, T0, page_views  # noqa: E402

DAYS = 91
CALLS = 25  # timed calls per endpoint; the median is printed
TARGET_MS = 50.0
# (path, params) of what is timed: every experiment's results, and one rule's 90-day report.
START = datetime.fromtimestamp(T0 / 1000, UTC).date()
END = datetime.fromtimestamp((T0 + (DAYS - 1) * DAY_MS) / 1000, UTC).date()
PERIOD = {"from": str(START), "to": str(END)}
CALLS_TIMED = [
    ("/v1/results", {"site": "news", "rule": "newsletter"}),
    ("/v1/results", {"site": "news", "rule": "paywall-faq"}),
    ("/v1/results", {"site": "shop", "rule": "first-purchase"}),
    ("/v1/reports", {"site": "news", "rule": "newsletter", **PERIOD}),
    ("/v1/reports", {"site": "shop", "rule": "first-purchase", **PERIOD}),
    ("/v1/reports", {"site": "news", "rule": "newsletter", **PERIOD, "interval": "week"}),
]


def size(text: str) -> int:
    return int(float(text))


class Filled(NamedTuple):
    decisions: int
    events: int
    writing: float  # seconds the writer took over its groups
    wall: float  # seconds the fill took, generating the traffic included
    complete: bool  # False: the deadline stopped the fill


# Decisions handed to the writer at once: one group, one transaction (with their events,
# about 1.6 records a decision). A busy server's writer commits what has queued up; large
# groups keep the fill's cost in the store rather than in per-commit overhead.
GROUP = 20_000


async def fill(url: str, n: int, layer: int, deadline: float) -> Filled:
    """Write ``n`` decisions (one layer: see traffic.page_views) and their events through
    the writer, one group per batch, unless the deadline (epoch seconds) comes first. The
    next group is made (in a thread) while the writer commits this one."""
    # The goals the app gives the store: goal events (subscribe, purchase) convert by them.
    store = await open_store(url, goals=goals_of(load_sites(ROOT / "config")))
    loop = asyncio.get_running_loop()
    groups = page_views(n, days=DAYS - 1, layer=layer, batch=GROUP)
    decisions = events = 0
    writing = 0.0
    pruned = T0
    began = time.perf_counter()

    async def write(
        batch_events: list[EventRecord], batch_decisions: list[DecisionRecord]
    ) -> float:
        start = time.perf_counter()
        await store.write(batch_events, batch_decisions)
        return time.perf_counter() - start

    def made() -> tuple[list[EventRecord], list[DecisionRecord]] | None:
        return next(groups, None)

    try:
        batch = await loop.run_in_executor(None, made)
        while batch is not None:
            if time.time() > deadline:
                return Filled(decisions, events, writing, time.perf_counter() - began, False)
            batch_events, batch_decisions = batch
            took, batch = await asyncio.gather(
                write(batch_events, batch_decisions), loop.run_in_executor(None, made)
            )
            writing += took
            decisions += len(batch_decisions)
            events += len(batch_events)
            now = batch_decisions[-1].at if batch_decisions else pruned
            if now - pruned >= DAY_MS:  # a day has passed: keys older than two days go
                await prune_keys(url, now - KEYS_KEPT_MS)
                pruned = now
    finally:
        await store.close()
    return Filled(decisions, events, writing, time.perf_counter() - began, True)


async def add_key(url: str) -> str:
    """An admin key for both sites, stored; its text."""
    store = await open_store(url)
    try:
        text, record = mint_key(["news", "shop"], "bench")
        await store.add_api_key(record)
    finally:
        await store.close()
    return text


# The idempotency keys of records older than this are pruned, daily, as the server's
# retention task does (a retry comes within minutes), so the fill's time and bytes are
# those of a server that has been running for the 90 days, not of one that never pruned.
KEYS_KEPT_MS = 2 * DAY_MS
PRUNE_KEYS = "DELETE FROM record_keys WHERE at < {}"


async def prune_keys(url: str, before: int) -> None:
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            # The writer may hold the lock for a whole group (seconds on a loaded machine).
            db.execute("PRAGMA busy_timeout=120000")
            db.execute(PRUNE_KEYS.format("?"), (before,))
        finally:
            db.close()
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(PRUNE_KEYS.format("$1"), before)
    finally:
        await conn.close()


SQLITE_SIZES = "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
# Partitions (the decision and event logs are partitioned by day) count under their table.
PG_SIZES = """
SELECT COALESCE(pg_partition_root(c.oid), c.oid)::regclass::text,
       SUM(pg_total_relation_size(c.oid))::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
GROUP BY 1
"""


async def table_bytes(url: str) -> dict[str, int]:
    """Bytes on disk per table, its indexes (and TOAST, partitions) included."""
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            tables = dict(db.execute("SELECT name, tbl_name FROM sqlite_schema").fetchall())
            sizes: dict[str, int] = {}
            for name, pages in db.execute(SQLITE_SIZES).fetchall():
                table = tables.get(name, name)
                sizes[table] = sizes.get(table, 0) + pages
            return sizes
        finally:
            db.close()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE")  # the visibility map and free space, as in steady use
        return {r[0]: r[1] for r in await conn.fetch(PG_SIZES)}
    finally:
        await conn.close()


async def request(app: ASGIApp, path: str, query: str, key: str) -> int:
    """One GET through the whole ASGI app (middleware, routing, the key, the query, the
    encoding), called in this event loop: the server's time for the request, without the
    test client's thread hop and HTTP client, which add milliseconds of their own jitter."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"news.example"), (b"authorization", f"Bearer {key}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("news.example", 443),
    }
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def app_settings(url: str, data_dir: str) -> Settings:
    return Settings.load(
        config_dir=str(ROOT / "config"),
        db=url,
        env={"SITECUE_DATA_DIR": data_dir, "SITECUE_SECRETS": "bench-secret-000000000"},
    )


async def timed(stores: list[Settings], key: str, calls: int) -> list[list[tuple[str, float, int]]]:
    """Per store, the median milliseconds of each timed call (after one untimed call) and its
    status. With several stores, their calls alternate, so that whatever else the machine
    does weighs on each the same and their ratio is the stores' own."""
    apps = [build_app(settings) for settings in stores]
    out: list[list[tuple[str, float, int]]] = [[] for _ in apps]
    async with AsyncExitStack() as running:
        for app in apps:
            await running.enter_async_context(app.router.lifespan_context(app))
        for path, params in CALLS_TIMED:
            query = urlencode(params)
            statuses = [await request(app, path, query, key) for app in apps]
            times: list[list[float]] = [[] for _ in apps]
            for _ in range(calls):
                for i, app in enumerate(apps):
                    start = time.perf_counter()
                    await request(app, path, query, key)
                    times[i].append((time.perf_counter() - start) * 1000)
            label = f"{path}?{'&'.join(f'{k}={v}' for k, v in params.items() if k != 'from')}"
            for i, status in enumerate(statuses):
                out[i].append((label, statistics.median(times[i]), status))
    return out


def measure(
    engine: str, url: str, filled: Filled, data_dir: str, key: str, calls: int
) -> list[tuple[str, float, int]]:
    """Print the writer's rate, the bytes per decision and the timed calls of the store."""
    records = filled.decisions + filled.events
    print(
        f"  {engine} {filled.decisions:,} decisions, {filled.events:,} events over {DAYS} days"
        f"{'' if filled.complete else ' (stopped by the deadline)'}: writer"
        f" {records / filled.writing:,.0f} records/s ({filled.writing:,.0f} s), fill"
        f" {records / filled.wall:,.0f} records/s ({filled.wall:,.0f} s, traffic made alongside)",
        flush=True,
    )
    sizes = asyncio.run(table_bytes(url))
    raw = sizes.get("decisions", 0) + sizes.get("events", 0)
    print(
        f"    bytes per decision: {raw / filled.decisions:,.0f} in the log (decisions and"
        " events, indexes included; decisions alone"
        f" {sizes.get('decisions', 0) / filled.decisions:,.0f});"
        f" {sum(sizes.values()) / filled.decisions:,.0f} in the whole store"
    )
    print(
        "    tables: "
        + ", ".join(
            f"{name} {value / 1e6:,.1f} MB" for name, value in sorted(sizes.items()) if value > 1e5
        ),
        flush=True,
    )
    (figures,) = asyncio.run(timed([app_settings(url, data_dir)], key, calls))
    for label, ms, status in figures:
        print(f"    {label:60} {ms:7.1f} ms (HTTP {status})", flush=True)
    return figures


def grow(
    engine: str, url: str, sizes: list[int], data_dir: str, calls: int, deadline: float
) -> dict[int, list[tuple[str, float, int]]]:
    """Fill one store layer by layer (``sizes[0]`` decisions each, over the same days) and
    measure it at each of ``sizes``, or where the deadline stopped the fill. A copy of the
    store is kept at each size, and at the end all of them are timed side by side: those
    figures (returned) compare the sizes under the same load."""
    key = asyncio.run(add_key(url))
    copies: dict[int, str] = {}
    total = Filled(0, 0, 0.0, 0.0, True)
    for layer in range(-(-sizes[-1] // sizes[0])):
        step = asyncio.run(fill(url, sizes[0], layer, deadline))
        total = Filled(
            total.decisions + step.decisions,
            total.events + step.events,
            total.writing + step.writing,
            total.wall + step.wall,
            step.complete,
        )
        if total.decisions in sizes or not step.complete:
            measure(engine, url, total, data_dir, key, calls)
            done = total.decisions >= sizes[-1] or not step.complete
            copies[total.decisions] = url if done else copy_database(url, f"at{total.decisions}")
        if not step.complete:
            break
    reached = sorted(copies)
    stores = [app_settings(copies[n], data_dir) for n in reached]
    figures = asyncio.run(timed(stores, key, calls))
    return dict(zip(reached, figures, strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1e6,1e7", help="decisions to measure at, e.g. 1e5,1e6 (the store"
        " grows by the first size at a time)",
    )  # fmt: skip
    parser.add_argument("--engines", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--calls", type=int, default=CALLS, help="timed calls per endpoint")
    parser.add_argument(
        "--until", help="HH:MM (UTC): stop filling then, and measure what was filled"
    )
    args = parser.parse_args(argv)
    sizes = [size(s) for s in args.sizes.split(",")]
    deadline = float("inf")
    if args.until:
        hour, minute = map(int, args.until.split(":"))
        now = datetime.now(UTC)
        deadline = now.replace(hour=hour, minute=minute, second=0).timestamp()
    for engine in args.engines.split(","):
        print(f"{engine}:", flush=True)
        with engine_urls(engine) as url_for, tempfile.TemporaryDirectory() as data_dir:
            figures = grow(engine, url_for("bench"), sizes, data_dir, args.calls, deadline)
        reached = sorted(figures)
        if len(reached) > 1:
            small, large = figures[reached[0]], figures[reached[-1]]
            worst = max(ms for _, ms, _ in large)
            print(f"  side by side, {reached[-1]:,} against {reached[0]:,} decisions:")
            for (label, a, _), (_, b, _) in zip(small, large, strict=True):
                print(f"    {label:60} {a:7.1f} ms {b:7.1f} ms {b / a:5.2f}x")
            print(
                f"  slowest at {reached[-1]:,}: {worst:.1f} ms (target < {TARGET_MS:.0f} ms,"
                " within 2x of the smaller fill)",
                flush=True,
            )


if __name__ == "__main__":
    main()
