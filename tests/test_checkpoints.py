"""The WAL checkpointer (store/checkpoints.py) on a real SQLite file: a busy log past its
bound is started over, the writers waiting only for the restart; one within its bound is
copied beside them; an idle one is truncated."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sitecue.store.checkpoints import Checkpointer

PAGE = 4096
BOUND = 32 * PAGE
LIMIT = 64 * PAGE  # the writer's journal_size_limit
ROW = b"x" * 3000  # about a page a row


def writer(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(f"PRAGMA journal_size_limit={LIMIT}")
    db.execute("CREATE TABLE IF NOT EXISTS t (v BLOB)")
    return db


def commit(db: sqlite3.Connection, rows: int) -> None:
    db.executemany("INSERT INTO t VALUES (?)", [(ROW,)] * rows)


def wal_size(path: Path) -> int:
    return os.path.getsize(f"{path}-wal")


@asynccontextmanager
async def checkpointer(path: Path) -> AsyncIterator[tuple[Checkpointer, list[str]]]:
    """A Checkpointer on ``path`` whose rounds run only when called, and a list that grows
    each time it takes the writers' turn."""
    turns: list[str] = []

    @asynccontextmanager
    async def write_lock() -> AsyncIterator[None]:
        turns.append("taken")
        yield

    checkpoints = Checkpointer(str(path), write_lock, bound=BOUND, every=3600)
    try:
        yield checkpoints, turns
    finally:
        await checkpoints.close()


def test_a_busy_log_past_its_bound_starts_over_under_the_writers_turn(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = writer(path)

    async def main() -> tuple[int, int, list[str]]:
        async with checkpointer(path) as (checkpoints, turns):
            commit(db, 5)
            await checkpoints.checkpoint()  # the first round sees the log
            for _ in range(20):
                commit(db, 5)  # 100 pages: past the bound of 32
            pages = wal_size(path) // PAGE
            assert await checkpoints.checkpoint() is False  # busy: not truncated
            commit(db, 1)
            with sqlite3.connect(path) as reader:
                (_, frames, _) = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return pages, frames, turns

    pages, frames, turns = asyncio.run(main())
    size = wal_size(path)
    db.close()
    assert pages > 100
    assert turns == ["taken"], "only the restart took the writers' turn"
    assert frames < 10, "the commit after the restart wrote the log from its start"
    assert size <= LIMIT + 2 * PAGE, "and the file was trimmed to the size limit"


def test_a_log_written_within_its_bound_is_copied_beside_the_writers(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = writer(path)

    async def main() -> tuple[bool, list[str]]:
        async with checkpointer(path) as (checkpoints, turns):
            commit(db, 5)
            await checkpoints.checkpoint()
            commit(db, 5)
            return await checkpoints.checkpoint(), turns  # busy, within the bound

    truncated, turns = asyncio.run(main())
    db.close()
    assert truncated is False
    assert turns == [], "the writers never waited"


def test_an_idle_log_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = writer(path)

    async def main() -> bool:
        async with checkpointer(path) as (checkpoints, _):
            commit(db, 50)
            await checkpoints.checkpoint()
            return await checkpoints.checkpoint()  # nothing written since: writes paused

    assert asyncio.run(main()) is True
    assert wal_size(path) == 0
    db.close()
