"""The group writer: concurrent requests share commits, every acknowledged record is stored,
and a failed commit fails every request in its group."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from sitecue.errors import StoreUnavailable
from sitecue.store import EventRecord, open_store
from sitecue.store.writer import GroupWriter


def event(i: int) -> EventRecord:
    return EventRecord(
        "news", f"visitor-{i}", "trigger", 1_790_000_000_000 + i, name="paywall_view"
    )


def test_concurrent_writes_are_committed_in_groups(tmp_path: Path) -> None:
    async def main() -> list[int]:
        store = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
        await asyncio.gather(*(store.write([event(i)], []) for i in range(500)))
        batches = store.writer.batches  # type: ignore[attr-defined]
        await store.close()
        return list(batches)

    batches = asyncio.run(main())
    rows = sqlite3.connect(tmp_path / "db.sqlite").execute(
        "SELECT COUNT(*), COUNT(DISTINCT visitor) FROM events"
    )
    assert rows.fetchone() == (500, 500)
    assert sum(batches) == 500 and len(batches) < 100  # groups, not one commit per request


def test_a_failed_commit_fails_every_request_in_its_group() -> None:
    async def main() -> list[BaseException | None]:
        async def broken(events: list[EventRecord], decisions: list[object], *_: object) -> None:
            raise sqlite3.OperationalError("database is locked")

        writer = GroupWriter(broken)  # type: ignore[arg-type]
        writer.start()
        results = await asyncio.gather(
            *(writer.write([event(i)], []) for i in range(5)), return_exceptions=True
        )
        await writer.stop()
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)


def test_stop_commits_what_is_queued() -> None:
    stored: list[EventRecord] = []

    async def main() -> None:
        async def flush(events: list[EventRecord], decisions: list[object], *_: object) -> None:
            stored.extend(events)

        writer = GroupWriter(flush)  # type: ignore[arg-type]
        writer.start()
        pending = [asyncio.create_task(writer.write([event(i)], [])) for i in range(10)]
        await asyncio.sleep(0)
        await writer.stop()
        await asyncio.gather(*pending)

    asyncio.run(main())
    assert len(stored) == 10


@pytest.mark.parametrize("size", [1, 3])
def test_groups_respect_the_record_limit(size: int) -> None:
    groups: list[int] = []

    async def main() -> None:
        async def flush(events: list[EventRecord], decisions: list[object], *_: object) -> None:
            groups.append(len(events))

        writer = GroupWriter(flush, max_records=size)  # type: ignore[arg-type]
        writer.start()
        await asyncio.gather(*(writer.write([event(i)], []) for i in range(7)))
        await writer.stop()

    asyncio.run(main())
    assert sum(groups) == 7 and max(groups) <= size


def test_an_outage_leaves_the_writer_unhealthy_until_a_commit_succeeds() -> None:
    """A group refused for want of the store makes the writer unhealthy; a health check
    then tries a heartbeat commit, and only one that succeeds makes it healthy again. A
    group refused for what it held (a bug, a clash) says nothing about the store."""
    down = True
    beats: list[bool] = []

    async def flush(events: list[EventRecord], decisions: list[object], *_: object) -> None:
        if events[0].visitor == "visitor-0":
            raise sqlite3.IntegrityError("UNIQUE constraint failed")
        if down:
            raise StoreUnavailable("OperationalError: database or disk is full")

    async def heartbeat() -> None:
        beats.append(down)
        if down:
            raise StoreUnavailable("OperationalError: database or disk is full")

    async def main() -> list[bool]:
        nonlocal down
        writer = GroupWriter(flush, heartbeat=heartbeat)  # type: ignore[arg-type]
        writer.start()
        with pytest.raises(sqlite3.IntegrityError):
            await writer.write([event(0)], [])
        seen = [await writer.healthy()]
        with pytest.raises(StoreUnavailable):
            await writer.write([event(1)], [])
        seen += [await writer.healthy(), await writer.healthy()]
        down = False
        seen += [await writer.healthy(), await writer.healthy()]
        await writer.stop()
        return seen

    assert asyncio.run(main()) == [True, False, False, True, True]
    assert beats == [True, True, False]  # none while healthy
