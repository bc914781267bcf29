"""Reports at size: fill a store with N decisions of the demo sites (and their impressions,
clicks, dismissals, conversions and valued goal events) through the store's writer, spread
over 90 days with injected time, then time ``GET /v1/results`` and a 90-day
``GET /v1/reports`` through the real ASGI app (the median of several calls each), on SQLite
and on PostgreSQL (a throwaway cluster, with fsync). Also printed: the writer's records per
second while filling (it maintains the rollups in the same transactions), and the bytes the
store holds per decision, table by table. Idempotency keys older than two days are pruned
each simulated day, as the server's retention task does.

    python bench/reports.py                          # 1M and 10M decisions, both engines
    python bench/reports.py --sizes 1e5 --engines sqlite   # a quick run
    python bench/reports.py --engines sqlite --keep /tmp/fills  # again later: no refill

Targets: both calls under 50 ms at 10M decisions, and within 2x of their time at 1M.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from postgres_cluster import postgres_cluster  # noqa: E402
from sitecue.api.keys import mint_key  # noqa: E402
from sitecue.app import build_app  # noqa: E402
from sitecue.rules import load_sites  # noqa: E402
from sitecue.runtime import goals_of  # noqa: E402
from sitecue.settings import Settings  # noqa: E402
from sitecue.store import open_store  # noqa: E402
from traffic import DAY_MS, T0, page_views  # noqa: E402

DAYS = 91
CALLS = 7  # timed calls per endpoint; the median is printed
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


async def fill(url: str, n: int) -> tuple[int, int, float, str]:
    """Write ``n`` decisions and their events through the writer, one group per batch;
    return the decisions, the events, the seconds spent in the writer, and an admin key."""
    # The goals the app gives the store: goal events (subscribe, purchase) convert by them.
    store = await open_store(url, goals=goals_of(load_sites(ROOT / "config")))
    decisions = events = 0
    writing = 0.0
    pruned = T0
    try:
        for batch_events, batch_decisions in page_views(n, days=DAYS - 1):
            start = time.perf_counter()
            await store.write(batch_events, batch_decisions)
            writing += time.perf_counter() - start
            decisions += len(batch_decisions)
            events += len(batch_events)
            now = batch_decisions[-1].at if batch_decisions else pruned
            if now - pruned >= DAY_MS:  # a day has passed: keys older than two days go
                await prune_keys(url, now - KEYS_KEPT_MS)
                pruned = now
        text, record = mint_key(["news", "shop"], "bench")
        await store.add_api_key(record)
    finally:
        await store.close()
    return decisions, events, writing, text


# The idempotency keys of records older than this are pruned, daily, as the server's
# retention task does (a retry comes within minutes), so the fill's time and bytes are
# those of a server that has been running for the 90 days, not of one that never pruned.
KEYS_KEPT_MS = 2 * DAY_MS
PRUNE_KEYS = "DELETE FROM record_keys WHERE at < {}"


async def prune_keys(url: str, before: int) -> None:
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=5000")
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
PG_SIZES = """
SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relispartition = false
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


def timed(client: TestClient, key: str, calls: int) -> list[tuple[str, float, int]]:
    """The median milliseconds of each timed call (after one untimed call), and its status."""
    out = []
    for path, params in CALLS_TIMED:
        headers = {"authorization": f"Bearer {key}"}
        status = client.get(path, params=params, headers=headers).status_code
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            client.get(path, params=params, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
        label = f"{path}?{'&'.join(f'{k}={v}' for k, v in params.items() if k != 'from')}"
        out.append((label, statistics.median(times), status))
    return out


def run(
    engine: str, url: str, n: int, data_dir: str, calls: int, saved: Path | None
) -> list[tuple[str, float, int]]:
    """Fill (or, with a ``saved`` fill's figures, reuse) the store at ``url``; print the
    writer's rate, the bytes per decision and the timed calls."""
    if saved is not None and saved.exists():
        decisions, events, writing, key = json.loads(saved.read_text())
    else:
        decisions, events, writing, key = asyncio.run(fill(url, n))
        if saved is not None:
            saved.write_text(json.dumps([decisions, events, writing, key]))
    records = decisions + events
    print(
        f"  {engine} {n:,} decisions, {events:,} events over {DAYS} days: writer"
        f" {records / writing:,.0f} records/s ({writing:,.0f} s)",
        flush=True,
    )
    sizes = asyncio.run(table_bytes(url))
    raw = sizes.get("decisions", 0) + sizes.get("events", 0)
    print(
        f"    bytes per decision: {raw / decisions:,.0f} in the log (decisions and events,"
        f" indexes included; decisions alone {sizes.get('decisions', 0) / decisions:,.0f});"
        f" {sum(sizes.values()) / decisions:,.0f} in the whole store"
    )
    print(
        "    tables: "
        + ", ".join(
            f"{name} {value / 1e6:,.1f} MB" for name, value in sorted(sizes.items()) if value > 1e5
        ),
        flush=True,
    )
    settings = Settings.load(
        config_dir=str(ROOT / "config"),
        db=url,
        env={"SITECUE_DATA_DIR": data_dir, "SITECUE_SECRETS": "bench-secret-000000000"},
    )
    with TestClient(build_app(settings), base_url="https://news.example") as client:
        figures = timed(client, key, calls)
    for label, ms, status in figures:
        print(f"    {label:60} {ms:7.1f} ms (HTTP {status})", flush=True)
    return figures


@contextmanager
def engine_urls(engine: str, keep: Path | None) -> Iterator[Callable[[str], str]]:
    """A function giving a fresh database URL per tag, on the engine (SQLite: in ``keep``,
    when given, where a later run finds it)."""
    if engine == "sqlite":
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            yield lambda tag: f"sqlite:///{keep}/{tag}.db"
            return
        with tempfile.TemporaryDirectory(prefix="sitecue-reports-") as tmp:
            yield lambda tag: f"sqlite:///{tmp}/{tag}.db"
        return
    with postgres_cluster(fsync=True) as server:

        async def create(tag: str) -> None:
            db = await asyncpg.connect(server)
            await db.execute(f"CREATE DATABASE bench_{tag}")
            await db.close()

        def url_for(tag: str) -> str:
            asyncio.run(create(tag))
            return server.replace("@/postgres?", f"@/bench_{tag}?")

        yield url_for


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="decisions per fill, e.g. 1e5,1e6")
    parser.add_argument("--engines", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--calls", type=int, default=CALLS, help="timed calls per endpoint")
    parser.add_argument(
        "--keep", type=Path, help="SQLite: fill into this directory and keep the files; a"
        " later run with the same directory times them again without filling",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sizes = [size(s) for s in args.sizes.split(",")]
    for engine in args.engines.split(","):
        figures: dict[int, list[tuple[str, float, int]]] = {}
        print(f"{engine}:", flush=True)
        keep = args.keep if engine == "sqlite" else None
        with engine_urls(engine, keep) as url_for, tempfile.TemporaryDirectory() as data_dir:
            for n in sizes:
                saved = keep / f"n{n}.json" if keep is not None else None
                figures[n] = run(engine, url_for(f"n{n}"), n, data_dir, args.calls, saved)
        if len(sizes) > 1:
            small, large = figures[sizes[0]], figures[sizes[-1]]
            worst = max(ms for _, ms, _ in large)
            print(f"  {sizes[-1]:,} against {sizes[0]:,} decisions:")
            for (label, a, _), (_, b, _) in zip(small, large, strict=True):
                print(f"    {label:60} {b / a:5.2f}x")
            print(
                f"  slowest at {sizes[-1]:,}: {worst:.1f} ms (target < {TARGET_MS:.0f} ms,"
                " within 2x of the smaller fill)",
                flush=True,
            )


if __name__ == "__main__":
    main()
