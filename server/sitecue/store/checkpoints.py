"""SQLite's write-ahead log, kept bounded under load and emptied once writes pause.

In WAL mode every commit appends to ``<db>-wal``; a checkpoint copies the log into the
database, and only a writer that begins after a *complete* checkpoint starts the log over.
Under a steady stream of commits a checkpoint running beside them never completes (new
frames arrive while it copies), so the log grew without end: 1.6 GB in 20 s for a 66 MB
database. So each round (every second, and at once when a commit leaves the log past its
bound) either

- when the log has passed its bound, when it has not changed since the last round (no
  process wrote: writes have paused), or when asked to (after an erasure): takes the
  writers' turn (the lock they commit under, across processes), copies the log into the
  database and truncates it to zero bytes (``TRUNCATE``); commits wait meanwhile, and the
  group after it commits all that queued;
- or else, while writes go on within the bound, copies what it can beside them
  (``PASSIVE``), so that the next truncation has less to do.

Checkpoints run on a thread of their own, so the event loop keeps answering. Copying
beside the writers before every truncation was tried, and was slower: it competes with
them for the disk and copies pages that the next commits change again. Truncating also
takes what an erasure replaced out of the log, where its old pages would otherwise stay.
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
"""Past this size the log is truncated in the next round, however busy the writers are."""


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
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sitecue-checkpoint")
        self._wake = asyncio.Event()
        self._seen: tuple[int, int] | None = None  # the log's size and mtime, last round
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
        """Told after each commit: a log past its bound wakes the next round now."""
        if not self._wake.is_set() and self.wal_size() > self.bound:
            self._wake.set()

    async def checkpoint(self, *, truncate: bool = False) -> bool:
        """One round (see the module); True when the log was truncated."""
        seen, self._seen = self._seen, self._stat()
        size = self._seen[0]
        if not truncate and size == 0:
            return False
        loop = asyncio.get_running_loop()
        if not (truncate or seen == self._seen or size > self.bound):
            # Busy, and within bounds: copy beside the writers, so the next truncation has
            # less left to copy while they wait.
            await loop.run_in_executor(self._thread, self._checkpoint, "PASSIVE")
            return False
        async with self._write_lock():
            return await loop.run_in_executor(self._thread, self._checkpoint, "TRUNCATE")

    def _checkpoint(self, mode: str) -> bool:
        """Run on the thread; True unless readers kept it from finishing (it then copied what
        it could, and the next round tries again)."""
        busy, _, _ = self._db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return not busy

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
