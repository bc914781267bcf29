"""SQLite's write-ahead log, kept bounded under load and emptied once writes pause.

In WAL mode every commit appends to ``<db>-wal``; a checkpoint copies the log into the
database, and only a writer that begins after a *complete* checkpoint starts the log over.
Under a steady stream of commits a checkpoint running beside them never completes (new
frames arrive while it copies), so the log grew without end: 1.6 GB in 20 s for a 66 MB
database. So each round (every second, and at once when a commit grows the log file past
its bound) does one of two things:

- Writes have paused (the log has not changed since the last round), or a caller asks
  (after an erasure): take the writers' turn (the lock they commit under, across
  processes), copy the whole log into the database and truncate it to zero bytes
  (``TRUNCATE``). Truncating also takes what an erasure replaced out of the log, where its
  old pages would otherwise stay.
- Writes go on: copy what can be copied beside them (``PASSIVE``), which also syncs the
  log. Once the log holds more than its bound, take the writers' turn and ``RESTART`` it:
  only the frames committed since the copy are left to copy, and the next commit writes
  the log from its start again, over the file's old frames (``journal_size_limit`` trims
  the file back to the bound then).

Writers therefore wait only for the frames of the last few milliseconds. A truncation
under their turn made them wait for all of it, 30-50 ms on this machine (strace: syncing
16 MB of log 10-25 ms, copying it ~15 ms, freeing the file's blocks ~10 ms), which set
the p99 of ``bench/decide.py``: 45 ms at peak and 38-41 ms paced at half of it, against
23-26 ms and 14-19 ms with the restart.

Checkpoints run on a thread of their own, so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, suppress

__all__ = ["WAL_BOUND", "Checkpointer"]

log = logging.getLogger("sitecue")

WAL_BOUND = 16 * 1024 * 1024
"""Past this size the log is started over in the next round, however busy the writers are."""


class Checkpointer:
    """Checkpoints the database at ``path`` every ``every`` seconds, and at once when a commit
    leaves the log past ``bound``. ``write_lock`` is the writers' turn."""

    def __init__(
        self,
        path: str,
        write_lock: Callable[[], AbstractAsyncContextManager[None]],
        bound: int = WAL_BOUND,
        every: float = 1.0,
    ) -> None:
        self.bound = bound
        self._wal = f"{path}-wal"
        self._write_lock = write_lock
        self._every = every
        # Its own connection, used only on its own thread. The busy timeout is how long a
        # TRUNCATE waits for readers still on an older snapshot, while writers wait for it.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=1000")
        self._db.execute("PRAGMA synchronous=NORMAL")
        (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        self._frame = page_size + 24  # a frame: one page and its header
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sitecue-checkpoint")
        self._wake = asyncio.Event()
        self._seen: tuple[int, int] | None = None  # the log's size and mtime, last round
        # A restarted log is written over its file from the start, so the file keeps its
        # size: a commit wakes a round only once the file grows past what the last saw.
        self._woken_past = bound
        self._task = asyncio.create_task(self._run(), name="sitecue-checkpoint")

    def _stat(self) -> tuple[int, int]:
        try:
            found = os.stat(self._wal)
        except FileNotFoundError:
            return 0, 0
        return found.st_size, found.st_mtime_ns

    def wal_size(self) -> int:
        return self._stat()[0]

    def committed(self) -> None:
        """Told after each commit: a log file grown past its bound wakes the next round now."""
        if not self._wake.is_set() and self.wal_size() > self._woken_past:
            self._wake.set()

    async def checkpoint(self, *, truncate: bool = False) -> bool:
        """One round (see the module); True when the log was truncated."""
        seen, self._seen = self._seen, self._stat()
        size = self._seen[0]
        if not truncate and size == 0:
            return False
        loop = asyncio.get_running_loop()
        if truncate or seen == self._seen:
            async with self._write_lock():
                busy, _ = await loop.run_in_executor(self._thread, self._checkpoint, "TRUNCATE")
            self._woken_past = self.bound
            return not busy
        self._woken_past = max(self.bound, size)
        _, frames = await loop.run_in_executor(self._thread, self._checkpoint, "PASSIVE")
        if frames * self._frame > self.bound:
            async with self._write_lock():
                await loop.run_in_executor(self._thread, self._checkpoint, "RESTART")
        return False

    def _checkpoint(self, mode: str) -> tuple[bool, int]:
        """Run on the thread: whether readers kept it from finishing (it then copied what it
        could, and a later round tries again), and the frames the log held."""
        busy, frames, _ = self._db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return bool(busy), frames

    async def _run(self) -> None:
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._every)
            self._wake.clear()  # before the round: a commit during it may ask for another
            try:
                await self.checkpoint()
            except sqlite3.Error as err:  # a full disk, say: the next round tries again
                log.warning("WAL checkpoint failed: %s", err)

    async def close(self) -> None:
        """Stop; call once no more commits come."""
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        self._thread.shutdown(wait=True)  # a round cancelled mid-way finishes on its thread
        self._db.close()
