"""Retention on both engines: each site's expired raw decisions and events go, in batches
of at most BATCH rows, the young ones and everything else (rollups, first exposures,
contacts, submissions) stay; decide answers between two batches; SQLite gives the freed
pages back; PostgreSQL keeps day partitions made ahead and drops whole expired days. The
clock is injected: no test waits."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import pytest

from admin_keys import ORIGIN
from sitecue.app import build_app
from sitecue.decide import Verdict
from sitecue.ids import record_id
from sitecue.retention import Retention, cutoffs, duration_ms
from sitecue.rules import CompiledSite
from sitecue.settings import Settings
from sitecue.store import (
    Contact,
    DecisionQuery,
    DecisionRecord,
    EventRecord,
    RateLimit,
    Store,
    Submission,
    SubmissionQuery,
    open_store,
    postgres,
)
from sitecue.store.partitions import AHEAD_DAYS, DAY_MS
from sites import site
from stores import with_store

NOW = 1_764_115_200_000 + 13 * 3_600_000  # 2025-11-26 13:00 UTC, epoch ms
DAY = DAY_MS
LIMITS = (RateLimit(100, DAY), RateLimit(100, DAY))


def sites(**retention: dict[str, str]) -> dict[str, CompiledSite]:
    """news with the default retention (90 days of decisions, 400 of events), and shop with
    the retention given (default: 10 days of decisions, 20 of events)."""
    shop = retention.get("shop", {"decisions": "10d", "events": "20d"})
    return {
        "news": site(),
        "shop": site(site="shop", origins=["https://shop.example"], retention=shop),
    }


def decision(s: str, at: int, visitor: str = "v1") -> DecisionRecord:
    verdicts = [Verdict("paywall-faq", True, variant="faq")]
    return DecisionRecord(record_id(at), s, visitor, at, "https://x.example/", verdicts)


def event(s: str, at: int, visitor: str = "v1") -> EventRecord:
    return EventRecord(s, visitor, "trigger", at, "paywall_view")


AGES = [1, 5, 9, 11, 19, 21, 89, 91, 399, 401]  # days before NOW


async def seed(store: Store) -> None:
    """A decision and an event of each site at each age in AGES (and a second visitor's
    decision 12 hours old), a contact and a form submission a year and a half old."""
    for s in ("news", "shop"):
        await store.write(
            [event(s, NOW - age * DAY) for age in AGES],
            [decision(s, NOW - age * DAY) for age in AGES] + [decision(s, NOW - DAY // 2, "v2")],
        )
    old = NOW - 540 * DAY
    await store.put_contacts([Contact("news", "reader-1", {"tier": "gold"}, old)])
    sub = Submission(
        record_id(old), "shop", "paywall-faq", "faq", "d", "v1", None, {"email": "a@b.c"}, {}, old
    )
    await store.submit(sub, {}, EventRecord("shop", "v1", "convert", old), None, LIMITS)


async def ages(store: Store, s: str) -> tuple[list[int], list[int]]:
    """The ages (days, rounded down) of the site's decisions and of its events."""
    found = await store.decisions(DecisionQuery(site=s, limit=1000))
    events = await store.events(s, ["v1", "v2"])
    return (
        sorted((NOW - d.at) // DAY for d in found),
        sorted((NOW - e.at) // DAY for e in events if e.type == "trigger"),
    )


def test_retention_durations_are_days_or_hours() -> None:
    assert duration_ms("90d") == 90 * DAY
    assert duration_ms("36h") == 36 * 3_600_000
    keep = cutoffs({n: s.config.retention for n, s in sites().items()}, NOW)
    assert keep["news"].decisions == NOW - 90 * DAY and keep["news"].events == NOW - 400 * DAY
    assert keep["shop"].decisions == NOW - 10 * DAY and keep["shop"].events == NOW - 20 * DAY


def test_old_records_go_young_ones_and_everything_else_stay(store_url: str) -> None:
    async def body(store: Store) -> None:
        await seed(store)
        contact = await store.contact("news", "reader-1")
        submitted = await store.submissions(SubmissionQuery(site="shop"))
        kept = {s: await rollups(store, s) for s in ("news", "shop")}
        exposed = await count(store_url, "SELECT COUNT(*) FROM exposures")
        assert exposed == 4 and all(kept.values())  # (v1, v2) x (news, shop)
        done = await Retention(store, sites, clock=lambda: NOW).run_once()
        assert await ages(store, "news") == ([0, 1, 5, 9, 11, 19, 21, 89], AGES[:-1])
        assert await ages(store, "shop") == ([0, 1, 5, 9], [1, 5, 9, 11, 19])
        assert done.deleted == {"decisions": 3 + 7, "events": 1 + 6}  # shop: its convert too
        assert await store.contact("news", "reader-1") == contact
        assert await store.submissions(SubmissionQuery(site="shop")) == submitted
        assert {s: await rollups(store, s) for s in ("news", "shop")} == kept
        assert await count(store_url, "SELECT COUNT(*) FROM exposures") == exposed
        again = await Retention(store, sites, clock=lambda: NOW).run_once()
        assert again.deleted == {"decisions": 0, "events": 0}

    with_store(store_url, body)


def test_a_site_missing_from_the_config_keeps_its_records(store_url: str) -> None:
    async def body(store: Store) -> None:
        await seed(store)
        only_news = {"news": sites()["news"]}
        await Retention(store, lambda: only_news, clock=lambda: NOW).run_once()
        assert await ages(store, "shop") == ([0, *AGES], AGES)

    with_store(store_url, body)


async def rollups(store: Store, s: str) -> tuple[object, ...]:
    """Everything the rollups say of the site's rule: totals and each day's counts."""
    rule = "paywall-faq"
    return (await store.results(s, rule), await store.report(s, rule, 0, NOW // DAY + 1))


async def count(url: str, sql: str) -> int:
    """One number read straight from the database at ``url``."""
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return int(db.execute(sql).fetchone()[0])
        finally:
            db.close()
    pg = await asyncpg.connect(url)
    try:
        return int(await pg.fetchval(sql))
    finally:
        await pg.close()


def test_idempotency_keys_older_than_two_days_go_younger_ones_stay(store_url: str) -> None:
    async def body(store: Store) -> tuple[int, int, int]:
        for hours in (1, 47, 49, 24 * 30):
            at = NOW - hours * 3_600_000
            keyed = EventRecord("news", "v1", "trigger", at, "paywall_view", key=f"call-{hours}")
            await store.write([keyed], [])
        held = await count(store_url, "SELECT COUNT(*) FROM record_keys")
        done = await Retention(store, sites, clock=lambda: NOW, batch=1).run_once()
        left = await count(store_url, "SELECT MAX(at) - MIN(at) FROM record_keys")
        return held, done.keys, left

    held, pruned, spread = with_store(store_url, body)
    assert (held, pruned) == (4, 2)  # the keys of 49 hours and 30 days
    assert spread == 46 * 3_600_000  # those of 1 and 47 hours stay


class Batches:
    """A store whose expire() records each batch's size and runs ``between`` after it."""

    def __init__(self, store: Store, between: Callable[[], Awaitable[None]] | None = None):
        self.store = store
        self.sizes: list[int] = []
        self.between = between

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def expire(self, *args: Any) -> int:
        n = await self.store.expire(*args)
        self.sizes.append(n)
        if self.between is not None:
            await self.between()
        return n


def test_each_batch_deletes_at_most_a_batch(store_url: str) -> None:
    async def body(store: Store) -> None:
        await store.write(
            [event("shop", NOW - 30 * DAY - i) for i in range(50)],
            [decision("shop", NOW - 30 * DAY - i, f"v{i}") for i in range(50)],
        )
        batches = Batches(store)
        r = Retention(batches, sites, clock=lambda: NOW, batch=7)  # type: ignore[arg-type]
        done = await r.run_once()
        assert done.deleted == {"decisions": 50, "events": 50}
        assert max(batches.sizes) == 7 and sum(batches.sizes) == 100
        assert len([n for n in batches.sizes if n]) == 2 * 8  # ceil(50 / 7) batches a table

    with_store(store_url, body)


def test_decide_answers_between_two_batches(env: dict[str, str]) -> None:
    """While a site's expired records go, page views are decided and stored in the same
    process: between every two batches, a decide request is answered and its record kept."""
    app = build_app(Settings.load(env=env))

    async def main() -> None:
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            store = runtime.store
            now = time.time_ns() // 1_000_000  # the app decides at the real time
            await store.write(
                [event("news", now - 500 * DAY - i) for i in range(40)],
                [decision("news", now - 100 * DAY - i, f"old{i}") for i in range(40)],
            )
            answered: list[int] = []
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url=ORIGIN) as http:

                async def page_view() -> None:
                    body = {"site": "news", "page": {"url": f"{ORIGIN}/news/"}}
                    answer = await http.post("/v1/decide", json=body, headers={"origin": ORIGIN})
                    answered.append(answer.status_code)

                batches = Batches(store, page_view)
                r = Retention(batches, lambda: runtime.sites, clock=lambda: now, batch=5)  # type: ignore[arg-type]
                done = await r.run_once()
            assert done.deleted == {"decisions": 40, "events": 40}
            assert answered == [200] * len(batches.sizes) and len(answered) >= 16
            kept = await store.decisions(DecisionQuery(site="news", limit=1000))
            assert len(kept) == len(answered)  # every page view's decision, none of the old

    asyncio.run(main())


def test_sqlite_gives_the_freed_pages_back(tmp_path: Path) -> None:
    path = tmp_path / "sitecue.db"

    def free() -> int:
        db = sqlite3.connect(path)
        try:
            return int(db.execute("PRAGMA freelist_count").fetchone()[0])
        finally:
            db.close()

    async def body(store: Store) -> tuple[int, int]:
        blob = "x" * 2000
        await store.write(
            [],
            [
                DecisionRecord(
                    record_id(NOW - 30 * DAY - i), "shop", f"v{i}", NOW - 30 * DAY - i, blob, []
                )
                for i in range(2000)
            ],
        )
        r = Retention(store, sites, clock=lambda: NOW, pages=64)
        for table in ("decisions", "events"):  # the deletes alone, then the vacuum's steps
            while await store.expire(table, "shop", NOW - 10 * DAY, 500):  # type: ignore[arg-type]
                pass
        freed = free()
        done = await r.run_once()
        return freed, done.free_pages

    freed, left = with_store(f"sqlite:///{path}", body)
    assert freed > 500  # the deletes left the pages on the free list...
    assert left == 0 and free() == 0  # ...and the vacuum's steps gave them back


def test_sqlite_file_made_before_incremental_vacuum_is_vacuumed_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kept (x)")
    db.execute("INSERT INTO kept VALUES (1)")
    db.commit()
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    db.close()

    async def body(store: Store) -> None:
        pass

    with_store(f"sqlite:///{path}", body)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
    assert db.execute("SELECT x FROM kept").fetchall() == [(1,)]
    db.close()
    with_store(f"sqlite:///{tmp_path / 'new.db'}", body)
    db = sqlite3.connect(tmp_path / "new.db")
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # from its first table on
    db.close()


class _FullDisk(sqlite3.Connection):
    """A connection on a disk too small to VACUUM: the statement fails as SQLite's does."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        if sql.strip().upper() == "VACUUM":
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


def test_a_failed_one_time_vacuum_does_not_stop_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A file made before incremental auto-vacuum on a disk with too little room for its
    VACUUM: the store opens and works, the warning names the file and the cause, and the
    next start (with room) vacuums it."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kept (x)")
    db.commit()
    db.close()
    connect = sqlite3.connect

    def full(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return connect(*args, factory=_FullDisk, **kwargs)

    async def body(store: Store) -> list[Any]:
        shown = [Verdict("exp", True, variant="blue")]
        await store.write([], [DecisionRecord(record_id(1_000), "news", "v", 1_000, "u", shown)])
        return [(v.variant, v.visitors) for v in await store.results("news", "exp")]

    with monkeypatch.context() as m:
        m.setattr(sqlite3, "connect", full)
        assert with_store(f"sqlite:///{path}", body) == [("blue", 1)]
    (warning,) = [r for r in caplog.records if "VACUUM" in r.getMessage()]
    assert warning.levelname == "WARNING"
    assert str(path) in warning.getMessage() and "disk is full" in warning.getMessage()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0  # left for the next start
    db.close()
    with_store(f"sqlite:///{path}", body)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
    db.close()


async def partitions(url: str, table: str) -> list[str]:
    db = await asyncpg.connect(url)
    try:
        rows = await db.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = $1::regclass ORDER BY c.relname",
            table,
        )
    finally:
        await db.close()
    return [r[0] for r in rows]


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_postgres_makes_day_partitions_ahead_and_drops_expired_days(store_url: str) -> None:
    async def body(store: Store) -> None:
        await seed(store)  # the test's days have no partitions yet: the default catches them
        done = await Retention(store, sites, clock=lambda: NOW).run_once()
        made = await partitions(store_url, "decisions")
        assert {day_name("decisions", NOW + d * DAY) for d in range(AHEAD_DAYS + 1)} <= set(made)
        # the days the default caught got their own partitions, unless nobody keeps them
        # (news keeps 90 days of decisions): those rows were deleted from the default
        assert day_name("decisions", NOW - 89 * DAY) in made
        assert day_name("decisions", NOW - 91 * DAY) not in made
        assert done.rotation.moved == 2 * 8 + 2 * 9  # (decisions + events) of both sites
        assert done.deleted == {"decisions": 3 + 7, "events": 1 + 6}  # shop: its convert too
        # 100 days on: every decision has expired, every day of them is dropped whole
        later = NOW + 100 * DAY
        gone = await Retention(store, sites, clock=lambda: later).run_once()
        made = await partitions(store_url, "decisions")
        assert not [n for n in made if n.startswith("decisions_d2025")]
        assert {day_name("decisions", later + d * DAY) for d in range(AHEAD_DAYS + 1)} <= set(made)
        assert gone.deleted["decisions"] == 0  # all by dropping partitions
        assert await store.decisions(DecisionQuery(site="news")) == []
        # news keeps 400 days of events: only the day 399 days before NOW went
        assert day_name("events", NOW - 399 * DAY) in gone.rotation.dropped
        assert await ages(store, "news") == ([], AGES[:-2])

    with_store(store_url, body)


def day_name(table: str, at: int) -> str:
    return f"{table}_d{datetime.fromtimestamp(at // 1000, UTC):%Y%m%d}"


def test_two_nodes_expiring_together_delete_each_row_once(store_url: str) -> None:
    async def main() -> None:
        first, second = await open_store(store_url), await open_store(store_url)
        try:
            await seed(first)
            rounds = await asyncio.gather(
                Retention(first, sites, clock=lambda: NOW, batch=3).run_once(),
                Retention(second, sites, clock=lambda: NOW, batch=3).run_once(),
            )
            assert sum(r.deleted["decisions"] for r in rounds) == 3 + 7
            assert sum(r.deleted["events"] for r in rounds) == 1 + 6
            assert await ages(second, "news") == ([0, 1, 5, 9, 11, 19, 21, 89], AGES[:-1])
            assert await ages(first, "shop") == ([0, 1, 5, 9], [1, 5, 9, 11, 19])
        finally:
            await first.close()
            await second.close()

    asyncio.run(main())


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_postgres_migration_moves_existing_rows_into_their_days(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made before the partitions: its rows move into day partitions, the
    ones of days far apart too, and read back as before."""
    before = postgres.MIGRATIONS[: postgres.MIGRATIONS.index(postgres.PARTITION_BY_DAY)]

    async def main() -> None:
        with monkeypatch.context() as m:
            m.setattr(postgres, "MIGRATIONS", before)
            old = await open_store(store_url)
            await old.close()
        db = await asyncpg.connect(store_url)
        try:
            for age in AGES:
                at = NOW - age * DAY
                await db.execute(
                    "INSERT INTO events (site, visitor, type, at, name) VALUES ($1, 'v1',"
                    " 'trigger', $2, 'paywall_view')",
                    "news",
                    at,
                )
                await db.execute(
                    "INSERT INTO decisions (site, id, visitor, at, url, verdicts, pageview)"
                    " VALUES ('news', $1, 'v1', $2, 'u', '[]', true)",
                    record_id(at),
                    at,
                )
        finally:
            await db.close()
        store = await open_store(store_url)
        try:
            assert await ages(store, "news") == ([*AGES], AGES)
            made = await partitions(store_url, "decisions")
            assert {day_name("decisions", NOW - age * DAY) for age in AGES} <= set(made)
            assert "decisions_default" in made
            db = await asyncpg.connect(store_url)
            try:
                assert await db.fetchval("SELECT COUNT(*) FROM ONLY decisions_default") == 0
                assert await db.fetchval("SELECT COUNT(*) FROM ONLY events_default") == 0
            finally:
                await db.close()
        finally:
            await store.close()

    asyncio.run(main())
