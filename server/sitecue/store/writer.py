"""One writer per process, committing in groups.

Requests hand their records to the writer and wait; a single task takes whatever has queued
up (at most ``max_records``) and commits it in one transaction, then wakes every request in
that group. A request is therefore answered only after its records are durable, while a busy
server pays for one commit per group instead of one per request. If a commit fails, every
request in the group gets the error: nothing is acknowledged that was not stored.

A commit that failed for want of the store (:class:`StoreUnavailable`: stopped, full,
read-only) leaves the writer unhealthy until a commit succeeds again, a group's or the
``heartbeat`` that a health check makes meanwhile: a server that cannot store must not
report itself ready, and one whose load balancer stopped sending it traffic must still find
out that the store is back.

With a :class:`~.spool.Spool` attached, a group the store cannot take is spooled locally
and its requests answered all the same; the writer fails a group only when neither can.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import StoreUnavailable
from .base import DecisionRecord, EventRecord
from .outbox import Message

if TYPE_CHECKING:
    from .spool import Spool

__all__ = ["GroupWriter"]

# One group: its events, decisions, and the outbox messages they cause, in one transaction.
Flush = Callable[[list[EventRecord], list[DecisionRecord], list[Message]], Awaitable[None]]


@dataclass
class _Pending:
    events: list[EventRecord]
    decisions: list[DecisionRecord]
    done: asyncio.Future[None]
    messages: Sequence[Message] = ()

    @property
    def size(self) -> int:
        return len(self.events) + len(self.decisions) + len(self.messages)


@dataclass
class GroupWriter:
    flush: Flush  # writes and commits one group in one transaction
    max_records: int = 2000
    batches: list[int] = field(default_factory=list)  # the last hundred group sizes
    on_commit: Callable[[int], None] = lambda size: None  # told each committed group's size
    heartbeat: Callable[[], Awaitable[None]] | None = None  # commits a row; proves writes work
    failing: StoreUnavailable | None = None  # why the last commit failed, until one succeeds
    spool: Spool | None = None  # where groups go while the store fails (see Spool.attach)
    # Whether a cancelled flush lets go at once: SQLite's waits only for the file's lock,
    # PostgreSQL's may wait on the network to roll back (see Spool._bounded).
    cancels_at_once: bool = False
    _queue: list[_Pending] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _closing: bool = False

    @property
    def depth(self) -> int:
        """Records waiting for the next commit."""
        return sum(p.size for p in self._queue)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sitecue-writer")

    async def stop(self) -> None:
        """Commit everything queued (never abandoning a group half-way), then stop."""
        self._closing = True
        self._wake.set()
        if self.spool is not None:
            await self.spool.stop()  # forwarding ends before the store closes
        if self._task is not None:
            await self._task
        if self.spool is not None:
            self.spool.close()  # what is spooled stays for the next start

    async def healthy(self) -> bool:
        """Whether commits succeed: after a failed one, a heartbeat commit must succeed first."""
        if self.failing is None:
            return True
        if self.heartbeat is None:
            return False
        try:
            await self.heartbeat()
        except StoreUnavailable:
            return False
        self.failing = None
        return True

    async def write(
        self,
        events: list[EventRecord],
        decisions: list[DecisionRecord],
        messages: Sequence[Message] = (),
    ) -> None:
        """Queue the records (and the messages they cause) and return once they are
        committed."""
        if not events and not decisions and not messages:
            return
        if self._closing:
            raise RuntimeError("the store is closing; nothing was written")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(events, decisions, done, messages))
        self._wake.set()
        await done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._commit_next_group()
            if self._closing:
                return

    async def _commit_next_group(self) -> None:
        group: list[_Pending] = []
        size = 0
        while self._queue and (not group or size + self._queue[0].size <= self.max_records):
            pending = self._queue.pop(0)
            group.append(pending)
            size += pending.size
        events = [e for p in group for e in p.events]
        decisions = [d for p in group for d in p.decisions]
        messages = [m for p in group for m in p.messages]
        try:
            if self.spool is not None:
                await self.spool.commit(self.flush, events, decisions, messages)
            else:
                await self.flush(events, decisions, messages)
        except Exception as err:  # every waiter learns its records were not stored
            if isinstance(err, StoreUnavailable):
                self.failing = err
            for p in group:
                if not p.done.done():
                    p.done.set_exception(err)
            return
        self.failing = None
        self.batches = [*self.batches[-99:], size]
        self.on_commit(size)
        for p in group:
            if not p.done.done():
                p.done.set_result(None)
