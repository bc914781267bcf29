"""The WAL checkpointer (store/checkpoints.py) on a real SQLite file: a busy log past its
bound is started over, writers waiting only for the restart; an idle one is truncated."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sitecue.store.checkpoints import Checkpointer

ROW = b"x" * 3000  # about a page a row


def writer(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(f"PRAGMA journal_size_limit={64 * 4096}")
    db.execute("CREATE TABLE IF NOT EXISTS t (v BLOB)")
    return db


def commit(db: sqlite3.Connection, rows: int) -> None:
    db.executemany("INSERT INTO t VALUES (?)", [(ROW,)] * rows)


def frames(path: Path) -> int:
    """The frames the log holds now, as a PASSIVE checkpoint reports them."""
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def wal_size(path: Path) -> int:
    return os.path.getsize(f"{path}-wal")


def test_a_busy_log_past_its_bound_starts_over_under_the_writers_turn(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = writer(path)
    turns: list[str] = []

    @asynccontextmanager
    async def write_lock() -> AsyncIterator[None]:
        turns.append("taken")
        yield

    async def main() -> tuple[int, int, int]:
        checkpoints = Checkpointer(str(path), write_lock, bound=32 * 4096, every=3600)
        try:
            commit(db, 5)
            await checkpoints.checkpoint()  # the first round sees the log
            for _ in range(20):
                commit(db, 5)  # 100 pages: past the bound of 32
            before = wal_size(path) // 4096
            assert await checkpoints.checkpoint() is False  # busy: not truncated
            commit(db, 1)
            return before, frames(path), wal_size(path)
        finally:
            await checkpoints.close()

    before, after, size = asyncio.run(main())
    db.close()
    assert before > 100
    assert after < 10, "the commit after the restart wrote the log from its start"
    assert turns == ["taken"], "only the restart took the writers' turn"
    assert size <= 64 * 4096 + 2 * 4096, "and the file was trimmed to the size limit"


def test_a_log_written_within_its_bound_is_copied_beside_the_writers(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = writer(path)
    turns: list[str] = []

    @asynccontextmanager
    async def write_lock() -> AsyncIterator[None]:
        turns.append("taken")
        yield

    async def main() -> bool:
        checkpoints = Checkpointer(str(path), write_lock, bound=32 * 4096, every=3600)
        try:
            commit(db, 5)
            await checkpoints.checkpoint()
            commit(db, 5)
            return await checkpoints.checkpoint()  # busy, within the bound: PASSIVE only
        finally:
            await checkpoints.close()

    assert asyncio.run(main()) is False
    db.close()
    assert turns == [], "the writers never waited"


def test_an_idle_log_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = writer(path)

    @asynccontextmanager
    async def write_lock() -> AsyncIterator[None]:
        yield

    async def main() -> bool:
        checkpoints = Checkpointer(str(path), write_lock, bound=32 * 4096, every=3600)
        try:
            commit(db, 50)
            await checkpoints.checkpoint()
            return await checkpoints.checkpoint()  # nothing written since: writes paused
        finally:
            await checkpoints.close()

    assert asyncio.run(main()) is True
    assert wal_size(path) == 0
    db.close()
