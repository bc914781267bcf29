"""The store, on both engines: every test here runs against SQLite and against a real
PostgreSQL server (a throwaway cluster), through the same interface."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from sitecue.decide import Verdict
from sitecue.errors import StoreUnavailable
from sitecue.ids import record_id
from sitecue.store import (
    AdminSession,
    ApiKey,
    Contact,
    ContactEvent,
    DecisionQuery,
    DecisionRecord,
    EventRecord,
    RateLimit,
    Refreshed,
    Store,
    Submission,
    SubmissionQuery,
    Submitted,
    TokenUse,
    VariantCounts,
    open_store,
)
from sitecue.store import base as store_base
from sitecue.store import sqlite as sqlite_store
from sitecue.store.base import HISTORY_BROWSERS, HISTORY_RECORDS
from stores import with_store

T0 = 1_790_000_000_000


def decision(
    i: int, visitor: str = "reader-1", shown: str | None = None, at: int | None = None
) -> DecisionRecord:
    verdicts = [
        Verdict("paywall-faq", shown is not None, variant=shown, reason=None if shown else "x"),
        Verdict("newsletter", False, reason="cap: 1 per page view"),
    ]
    when = T0 + i * 1000 if at is None else at
    return DecisionRecord(record_id(when), "news", visitor, when, f"https://n/{i}", verdicts)


def event(i: int, visitor: str = "reader-1", kind: str = "trigger") -> EventRecord:
    return EventRecord("news", visitor, kind, T0 + i, name="paywall_view")


def test_records_are_read_back_as_written_newest_first(store_url: str) -> None:
    written = [decision(i, shown="faq" if i == 2 else None) for i in range(3)]

    async def body(store: Store) -> list[DecisionRecord]:
        for record in written:
            await store.write([], [record])
        return await store.decisions(DecisionQuery(site="news"))

    assert with_store(store_url, body) == written[::-1]


def test_records_outlive_the_process_that_wrote_them(store_url: str) -> None:
    record = decision(1)

    async def write(store: Store) -> None:
        await store.write([event(1)], [record])

    async def read(store: Store) -> tuple[list[EventRecord], list[DecisionRecord]]:
        return await store.events("news", ["reader-1"]), await store.decisions(
            DecisionQuery(site="news")
        )

    with_store(store_url, write)
    assert with_store(store_url, read) == ([event(1)], [record])


def test_filters_narrow_by_visitor_verdict_and_time(store_url: str) -> None:
    records = [
        decision(0, "reader-a"),
        decision(1, "reader-a", shown="faq"),
        decision(2, "reader-b", shown="control"),
        decision(3, "reader-b"),
    ]
    other_site = DecisionRecord(record_id(T0), "shop", "reader-a", T0, "u", [])

    async def body(store: Store) -> dict[str, list[int]]:
        await store.write([], [*records, other_site])

        async def ids(**narrow: Any) -> list[int]:
            found = await store.decisions(DecisionQuery(site="news", **narrow))
            return sorted(records.index(r) for r in found)

        return {
            "visitor": await ids(visitor="reader-a"),
            "shown": await ids(rule="paywall-faq", matched=True),
            "variant": await ids(variant="control"),
            "rule and variant": await ids(rule="paywall-faq", variant="faq"),
            "never shown": await ids(rule="newsletter", matched=True),
            "anything shown": await ids(matched=True),
            "time range": await ids(since=T0 + 1000, until=T0 + 3000),
        }

    assert with_store(store_url, body) == {
        "visitor": [0, 1],
        "shown": [1, 2],
        "variant": [2],
        "rule and variant": [1],
        "never shown": [],
        "anything shown": [1, 2],
        "time range": [1, 2],
    }


# A decision of each kind of verdict: shown, kept back for a reason (with the holdout's
# variant), and the conditions not met (a page rule, a trigger rule).
SHOWN = Verdict("newsletter", True, variant="short")
KEPT_BACK = [
    Verdict("paywall-faq", False, reason="cap: dismissed"),
    Verdict("welcome", False, variant="a", reason="holdout"),
    Verdict("launch", False, reason="schedule: not started"),
    Verdict("cart", False, reason="frequency: per_view"),
    Verdict("vip", False, reason="consent: the rule needs the visitor's history"),
]
NOT_MET = [
    Verdict("exit", False, reason="condition: page.path"),
    Verdict("meter", False, reason="condition: triggers.paywall_view.7d"),
]


def test_verdicts_are_stored_but_those_of_conditions_not_met(store_url: str) -> None:
    """What "why did this visitor see that?" needs is kept: the shown rule and the reason of
    every rule that met its conditions; a rule whose conditions failed has no verdict."""
    record = DecisionRecord(
        record_id(T0), "news", "reader-1", T0, "https://n/1", [SHOWN, *NOT_MET, *KEPT_BACK]
    )

    async def body(store: Store) -> list[DecisionRecord]:
        await store.write(
            [], [record, DecisionRecord(record_id(T0), "news", "r", T0, "u", NOT_MET)]
        )
        return await store.decisions(DecisionQuery(site="news"))

    (nothing, kept) = with_store(store_url, body)
    assert kept.verdicts == [SHOWN, *KEPT_BACK] and nothing.verdicts == []


def test_filters_read_compact_and_full_records_alike(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records stored before verdicts were compact (a verdict for every rule) and after read
    the same through every filter: ``matched=false`` finds where the rule was not shown,
    whether its verdict says why or it has none."""
    not_met = Verdict("exit", False, reason="condition: page.path")
    kinds = {
        "shown": [SHOWN, not_met],
        "not met": [Verdict("newsletter", False, reason="condition: page.path"), not_met],
        "held": [
            Verdict("newsletter", False, reason="cap: 1 per 1d"),
            Verdict("paywall-faq", False, variant="faq", reason="holdout"),
        ],
    }

    def records(age: str) -> list[DecisionRecord]:
        return [
            DecisionRecord(record_id(T0), "news", "r", T0, f"{age} {kind}", verdicts)
            for kind, verdicts in kinds.items()
        ]

    async def body(store: Store) -> dict[str, list[str]]:
        with monkeypatch.context() as before:  # stored as before: every verdict
            before.setattr(store_base, "stored", lambda verdicts: verdicts)
            await store.write([], records("old"))
        await store.write([], records("new"))
        stored = await store.decisions(DecisionQuery(site="news"))
        assert {r.url: len(r.verdicts) for r in stored} == {
            "old shown": 2, "old not met": 2, "old held": 2,
            "new shown": 1, "new not met": 0, "new held": 2,
        }  # fmt: skip

        async def found(**narrow: Any) -> list[str]:
            return sorted(
                r.url for r in await store.decisions(DecisionQuery(site="news", **narrow))
            )

        return {
            "shown": await found(rule="newsletter", matched=True),
            "not shown": await found(rule="newsletter", matched=False),
            "exit not shown": await found(rule="exit", matched=False),
            "held out": await found(rule="paywall-faq", variant="faq", matched=False),
            "anything shown": await found(matched=True),
            "nothing shown": await found(matched=False),
            "the rule in play": await found(rule="newsletter"),
        }

    every = sorted(f"{age} {kind}" for age in ("new", "old") for kind in kinds)
    assert with_store(store_url, body) == {
        "shown": ["new shown", "old shown"],
        "not shown": ["new held", "new not met", "old held", "old not met"],
        "exit not shown": every,
        "held out": ["new held", "old held"],
        "anything shown": ["new shown", "old shown"],
        "nothing shown": ["new held", "new not met", "old held", "old not met"],
        # A full record names the rule whatever its fate; a compact one where it met its
        # conditions (shown, or kept back for the reason given).
        "the rule in play": ["new held", "new shown", "old held", "old not met", "old shown"],
    }


def test_cursor_pages_cover_every_record_once(store_url: str) -> None:
    async def body(store: Store) -> list[str]:
        await store.write([], [decision(i) for i in range(25)])
        seen: list[str] = []
        before = None
        while True:
            page = await store.decisions(DecisionQuery(site="news", before=before, limit=10))
            seen += [r.id for r in page]
            if len(page) < 10:
                return seen
            before = page[-1].id

    seen = with_store(store_url, body)
    assert len(seen) == 25 and seen == sorted(set(seen), reverse=True)


def test_concurrent_writes_share_commits_and_all_land(store_url: str) -> None:
    async def body(store: Store) -> tuple[int, int, list[int]]:
        await asyncio.gather(
            *(store.write([event(i, f"v{i}")], [decision(i, f"v{i}")]) for i in range(400))
        )
        found = await store.decisions(DecisionQuery(site="news", limit=1000))
        events = await store.events("news", [f"v{i}" for i in range(400)])
        return len(found), len(events), store.writer.batches  # type: ignore[attr-defined]

    decisions, events, batches = with_store(store_url, body)
    assert (decisions, events) == (400, 400)
    assert sum(batches) == 800 and len(batches) < 100  # groups, not a commit per request


def test_a_failed_group_stores_nothing_and_tells_every_waiter(store_url: str) -> None:
    clash = decision(7)

    async def body(store: Store) -> tuple[list[BaseException | None], int, int]:
        await store.write([], [clash])
        outcomes = await asyncio.gather(
            store.write([event(1, "innocent")], [decision(8, "innocent")]),
            store.write([], [clash]),  # the same id again: the whole group is refused
            return_exceptions=True,
        )
        kept = await store.decisions(DecisionQuery(site="news"))
        innocent = await store.events("news", ["innocent"])
        await store.write([event(2, "later")], [])  # the writer carries on
        later = await store.events("news", ["later"])
        return list(outcomes), len(kept), len(innocent) + 10 * len(later)

    outcomes, kept, events = with_store(store_url, body)
    assert all(isinstance(o, Exception) for o in outcomes)
    assert kept == 1 and events == 10


def test_events_of_several_browsers_come_oldest_first(store_url: str) -> None:
    async def body(store: Store) -> list[tuple[str, int]]:
        await store.write([event(3, "phone"), event(1, "laptop"), event(2, "other")], [])
        return [(e.visitor, e.at - T0) for e in await store.events("news", ["laptop", "phone"])]

    assert with_store(store_url, body) == [("laptop", 1), ("phone", 3)]


def test_api_keys_are_found_by_id(store_url: str) -> None:
    key = ApiKey("0123456789ab", "hash", ["news", "shop"], "ops", 1_790_000_000)

    async def body(store: Store) -> tuple[ApiKey | None, ApiKey | None]:
        await store.add_api_key(key)
        return await store.api_key(key.id), await store.api_key("ffffffffffff")

    assert with_store(store_url, body) == (key, None)


def test_a_revoked_key_is_listed_as_such_and_its_sessions_end(store_url: str) -> None:
    ops = ApiKey("0123456789ab", "hash", ["news", "shop"], "ops", 1_790_000_000)
    news = ApiKey("ba9876543210", "hash2", ["news"], "newsroom", 1_790_000_001)
    now = 1_790_000_100

    async def body(store: Store) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key in (news, ops):
            await store.add_api_key(key)
        await store.add_session(AdminSession("s-ops", ops.id, now, now + 60))
        await store.add_session(AdminSession("s-news", news.id, now, now + 60))
        await store.add_session(AdminSession("s-old", news.id, now, now + 30))
        seen["live"] = await store.session_key("s-ops", now + 59)
        seen["expired"] = await store.session_key("s-ops", now + 60)
        seen["unknown"] = await store.session_key("s-nope", now)
        seen["revoked"] = await store.revoke_api_key(ops.id, now + 1)
        seen["again"] = await store.revoke_api_key(ops.id, now + 2)
        seen["missing"] = await store.revoke_api_key("ffffffffffff", now)
        seen["after"] = await store.session_key("s-ops", now + 1)
        seen["key"] = await store.api_key(ops.id)
        seen["list"] = await store.api_keys()
        await store.touch_api_key(news.id, now + 5)
        seen["other"] = await store.session_key("s-news", now)
        await store.end_session("s-news")
        seen["ended"] = await store.session_key("s-news", now)
        seen["old"] = await store.session_key("s-old", now)
        # A new session sweeps out the expired ones (asked about with an earlier clock).
        await store.add_session(AdminSession("s-later", news.id, now + 31, now + 120))
        seen["swept"] = await store.session_key("s-old", now)
        seen["later"] = await store.session_key("s-later", now + 31)
        return seen

    seen = with_store(store_url, body)
    revoked = ApiKey(ops.id, "hash", ["news", "shop"], "ops", 1_790_000_000, revoked=now + 1)
    used = ApiKey(news.id, "hash2", ["news"], "newsroom", 1_790_000_001, last_used=now + 5)
    assert seen == {
        "live": ops,
        "expired": None,
        "unknown": None,
        "revoked": True,
        "again": False,  # the first revocation's time is kept
        "missing": False,
        "after": None,
        "key": revoked,
        "list": [revoked, news],
        "other": used,
        "ended": None,
        "old": used,
        "swept": None,
        "later": used,
    }


def test_nodes_starting_together_migrate_once(store_url: str) -> None:
    async def main() -> list[bool]:
        stores = await asyncio.gather(*(open_store(store_url) for _ in range(4)))
        healthy = [await s.healthy() for s in stores]
        for s in stores:
            await s.close()
        return healthy

    assert asyncio.run(main()) == [True] * 4
    assert with_store(store_url, lambda s: s.healthy()) is True  # and again, all applied


def test_a_closed_store_is_not_healthy(store_url: str) -> None:
    async def main() -> bool:
        store = await open_store(store_url)
        await store.close()
        return await store.healthy()

    assert asyncio.run(main()) is False


def test_a_store_whose_reads_fail_is_not_healthy(tmp_path: Path) -> None:
    """A read refused by SQLite (a disk I/O error) makes the health check say no, for
    /healthz to report, rather than raise."""

    async def main() -> bool:
        store = await open_store(f"sqlite:///{tmp_path / 'sitecue.db'}")
        assert isinstance(store, sqlite_store.SQLiteStore)

        async def failing(*args: Any) -> Any:
            err = sqlite3.OperationalError("disk I/O error")
            err.sqlite_errorcode = sqlite3.SQLITE_IOERR  # type: ignore[attr-defined]
            raise err

        try:
            store._db.execute_fetchall = failing  # type: ignore[method-assign]
            return await store.healthy()
        finally:
            del store._db.execute_fetchall
            await store.close()

    assert asyncio.run(main()) is False


def wal_size(path: Path) -> int:
    try:
        return os.path.getsize(f"{path}-wal")
    except FileNotFoundError:
        return 0


async def wal_emptied(path: Path, within: float) -> bool:
    """Whether the WAL is truncated to nothing within ``within`` seconds."""
    deadline = time.monotonic() + within
    while wal_size(path) > 0:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def test_sqlite_keeps_its_write_ahead_log_bounded(tmp_path: Path) -> None:
    """Once writes pause the WAL is checkpointed and truncated, so it starts over instead of
    growing forever: every round of writes leaves it about the size the first one made."""
    path = tmp_path / "sitecue.db"

    async def main() -> list[tuple[int, bool]]:
        store = await open_store(f"sqlite:///{path}")
        rounds = []
        try:
            for round_ in range(4):
                for i in range(200):  # one commit each: the costliest way to grow a WAL
                    await store.write([event(i)], [decision(round_ * 1000 + i)])
                rounds.append((wal_size(path), await wal_emptied(path, within=5)))
        finally:
            await store.close()
        return rounds

    rounds = asyncio.run(main())
    first = rounds[0][0]
    assert all(emptied and size < 1.5 * first for size, emptied in rounds), rounds


def test_sqlite_write_ahead_log_stays_bounded_at_full_speed(tmp_path: Path) -> None:
    """Writers at full speed for 20 s (300 page views in flight, each waiting for its
    commit): the WAL stays under 64 MB throughout, sampled from a thread every 10 ms, and is
    under 8 MB within 5 s of the load stopping. (Before it grew to 1.6 GB, and stayed.)"""
    path = tmp_path / "sitecue.db"
    sizes: list[tuple[float, int]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            sizes.append((time.monotonic(), wal_size(path)))
            time.sleep(0.01)

    async def main() -> tuple[int, float]:
        store = await open_store(f"sqlite:///{path}")
        written = 0
        end = time.monotonic() + 20

        async def page_views(writer: int) -> None:
            nonlocal written
            i = 0
            while time.monotonic() < end:
                i += 1
                visitor = f"reader-{writer}-{i}"
                await store.write([event(i, visitor)], [decision(i, visitor, shown="faq")])
                written += 1

        try:
            await asyncio.gather(*(page_views(w) for w in range(300)))
            stopped = time.monotonic()
            await asyncio.sleep(5)
        finally:
            await store.close()
        return written, stopped

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        written, stopped = asyncio.run(main())
    finally:
        sampling.set()
        sampler.join()
    peak = max(size for _, size in sizes)
    settled = [size for at, size in sizes if at > stopped + 5 - 0.1]
    print(
        f"{written} page views in 20 s; WAL at most {peak / 2**20:.1f} MiB,"
        f" {settled[-1] / 2**20:.1f} MiB 5 s after; database {path.stat().st_size / 2**20:.1f} MiB"
    )
    assert written > 10_000  # it was really under load
    assert peak < 64 * 2**20
    assert settled and max(settled) < 8 * 2**20


def test_sqlite_opening_waits_for_a_writer_that_holds_the_lock(tmp_path: Path) -> None:
    """Another process writing (here: holding the writers' lock and SQLite's for 6 s, longer
    than SQLite's busy timeout) makes a starting node wait, never fail with "locked"."""
    path = tmp_path / "sitecue.db"
    with_store(f"sqlite:///{path}", lambda s: s.write([event(1)], []))
    lock_file = open(f"{path}.writer-lock", "a+b")  # noqa: SIM115 - closed below
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    writer.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(6)
        writer.execute("COMMIT")
        fcntl.flock(lock_file, fcntl.LOCK_UN)

    releasing = threading.Thread(target=release)
    releasing.start()
    try:
        started = time.monotonic()
        assert with_store(f"sqlite:///{path}", lambda s: s.healthy()) is True
        assert time.monotonic() - started > 5
    finally:
        releasing.join()
        writer.close()
        lock_file.close()


def test_sqlite_a_full_disk_is_reported_as_such(tmp_path: Path) -> None:
    """A commit refused for want of space raises StoreUnavailable carrying SQLite's reason,
    not the "cannot rollback" of a rollback SQLite had already done; space again, the
    writer carries on. (The file may not grow: SQLite's max_page_count.)"""
    path = tmp_path / "sitecue.db"

    async def main() -> tuple[str, int]:
        store = await open_store(f"sqlite:///{path}")
        writes: sqlite3.Connection = store._writes  # type: ignore[attr-defined]
        pages = writes.execute("PRAGMA page_count").fetchone()[0]
        writes.execute(f"PRAGMA max_page_count = {pages}")
        try:
            for i in range(1000):
                await store.write([EventRecord("news", f"v-{i}", "trigger", T0, "x" * 500)], [])
            return "nothing refused", 0
        except StoreUnavailable as err:
            refused = err.message
        finally:
            writes.execute("PRAGMA max_page_count = 1073741823")
        await store.write([event(1, "later")], [])
        later = len(await store.events("news", ["later"]))
        await store.close()
        return refused, later

    assert asyncio.run(main()) == ("OperationalError: database or disk is full", 1)


def test_sqlite_erasure_leaves_nothing_on_disk(tmp_path: Path) -> None:
    """After a contact's erasure neither the database nor its WAL nor the shared-memory file
    holds the person's contact id, attributes, browsers or pages: replaced rows are zeroed
    (secure_delete) and the WAL is truncated. Some records were checkpointed into the
    database before, some only in the WAL; both are looked for before, to be sure."""
    path = tmp_path / "sitecue.db"
    secrets = [b"customer-7f3a9c", b"gold-tier-5e1d", b"laptop-91c0d2e4b7", b"phone-4b7e11aa02"]
    secrets.append(b"private-page-6d2c")
    laptop, phone = secrets[2].decode(), secrets[3].decode()

    def records(first: int) -> tuple[list[EventRecord], list[DecisionRecord]]:
        visitors = [laptop, phone, "stranger-a", "stranger-b"]
        events = [event(first + i, visitors[i % 4]) for i in range(400)]
        decisions = [decision(first + i, visitors[i % 4]) for i in range(400)]
        mine = "https://n/private-page-6d2c"  # the person's pages; the strangers' stay
        pages = [replace(d, url=mine) if d.visitor in (laptop, phone) else d for d in decisions]
        return events, pages

    def on_disk() -> bytes:
        return b"".join(
            Path(f"{path}{suffix}").read_bytes()
            for suffix in ("", "-wal", "-shm")
            if Path(f"{path}{suffix}").exists()
        )

    async def first(store: Store) -> None:
        await store.put_contacts([Contact("news", "customer-7f3a9c", {"tier": "gold-tier-5e1d"})])
        await store.link("news", laptop, "customer-7f3a9c", T0, verified=True)
        await store.link("news", phone, "customer-7f3a9c", T0, verified=True)
        await store.write(*records(0))

    async def then(store: Store) -> tuple[list[bytes], list[bytes]]:
        await store.write(*records(1000))  # in the WAL only
        before = [s for s in secrets if s in on_disk()]
        assert await store.erase_contact("news", "customer-7f3a9c")
        return before, [s for s in secrets if s in on_disk()]

    with_store(f"sqlite:///{path}", first)  # closing checkpoints it into the database
    before, after = with_store(f"sqlite:///{path}", then)
    assert before == secrets and after == []


def test_contacts_are_created_replaced_and_kept_per_site(store_url: str) -> None:
    first = Contact("shop", "customer-1", {"customer": True, "tier": "gold", "aov": 87.5}, T0)
    later = Contact("shop", "customer-1", {"customer": True, "tier": "platinum"}, T0 + 1)

    async def body(store: Store) -> list[Contact | None]:
        await store.put_contacts([first])
        seen = [await store.contact("shop", "customer-1")]
        await store.put_contacts([later])
        return [
            *seen,
            await store.contact("shop", "customer-1"),
            await store.contact("news", "customer-1"),
        ]

    assert with_store(store_url, body) == [first, later, None]


def test_a_write_is_seen_by_the_next_read_while_another_read_is_under_way(
    store_url: str,
) -> None:
    """A background read (a poller's, another request's) in flight while a contact is
    written must not lend the next read its older snapshot: a contact just written, then
    read back, is there. SQLite's reads share one connection, where one read's statement
    left open across an await used to hold the snapshot for every read behind it."""

    async def body(store: Store) -> list[str]:
        await store.put_contacts([Contact("shop", "someone-else", {}, T0)])
        missing = []
        for i in range(20):
            other = asyncio.create_task(store.contact("shop", "someone-else"))
            await asyncio.sleep(0)  # its read is queued on the reader's thread...
            time.sleep(0.002)  # ...and started there, its result not yet taken
            await store.put_contacts([Contact("shop", f"customer-{i}", {}, T0)])
            if await store.contact("shop", f"customer-{i}") is None:
                missing.append(f"customer-{i}")
            await other
        return missing

    assert with_store(store_url, body) == []


def test_browsers_link_to_one_contact_and_its_log_is_found(store_url: str) -> None:
    async def body(store: Store) -> tuple[list[str], list[str], list[str]]:
        await store.write([], [decision(0, "laptop"), decision(1, "phone"), decision(2, "other")])
        await store.link("news", "phone", "customer-9", T0 + 2, verified=True)
        await store.link("news", "laptop", "customer-9", T0 + 1, verified=True)
        await store.link("news", "other", "customer-9", T0 + 3, verified=True)
        await store.link("news", "other", "customer-5", T0 + 4, verified=True)  # changed hands
        logged = await store.decisions(DecisionQuery(site="news", contact="customer-9"))
        return (
            await store.visitors("news", "customer-9"),
            await store.visitors("news", "customer-5"),
            sorted(r.visitor for r in logged),
        )

    assert with_store(store_url, body) == (["laptop", "phone"], ["other"], ["laptop", "phone"])


def test_claimed_links_are_kept_apart_from_verified_ones(store_url: str) -> None:
    """A browser whose page JavaScript claims a contact is linked unverified: not one of the
    person's browsers, not in their log, and never in place of a verified link."""

    async def body(store: Store) -> tuple[list[str], int, list[str], list[str]]:
        visitors = ("laptop", "phone", "other", "stranger")
        await store.write([], [decision(i, v) for i, v in enumerate(visitors)])
        await store.link("news", "laptop", "alice", T0, verified=True)
        await store.link("news", "phone", "alice", T0 + 1, verified=False)
        await store.link("news", "other", "bob", T0 + 2, verified=True)
        await store.link("news", "other", "alice", T0 + 3, verified=False)  # stays bob's
        await store.link("news", "stranger", "alice", T0 + 4, verified=False)
        await store.link("news", "stranger", "alice", T0 + 5, verified=True)  # now proven
        logged = await store.decisions(DecisionQuery(site="news", contact="alice"))
        return (
            await store.visitors("news", "alice"),
            await store.claims("news", "alice"),
            await store.visitors("news", "bob"),
            sorted(r.visitor for r in logged),
        )

    assert with_store(store_url, body) == (
        ["laptop", "stranger"],
        1,
        ["other"],
        ["laptop", "stranger"],
    )


def test_history_reads_the_newest_records_of_the_newest_verified_browsers(
    store_url: str,
) -> None:
    """However much a person's browsers logged, identification reads at most the newest
    HISTORY_RECORDS events and decisions of each of their HISTORY_BROWSERS most recently
    linked verified browsers: the oldest browser, the overflow and claimers are left out."""
    many = HISTORY_RECORDS + 10
    browsers = [f"b{i:02d}" for i in range(HISTORY_BROWSERS + 1)]  # b00 is linked first

    async def body(store: Store) -> Any:
        for i, visitor in enumerate(browsers):
            await store.link("news", visitor, "alice", T0 + i, verified=True)
        await store.link("news", "claimer", "alice", T0 + 99, verified=False)
        heavy = browsers[-1]
        await store.write(
            [event(j, heavy) for j in range(many)]
            + [event(many + i, v) for i, v in enumerate([*browsers[:-1], "claimer"])],
            [decision(j, heavy) for j in range(many)]
            + [decision(many + i, v) for i, v in enumerate([*browsers[:-1], "claimer"])]
            + [
                DecisionRecord(
                    record_id(T0 + 5 * many), "news", "b05", T0 + 5 * many, "u", [], False
                )
            ],
        )
        return await store.history("news", "alice")

    history = with_store(store_url, body)
    heavy = [e for e in history.events if e.visitor == browsers[-1]]
    assert len(heavy) == HISTORY_RECORDS and heavy[0].at == T0 + 10  # the newest ones
    others = {e.visitor for e in history.events} - {browsers[-1]}
    assert others == set(browsers[1:-1])  # not b00 (the 21st), not the claimer
    assert [e.at for e in history.events] == sorted(e.at for e in history.events)
    assert len(history.pageviews) == HISTORY_RECORDS + HISTORY_BROWSERS - 1  # pageviews only
    assert min(p.at for p in history.pageviews) == T0 + 10 * 1000
    assert {p.url for p in history.pageviews} >= {f"https://n/{many + 1}"}


def use(token: str, visitor: str, at: int = T0, site: str = "news") -> TokenUse:
    return TokenUse(site, token, visitor, "alice", at, T0 + 86_400_000)


def test_a_token_identifies_at_most_its_limit_of_browsers(store_url: str) -> None:
    async def body(store: Store) -> list[bool]:
        seen = [await store.use_token(use("t1", v), 3) for v in ("v1", "v2", "v3", "v4", "v1")]
        seen.append(await store.use_token(use("t2", "v4"), 3))  # another token
        seen.append(await store.use_token(use("t1", "v4", site="shop"), 3))  # another site
        # Uses of an expired token are forgotten: nothing holds a place for ever.
        seen.append(await store.use_token(use("t1", "v5", at=T0 + 86_400_000), 3))
        return seen

    assert with_store(store_url, body) == [True, True, True, False, True, True, True, True]


def test_browsers_arriving_together_never_exceed_a_token_s_limit(store_url: str) -> None:
    async def body(store: Store) -> list[bool]:
        return list(
            await asyncio.gather(*(store.use_token(use("t", f"v{i}"), 3) for i in range(12)))
        )

    assert sum(with_store(store_url, body)) == 3


def test_erasure_deletes_every_link_but_pseudonymises_only_verified_browsers(
    store_url: str,
) -> None:
    async def body(store: Store) -> tuple[list[str], int, list[str], bool]:
        await store.link("news", "laptop", "alice", T0, verified=True)
        await store.link("news", "claimer", "alice", T0, verified=False)
        assert await store.use_token(use("t", "laptop"), 1)
        await store.write([event(1, "laptop"), event(2, "claimer")], [])
        assert await store.erase_contact("news", "alice")
        events = await store.events("news", ["laptop", "claimer"])
        return (
            await store.visitors("news", "alice"),
            await store.claims("news", "alice"),
            [e.visitor for e in events],
            await store.use_token(use("t", "someone-else"), 1),  # the token's uses went too
        )

    # The claimer's records are the claimer's own: not the person's, so not erased.
    assert with_store(store_url, body) == ([], 0, ["claimer"], True)


def test_a_claim_alone_is_held_and_erased(store_url: str) -> None:
    async def body(store: Store) -> tuple[int, bool, int]:
        await store.link("news", "claimer", "alice", T0, verified=False)
        held = await store.claims("news", "alice")
        return held, await store.erase_contact("news", "alice"), await store.claims("news", "alice")

    assert with_store(store_url, body) == (1, True, 0)


def test_links_made_before_verification_was_recorded_count_as_claims(tmp_path: Path) -> None:
    """Old links may have come from page JavaScript: after the upgrade none is trusted until
    the person opens an email link again."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for script in sqlite_store.MIGRATIONS[:2]:
        for statement in script.split(";"):
            db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO links VALUES ('news', 'laptop', 'alice', 1)")
    db.close()

    async def body(store: Store) -> tuple[list[str], int]:
        return await store.visitors("news", "alice"), await store.claims("news", "alice")

    assert with_store(f"sqlite:///{path}", body) == ([], 1)


def test_a_database_of_an_older_version_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in sqlite_store.MIGRATIONS[0].split(";"):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO api_keys VALUES ('0123456789ab', 'h', '[\"news\"]', 'old', 1)")
    db.close()

    async def body(store: Store) -> tuple[ApiKey | None, list[str]]:
        await store.link("news", "laptop", "customer-1", T0, verified=True)
        return await store.api_key("0123456789ab"), await store.visitors("news", "customer-1")

    key, linked = with_store(f"sqlite:///{path}", body)
    assert key is not None and key.label == "old" and key.revoked is None
    assert linked == ["laptop"]
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == len(sqlite_store.MIGRATIONS)


def test_erasure_forgets_the_person_but_keeps_the_counts(store_url: str) -> None:
    async def body(store: Store) -> tuple[bool, bool, object, list[str], list[str], list[str]]:
        await store.put_contacts([Contact("news", "customer-1", {"subscriber": False}, T0)])
        await store.link("news", "laptop", "customer-1", T0, verified=True)
        await store.write([event(1, "laptop"), event(2, "stranger")], [decision(1, "laptop")])
        erased = await store.erase_contact("news", "customer-1")
        again = await store.erase_contact("news", "customer-1")
        records = await store.decisions(DecisionQuery(site="news"))
        return (
            erased,
            again,
            await store.contact("news", "customer-1"),
            await store.visitors("news", "customer-1"),
            [f"{r.visitor}:{r.url}" for r in records],
            [e.visitor for e in await store.events("news", ["laptop", "stranger"])],
        )

    erased, again, contact, visitors, records, events = with_store(store_url, body)
    assert (erased, again, contact, visitors) == (True, False, None, [])
    (record,) = records  # still counted, under a stand-in that leads nowhere
    assert record.startswith("erased-") and record.endswith(":") and events == ["stranger"]


def test_results_count_exposures_impressions_and_conversions_after_exposure(
    store_url: str,
) -> None:
    def shown(visitor: str, variant: str, at: int) -> DecisionRecord:
        verdicts = [Verdict("exp", True, variant=variant), Verdict("other", False, reason="x")]
        return DecisionRecord(record_id(T0 + at), "news", visitor, T0 + at, "u", verdicts)

    def happened(visitor: str, kind: str, at: int, **fields: str) -> EventRecord:
        return EventRecord("news", visitor, kind, T0 + at, **fields)

    async def body(store: Store) -> list[tuple[str, int, int, int]]:
        store.goals = {"news": {"signup": ("exp",)}}  # the rule's goal, as the app sets it
        await store.write(
            [
                happened("a", "impression", 1, rule="exp", variant="blue"),  # no id: counted
                happened("a", "impression", 5, rule="exp", variant="blue", decision="d-5"),
                happened("a", "impression", 6, rule="exp", variant="blue", decision="d-5"),
                happened("a", "event", 9, name="signup"),  # goal after exposure: converted
                happened("b", "event", 0, name="signup"),  # before exposure: not
                happened("c", "convert", 7, rule="exp", variant="control"),
                happened("d", "convert", 7, rule="other", variant="x"),  # another rule's
            ],
            [
                shown("a", "blue", 1),
                shown("a", "blue", 5),  # one visitor, however often decided
                shown("b", "blue", 2),
                shown("c", "control", 3),
                shown("d", "control", 3),
                DecisionRecord(record_id(T0), "news", "e", T0, "u", [Verdict("exp", False)]),
            ],
        )
        counts = await store.results("news", "exp")
        return [(c.variant, c.visitors, c.impressions, c.conversions) for c in counts]

    assert with_store(store_url, body) == [("blue", 2, 2, 1), ("control", 2, 0, 1)]


def test_a_record_whose_key_is_stored_is_not_stored_again(store_url: str) -> None:
    """Idempotency keys, per site: a retry's records are skipped in the same group or a
    later one; records without a key are all kept; the same key on another site is its own."""
    once = EventRecord("news", "reader-1", "impression", T0, key="event-id-0001")
    shop = EventRecord("shop", "reader-1", "impression", T0, key="event-id-0001")
    plain = event(1)
    first = DecisionRecord(record_id(T0), "news", "reader-1", T0, "u", [], key="call-id-0001")
    retry = DecisionRecord(record_id(T0), "news", "reader-1", T0, "u", [], key="call-id-0001")

    async def body(store: Store) -> tuple[int, int, int]:
        await asyncio.gather(store.write([once, plain], [first]), store.write([once], [retry]))
        await store.write([once, plain, shop], [retry])
        news = await store.events("news", ["reader-1"])
        shops = await store.events("shop", ["reader-1"])
        return len(news), len(shops), len(await store.decisions(DecisionQuery(site="news")))

    assert with_store(store_url, body) == (3, 1, 1)  # the impression once, the trigger twice


LIMITS = (RateLimit(5, 60_000), RateLimit(3, 3_600_000))


def submission(i: int, visitor: str = "reader-1", contact: str | None = "a@b.se") -> Submission:
    at = T0 + i * 1000
    fields = {"email": contact, "interests": ["sport"], "consent": True}
    consents = {"consent": "Send me the newsletter"}
    return Submission(record_id(at), "news", "newsletter", "short", f"decision-{i:02d}",
                      visitor, contact, fields, consents, at)  # fmt: skip


def conversion(s: Submission, key: str | None = None) -> EventRecord:
    return EventRecord(s.site, s.visitor, "convert", s.at, rule=s.rule, variant=s.variant,
                       decision=s.decision, key=key)  # fmt: skip


def test_a_submission_is_stored_with_its_conversion_contact_and_unverified_link(
    store_url: str,
) -> None:
    async def body(store: Store) -> Any:
        first = submission(0)
        done = await store.submit(first, {"interests": ["sport"]}, conversion(first), "s-1", LIMITS)
        second = submission(1)
        await store.submit(second, {"city": "Malmö"}, conversion(second), None, LIMITS)
        listed = await store.submissions(SubmissionQuery(site="news"))
        events = await store.events("news", ["reader-1"])
        return done, first, listed, events, await store.contact("news", "a@b.se")

    done, first, listed, events, contact = with_store(store_url, body)
    assert done == Submitted("stored")
    assert [s.decision for s in listed] == ["decision-01", "decision-00"]  # newest first
    assert listed[1] == first  # read back as written, consent text and all
    assert [(e.type, e.rule, e.decision) for e in events] == [
        ("convert", "newsletter", "decision-00"),
        ("convert", "newsletter", "decision-01"),
    ]
    assert contact is not None and contact.source == "form" and contact.attributes == {}
    assert contact.answers == {"interests": ["sport"], "city": "Malmö"}  # merged


def test_a_form_never_changes_a_contact_s_verified_attributes(store_url: str) -> None:
    async def body(store: Store) -> Any:
        await store.put_contacts([Contact("news", "a@b.se", {"tier": "gold"}, T0)])
        s = submission(0)
        await store.submit(s, {"tier": "typed"}, conversion(s), None, LIMITS)
        return (
            await store.contact("news", "a@b.se"),
            await store.visitors("news", "a@b.se"),
            await store.claims("news", "a@b.se"),
        )

    contact, verified, claims = with_store(store_url, body)
    assert contact == Contact("news", "a@b.se", {"tier": "gold"}, T0, {"tier": "typed"}, "site")
    assert (verified, claims) == ([], 1)  # linked unverified only


def test_a_submission_with_a_stored_key_is_not_stored_again(store_url: str) -> None:
    async def body(store: Store) -> Any:
        s = submission(0)
        first = await store.submit(s, {}, conversion(s, "k.form"), "k", LIMITS)
        again = await store.submit(replace(s, id=record_id(T0)), {}, conversion(s, "k.form"),
                                   "k", LIMITS)  # fmt: skip
        return first, again, await store.submissions(SubmissionQuery(site="news"))

    first, again, listed = with_store(store_url, body)
    assert (first.outcome, again.outcome, len(listed)) == ("stored", "repeated", 1)


def test_submissions_are_limited_per_visitor_and_per_address(store_url: str) -> None:
    async def body(store: Store) -> Any:
        outcomes = []
        for i in range(6):  # one browser, six addresses, within a minute
            s = submission(i, contact=f"r{i}@b.se")
            outcomes.append(await store.submit(s, {}, conversion(s), None, LIMITS))
        for i in range(4):  # four browsers, one address, within the hour
            s = submission(10 + i, visitor=f"browser-{i}", contact="same@b.se")
            outcomes.append(await store.submit(s, {}, conversion(s), None, LIMITS))
        later = submission(61, visitor="reader-1", contact="late@b.se")  # the minute has passed
        outcomes.append(await store.submit(later, {}, conversion(later), None, LIMITS))
        return outcomes, await store.submissions(SubmissionQuery(site="news"))

    outcomes, listed = with_store(store_url, body)
    assert [o.outcome for o in outcomes[:5]] == ["stored"] * 5
    assert outcomes[5] == Submitted("limited", "visitor", 60_000 - 5_000)
    assert [o.outcome for o in outcomes[6:9]] == ["stored"] * 3
    assert outcomes[9] == Submitted("limited", "address", 3_600_000 - 3_000)
    assert outcomes[10].outcome == "stored"
    assert len(listed) == 5 + 3 + 1  # refused ones stored nothing


def test_submissions_are_narrowed_by_rule_contact_and_time(store_url: str) -> None:
    async def body(store: Store) -> Any:
        for i in range(4):
            s = replace(submission(i, visitor=f"v{i}", contact=f"r{i}@b.se"),
                        rule="newsletter" if i % 2 else "poll")  # fmt: skip
            await store.submit(s, {}, conversion(s), None, LIMITS)

        async def ids(**kw: Any) -> list[str]:
            return [s.decision for s in await store.submissions(SubmissionQuery("news", **kw))]

        return (
            await ids(rule="poll"),
            await ids(contact="r3@b.se"),
            await ids(since=T0 + 1000, until=T0 + 3000),
            await store.submission_counts("news"),
            await store.submissions(SubmissionQuery("shop")),
        )

    poll, person, window, counts, other = with_store(store_url, body)
    assert poll == ["decision-02", "decision-00"] and person == ["decision-03"]
    assert window == ["decision-02", "decision-01"]
    assert counts == {"poll": 2, "newsletter": 2} and other == []


def test_erasure_deletes_the_person_s_submissions(store_url: str) -> None:
    async def body(store: Store) -> Any:
        mine = submission(0)
        await store.submit(mine, {}, conversion(mine), None, LIMITS)
        # From a browser verified as theirs, a poll answered before the address was known.
        await store.link("news", "verified-1", "a@b.se", T0, verified=True)
        poll = submission(1, visitor="verified-1", contact=None)
        await store.submit(poll, {}, conversion(poll), None, LIMITS)
        other = submission(2, visitor="someone", contact="c@d.se")
        await store.submit(other, {}, conversion(other), None, LIMITS)
        erased = await store.erase_contact("news", "a@b.se")
        return erased, await store.submissions(SubmissionQuery(site="news"))

    erased, left = with_store(store_url, body)
    assert erased and [s.contact for s in left] == ["c@d.se"]


def purchase(
    at: int, key: str | None, contact: str = "carol", name: str = "store_purchase"
) -> ContactEvent:
    return ContactEvent("shop", contact, name, at, 10.5 if key else None, key)


def test_server_side_events_are_stored_once_and_listed_oldest_first(store_url: str) -> None:
    batch = [purchase(T0 + 2, "order-2"), purchase(T0 + 1, "order-1"), purchase(T0 + 1, "order-1")]

    async def body(store: Store) -> tuple[int, int, int, list[ContactEvent], list[ContactEvent]]:
        first = await store.add_contact_events(batch)  # the repeated id within it: once
        again = await store.add_contact_events(batch[:2])  # a retried batch
        unkeyed = await store.add_contact_events([purchase(T0 + 3, None)] * 2)
        other = await store.contact_events("shop", "dave")
        return first, again, unkeyed, await store.contact_events("shop", "carol"), other

    first, again, unkeyed, held, other = with_store(store_url, body)
    assert (first, again, unkeyed) == (2, 0, 2)  # an event without an id is always new
    assert held == [batch[1], batch[0], purchase(T0 + 3, None), purchase(T0 + 3, None)]
    assert other == []


def test_a_refresh_reads_attributes_and_events_only_for_a_verified_browser(
    store_url: str,
) -> None:
    events = [
        purchase(T0 - 5 * 86_400_000, "old"),  # before since: only in the total
        purchase(T0 - 1000, "a"),
        purchase(T0, "b"),
        purchase(T0, "c", name="email_open"),
        purchase(T0, "d", name="unread"),  # no rule counts it
        purchase(T0, "e", contact="dave"),
    ]
    names = ["email_open", "store_purchase"]
    since = T0 - 86_400_000

    async def body(store: Store) -> list[Refreshed | None]:
        await store.put_contacts([Contact("shop", "carol", {"tier": "gold"}, T0)])
        await store.add_contact_events(events)
        await store.link("shop", "carol-laptop", "carol", T0, verified=True)
        await store.link("shop", "claimer", "carol", T0, verified=False)
        found = [
            await store.refresh("shop", "carol-laptop", "carol", names, since),
            await store.refresh("shop", "claimer", "carol", names, since),  # only claimed
            await store.refresh("shop", "stranger", "carol", names, since),
            await store.refresh("shop", "carol-laptop", "dave", names, since),  # not hers
            await store.refresh("shop", "carol-laptop", "carol", [], since),  # nothing counted
        ]
        await store.erase_contact("shop", "carol")
        found.append(await store.refresh("shop", "carol-laptop", "carol", names, since))
        return found

    verified, claimed, stranger, other, uncounted, erased = with_store(store_url, body)
    assert verified == Refreshed(
        {"tier": "gold"},  # newest first (at one instant, the last stored first)
        [
            ("email_open", T0, 1050),
            ("store_purchase", T0, 1050),
            ("store_purchase", T0 - 1000, 1050),
        ],
        {"email_open": 1, "store_purchase": 3},
        {"email_open": 1050, "store_purchase": 3150},  # the values in hundredths, in all
    )
    assert claimed is None and stranger is None and other is None and erased is None
    assert uncounted == Refreshed({"tier": "gold"}, [], {})


def test_a_refresh_reads_values_in_hundredths_rounded_as_a_browser_s(store_url: str) -> None:
    """Each value as ``VisitorState.add_value`` rounds it (``round(value * 100)``: half to
    even on the double), the sums in all of those, in both engines: a purchase sent by the
    site's systems adds up exactly as one the tag reports."""
    values = [0.125, 0.375, -0.125, -0.375, 1.005, 2.675, 0.1, 0.2, 59.9, 0.005, 0.015, -2.5]
    values += [1e9, -1e9, 1234.565, 0.29, 1.15]
    events = [
        ContactEvent("shop", "carol", "store_purchase", T0 - i, v, f"o-{i}")
        for i, v in enumerate(values)
    ]
    events += [
        ContactEvent("shop", "carol", "store_purchase", T0 - 100, None, "no-value"),
        # Stored before the endpoint bounded values: held within ±MAX_VALUE all the same.
        ContactEvent("shop", "carol", "big", T0, 5e15, "huge"),
        ContactEvent("shop", "carol", "big", T0 - 1, -5e15, "-huge"),
        ContactEvent("shop", "carol", "refund", T0, 12.5, "r-1"),
        ContactEvent("shop", "carol", "refund", T0 - 1, -12.5, "r-2"),  # they come to 0
    ]
    names = ["big", "refund", "store_purchase"]

    async def body(store: Store) -> Refreshed | None:
        await store.add_contact_events(events)
        await store.link("shop", "carol-laptop", "carol", T0, verified=True)
        return await store.refresh("shop", "carol-laptop", "carol", names, T0 - 86_400_000)

    found = with_store(store_url, body)
    assert found is not None
    held = {(name, at): h for name, at, h in found.events}
    rounded = [round(v * 100) for v in values]
    assert [held["store_purchase", T0 - i] for i in range(len(values))] == rounded
    assert rounded[:5] == [12, 38, -12, -38, 100]  # ties go to the even hundredth
    assert held["store_purchase", T0 - 100] == 0  # no value
    assert (held["big", T0], held["big", T0 - 1]) == (100_000_000_000, -100_000_000_000)
    assert found.totals == {"big": 2, "refund": 2, "store_purchase": len(values) + 1}
    assert found.sums == {"store_purchase": sum(rounded)}  # 0 in all: no sum


def test_erasure_deletes_the_person_s_server_side_events(store_url: str) -> None:
    async def body(store: Store) -> tuple[bool, list[ContactEvent], bool, list[ContactEvent]]:
        await store.add_contact_events([purchase(T0, "a"), purchase(T0, "b", contact="dave")])
        erased = await store.erase_contact("shop", "carol")  # only events were held
        again = await store.erase_contact("shop", "carol")
        return (
            erased,
            await store.contact_events("shop", "carol"),
            again,
            await store.contact_events("shop", "dave"),
        )

    erased, left, again, others = with_store(store_url, body)
    assert erased and left == [] and not again
    assert [e.id for e in others] == ["b"]


def test_an_event_s_value_is_stored_and_read_back_in_the_person_s_history(store_url: str) -> None:
    """A purchase's amount is kept with its event (a nullable column), so a rebuild of the
    person's history sums it again on another device."""
    bought = [
        EventRecord("news", "laptop", "trigger", T0 + 1, name="purchase", value=59.9),
        EventRecord("news", "laptop", "trigger", T0 + 2, name="purchase", value=-10.25),
        EventRecord("news", "laptop", "trigger", T0 + 3, name="purchase"),
    ]

    async def body(store: Store) -> Any:
        await store.write(bought, [])
        await store.link("news", "laptop", "alice", T0, verified=True)
        return await store.events("news", ["laptop"]), await store.history("news", "alice")

    events, history = with_store(store_url, body)
    assert [e.value for e in events] == [59.9, -10.25, None]
    assert events == bought and history.events == bought


def test_the_store_bounds_values_and_sums_as_the_decision_does() -> None:
    """The refresh's SQL clamps with its own copy of the bounds (the store imports nothing
    above it): they must be the protocol's and the state's."""
    from sitecue import protocol, state
    from sitecue.store import contact_events

    assert contact_events.MAX_VALUE == protocol.MAX_VALUE
    assert contact_events.MAX_SUM == state.MAX_SUM


class _Sqlite335(sqlite3.Connection):
    """A connection that refuses what SQLite added after 3.35 (RETURNING's), as an older
    system library would: the ``->`` and ``->>`` operators (3.38)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

        def allow(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
            if action == sqlite3.SQLITE_FUNCTION and arg2 in ("->", "->>"):
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK

        self.set_authorizer(allow)


def test_sqlite_3_35_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Migrating (the rollups' backfill included) and writing a decision, its feedback and a
    goal, counted in the rollups, use nothing newer than SQLite 3.35."""
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, factory=_Sqlite335, **k))
    d = DecisionRecord(record_id(1_000), "news", "v", 1_000, "u",
                       [Verdict("exp", True, variant="blue")], key="call-1")  # fmt: skip
    events = [
        EventRecord("news", "v", "impression", 1_001, rule="exp", variant="blue", decision=d.id),
        EventRecord("news", "v", "event", 1_002, name="purchase", value=2.0, key="go-1"),
    ]

    async def main() -> list[VariantCounts]:
        store = await open_store(f"sqlite:///{tmp_path / 'old-sqlite.db'}",
                                 {"news": {"purchase": ("exp",)}})  # fmt: skip
        try:
            await store.write(events, [d])
            return await store.results("news", "exp")
        finally:
            await store.close()

    assert asyncio.run(main()) == [VariantCounts("blue", 1, 1, 1, 2.0, 4.0, decisions=1)]


def test_a_refresh_reads_the_products_the_person_bought_on_their_verified_browsers(
    store_url: str,
) -> None:
    """Purchases (events named as the catalog's, with products) of the browsers verified as
    the person's and of the site's own records, newest first and each product once; a
    browser merely claiming the contact adds nothing, nor does anything older than
    ``bought since``, another event, or another site."""

    def bought(
        visitor: str, at: int, products: list[str], type: str = "trigger",
        name: str = "purchase", site: str = "shop",
    ) -> EventRecord:  # fmt: skip
        return EventRecord(site, visitor, type, at, name=name, products=products)

    events = [
        bought("carol-laptop", T0 - 3000, ["a", "b"]),
        bought("carol-phone", T0 - 1000, ["c", "a"], type="event"),
        bought("claimer", T0, ["forged"]),  # a browser only claiming to be carol's
        bought("carol-laptop", T0, ["cart"], name="add_to_cart"),  # not a purchase
        bought("carol-laptop", T0 - 10 * 86_400_000, ["old"]),  # before bought since
        bought("carol-laptop", T0, ["other"], site="blog"),  # another site
    ]
    contact = [
        ContactEvent("shop", "carol", "purchase", T0 - 2000, 5.0, "o-1", ["shop-1", "b"]),
        ContactEvent("shop", "dave", "purchase", T0, 5.0, "o-2", ["daves"]),
    ]

    async def body(store: Store) -> tuple[Any, ...]:
        await store.write(events, [])
        await store.add_contact_events(contact)
        for visitor in ("carol-laptop", "carol-phone"):
            await store.link("shop", visitor, "carol", T0 - 5000, verified=True)
        await store.link("shop", "claimer", "carol", T0, verified=False)
        since = T0 - 86_400_000
        return (
            await store.refresh("shop", "carol-laptop", "carol", [], since, "purchase", since),
            await store.refresh("shop", "carol-laptop", "carol", [], since),  # no catalog
            await store.refresh("shop", "claimer", "carol", [], since, "purchase", since),
            await store.contact_events("shop", "carol"),
        )

    found, uncatalogued, claimed, listed = with_store(store_url, body)
    assert found is not None and found.bought == ["c", "a", "shop-1", "b"]
    assert uncatalogued is not None and uncatalogued.bought == []
    assert claimed is None
    assert listed == [contact[0]]  # the products round-trip
