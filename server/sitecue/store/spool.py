"""The local spool: where a worker's writer groups go while the store cannot take them, and
the forwarder that replays them to the store, in order and exactly once, when it returns.

Every group is first offered to the store, for at most FLUSH_TIMEOUT_S. A group the store
refuses (:class:`StoreUnavailable`) or does not answer in time is appended to this worker's
spool and fsynced, and only then are its requests answered; from then on every group goes
straight to the spool (no request waits on a dead database), and keeps going there while
the spool holds anything, so the store receives the worker's records in their order. The
forwarder tries the store again (after 0.25 s, doubling to 5 s), replays the spool's groups
in order, up to the writer's group size per transaction, removes each segment once it is
forwarded, and when nothing is left hands writing back to the store, between two groups.

Exactly once: records carry idempotency keys (the tag's call and event ids; a record
spooled without one gets a random one, ``~`` + 16 random characters, outside the tag's
alphabet), and the store skips a record whose key it holds (``record_keys``, kept two
days; outbox messages by their key). A forwarder that died between a commit and removing
the segment, a commit whose answer was lost as the store failed, or a timed-out commit
that went through after all, is therefore replayed without doubling anything; except, in
the last two cases, a record that had no key on its first try (one from a caller that
sends no ids: keying every record up front cost the demo's history seeding a key row per
record, for a case the tag never makes).

On disk (``<data dir>/spool``, mode 0700, files 0600: records name visitors): per worker
a lock file ``<worker>.lock`` held with ``flock`` while the worker lives, and segments
``<worker>.<n>.spool`` of up to SEGMENT_BYTES (see :mod:`.spoolfile`). A worker that died
leaves its lock free: the first process to take it (at start, and every SCAN_S) forwards
that worker's segments, so each file is forwarded by one process at a time. A segment that
is damaged (not a torn last entry) is forwarded up to the damage and renamed ``.bad`` for
the operator; names that are not the spool's are left alone and logged once. A spool over
its limit (SITECUE_SPOOL_MAX_MB per worker, default 1024) or a disk that refuses the
append refuses the group: its requests fail with StoreUnavailable (503), as nothing
stored them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from ..errors import StoreUnavailable
from ..settings import positive, setting
from .base import DecisionRecord, EventRecord
from .outbox import Message
from .spoolfile import (
    MAGIC,
    Group,
    Segment,
    SpoolDamaged,
    encode_entry,
    read_entries,
    sync_directory,
)

if TYPE_CHECKING:
    from .writer import Flush, GroupWriter

__all__ = ["FLUSH_TIMEOUT_S", "Spool", "keyed", "max_bytes_from"]

log = logging.getLogger("sitecue")

FLUSH_TIMEOUT_S = 5.0
"""A group waits this long for the store's commit before it is spooled instead."""
FORWARD_TIMEOUT_S = 60.0
"""A forwarded batch waits this long: no request waits on it, only a hung store is left."""
SEGMENT_BYTES = 16 * 1024 * 1024
"""A segment is closed for appends past this size: what a forwarder that died replays."""
DEFAULT_MAX_MB = 1024
RETRY_S = (0.25, 5.0)  # the forwarder's first wait after a failed try, and its longest
SCAN_S = 30.0  # how often a worker looks for the spools of workers that died

Health = Literal["ok", "degraded", "unavailable"]

_LOCK = re.compile(r"(?P<worker>[0-9]+-[0-9a-f]{12})\.lock")
_SEGMENT = re.compile(r"(?P<worker>[0-9]+-[0-9a-f]{12})\.(?P<n>[0-9]{6,})\.spool")
_NEW_LOCK = re.compile(r"[0-9]+-[0-9a-f]{12}\.lock\.new")


def max_bytes_from(env: Mapping[str, str]) -> int:
    """The spool's limit per worker, from ``SITECUE_SPOOL_MAX_MB`` (fails fast naming it)."""
    mb = setting(
        None, env, "SITECUE_SPOOL_MAX_MB", positive(int), DEFAULT_MAX_MB, "a whole number above 0"
    )
    return int(mb) * 1024 * 1024


def _spool_key() -> str:
    return "~" + secrets.token_urlsafe(12)


def keyed(group: Group) -> Group:
    """The group with a random idempotency key on each record that has none, so that a
    replay of it (see the module docstring) stores nothing twice."""
    replace = msgspec.structs.replace
    if (
        all(e.key is not None for e in group.events)
        and all(d.key is not None for d in group.decisions)
        and all(m.key is not None for m in group.messages)
    ):
        return group
    return Group(
        [e if e.key is not None else replace(e, key=_spool_key()) for e in group.events],
        [d if d.key is not None else replace(d, key=_spool_key()) for d in group.decisions],
        [m if m.key is not None else replace(m, key=_spool_key()) for m in group.messages],
    )


def _merge(groups: list[Group]) -> Group:
    if len(groups) == 1:
        return groups[0]
    return Group(
        [e for g in groups for e in g.events],
        [d for g in groups for d in g.decisions],
        [m for g in groups for m in g.messages],
    )


@dataclass
class _Own:
    """One of this worker's segments: appended to (the last one), or waiting to be
    forwarded; ``forwarded`` is the offset up to which the store has it."""

    segment: Segment
    forwarded: int
    records: int = 0  # spooled and not yet forwarded

    @property
    def pending(self) -> bool:
        return self.forwarded < self.segment.size


@dataclass
class _Adopted:
    """The spool of a worker that died, taken over with its lock."""

    worker: str
    lock: int  # the fd holding its flock
    segments: deque[Path]
    records: int  # not yet forwarded (as counted when adopted)
    fd: int | None = None  # the segment being forwarded
    offset: int = 0
    size: int = 0


def _flock(path: Path, create: bool) -> int | None:
    """An fd holding ``path``'s exclusive lock, or None when another process holds it or
    the file is gone (or was replaced) by the time it was taken."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The holder may have finished and removed it while we waited: a lock on a file
        # that is no longer the one under that name proves nothing.
        if os.stat(path, follow_symlinks=False).st_ino != os.fstat(fd).st_ino:
            raise OSError("replaced")
    except OSError:
        os.close(fd)
        return None
    return fd


def _count_records(path: Path) -> int:
    """The records a segment holds, from its entries' headers (checked when forwarded);
    0 for what cannot be read as one (forwarding will say why)."""
    total = 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        size, offset = os.fstat(fd).st_size, len(MAGIC)
        while offset + 12 <= size:
            head = os.pread(fd, 12, offset)
            length, records = int.from_bytes(head[:4]), int.from_bytes(head[4:8])
            if offset + 12 + length > size:
                break
            total += records
            offset += 12 + length
    except OSError:
        pass
    finally:
        os.close(fd)
    return total


@dataclass
class Spool:
    """This worker's spool in ``directory`` (made when first needed) and its forwarder."""

    directory: Path
    max_bytes: int = DEFAULT_MAX_MB * 1024 * 1024
    segment_bytes: int = SEGMENT_BYTES
    flush_timeout: float = FLUSH_TIMEOUT_S
    retry: tuple[float, float] = RETRY_S
    scan_every: float = SCAN_S
    active: bool = False  # groups go to the spool, not the store
    refusing: str | None = None  # why the last append failed, until one succeeds
    worker: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(6)}")
    _lock_fd: int | None = None
    _own: deque[_Own] = field(default_factory=deque)
    _next: int = 1  # the number of this worker's next segment
    _adopted: list[_Adopted] = field(default_factory=list)
    _mutex: asyncio.Lock = field(default_factory=asyncio.Lock)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _flush: Flush | None = None
    _max_records: int = 2000
    _cancels_at_once: bool = False  # the writer's flush, cancelled, lets go at once
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    _zombies: set[asyncio.Task[None]] = field(default_factory=set)
    _told: set[str] = field(default_factory=set)  # names already logged as not the spool's

    # --- what the writer and the health check call ---------------------------------------

    @property
    def depth(self) -> int:
        """Records spooled here (this worker's, and those of dead workers it took over)
        that the store does not have yet."""
        return sum(o.records for o in self._own) + sum(a.records for a in self._adopted)

    @property
    def size(self) -> int:
        """Bytes of this worker's segments on disk."""
        return sum(o.segment.size for o in self._own)

    def attach(self, writer: GroupWriter) -> None:
        """Spool ``writer``'s groups when its store fails, and start the forwarder (which
        first takes over the spools of workers that died)."""
        writer.spool = self
        self._flush = writer.flush
        self._max_records = writer.max_records
        self._cancels_at_once = writer.cancels_at_once
        self._task = asyncio.create_task(self._run(), name="sitecue-spool")

    async def commit(
        self,
        flush: Flush,
        events: list[EventRecord],
        decisions: list[DecisionRecord],
        messages: list[Message],
    ) -> None:
        """Commit one group to the store, or, while it fails, durably to the spool; return
        once either holds it. Raises StoreUnavailable when neither can."""
        group = Group(events, decisions, messages)
        async with self._mutex:
            if not self.active:
                try:
                    await self._bounded(flush, group)
                    return
                except StoreUnavailable as err:
                    self.active = True
                    self._wake.set()
                    log.warning("store unavailable, spooling to %s: %s", self.directory, err)
            await self._append(keyed(group))

    async def health(self, store_healthy: Callable[[], Awaitable[bool]]) -> Health:
        """``degraded`` while records are spooled, or the store fails and the spool can
        take them (the node still decides); ``unavailable`` when neither can; ``ok``."""
        if self.refusing is None and (self.active or self.depth):
            return "degraded"  # without asking a store that may not answer
        if await store_healthy():
            if self.depth:
                return "degraded"
            # The store answers again: the spool may take groups again. Writing is handed back
            # to the store only by the forwarder (_settle), which removes what it forwarded.
            self.refusing = None
            return "ok"
        return "unavailable" if self.refusing is not None else "degraded"

    async def stop(self) -> None:
        """Stop forwarding (the batch under way is finished, for at most the flush
        timeout); the spool keeps taking groups until :meth:`close`."""
        self._stopping = True
        self._wake.set()
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._task, self.flush_timeout + 1)

    def close(self) -> None:
        """Close the files and release the locks; what is left is forwarded by the next
        process to start (or one still running, within SCAN_S)."""
        for own in self._own:
            own.segment.close()
        self._own.clear()
        for adopted in self._adopted:
            if adopted.fd is not None:
                os.close(adopted.fd)
            os.close(adopted.lock)
        self._adopted.clear()
        if self._lock_fd is not None:
            if not any(self._segments_of(self.worker)):
                with contextlib.suppress(OSError):
                    (self.directory / f"{self.worker}.lock").unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- appending ------------------------------------------------------------------------

    async def _bounded(self, flush: Flush, group: Group, timeout: float | None = None) -> None:
        """The store's commit of ``group``, waited for at most ``timeout`` (else
        ``flush_timeout``). One that does not answer is cancelled (a replay of its records is
        skipped by their keys, should it commit after all), and counts as the store failing."""
        timeout = self.flush_timeout if timeout is None else timeout
        if self._cancels_at_once:
            # Cancelled, this flush lets go at once: it runs in this task, bounded by a timer,
            # without a task and a wait of its own (20-30 µs a commit against 8-12).
            bound = asyncio.timeout(timeout)
            try:
                async with bound:
                    return await flush(group.events, group.decisions, group.messages)
            except TimeoutError:
                if not bound.expired():
                    raise  # the flush's own
        else:
            # It may not let go (PostgreSQL rolling back over a network that stopped
            # answering): it runs as a task of its own, left to finish while we go on.
            task = asyncio.ensure_future(flush(group.events, group.decisions, group.messages))
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if task in done:
                return task.result()
            task.cancel()
            self._zombies.add(task)
            task.add_done_callback(self._bury)
        raise StoreUnavailable(f"the store did not commit within {timeout:g} s")

    def _bury(self, task: asyncio.Task[None]) -> None:
        self._zombies.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: its failure was already answered by spooling

    async def _append(self, group: Group) -> None:
        entry = encode_entry(group)
        if self.size + len(entry) > self.max_bytes:
            self.refusing = f"the spool is full ({self.max_bytes // 2**20} MiB)"
            raise StoreUnavailable(f"store unavailable and {self.refusing}")
        try:
            own = await self._segment_for(len(entry))
            await asyncio.to_thread(own.segment.append, [entry])
        except OSError as err:
            self.refusing = f"cannot append to the spool: {err}"
            log.error("store unavailable and %s", self.refusing)
            raise StoreUnavailable(f"store unavailable and {self.refusing}") from err
        own.records += group.records
        self.refusing = None
        self._wake.set()

    async def _segment_for(self, size: int) -> _Own:
        """The segment to append ``size`` bytes to: the last one, or a new one when it is
        full or broken (its lock, and the directory, made first when needed)."""
        last = self._own[-1] if self._own else None
        room = last is not None and (
            last.segment.size + size <= self.segment_bytes or last.segment.size <= len(MAGIC)
        )
        if last is not None and room and not last.segment.broken:
            return last
        own = _Own(await asyncio.to_thread(self._new_segment), forwarded=len(MAGIC))
        self._own.append(own)  # here, not in the thread: the forwarder walks this deque
        return own

    def _new_segment(self) -> Segment:
        if self._lock_fd is None:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            self._lock_fd = self._make_lock()
        path = self.directory / f"{self.worker}.{self._next:06d}.spool"
        self._next += 1
        return Segment.create(path)

    def _make_lock(self) -> int:
        """This worker's lock, taken before its name appears: a scan never sees it free."""
        new = self.directory / f"{self.worker}.lock.new"
        fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(new, self.directory / f"{self.worker}.lock")
        sync_directory(self.directory)
        return fd

    # --- forwarding -----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.retry[0]
        next_scan = 0.0
        failing = False
        while not self._stopping:
            self._wake.clear()  # an append from here on wakes the idle wait below
            if time.monotonic() >= next_scan:
                next_scan = time.monotonic() + self.scan_every
                try:
                    self._adopted.extend(await asyncio.to_thread(self._adopt))
                except OSError:  # the directory unreadable: this worker's own spool goes on
                    log.exception("spool: cannot look for stopped workers' spools")
            try:
                moved = await self._forward_some()
            except StoreUnavailable as err:
                if not failing:
                    log.warning("spool: the store is still unavailable, will retry: %s", err)
                failing = True
                await self._pause(delay)
                delay = min(delay * 2, self.retry[1])
                continue
            except Exception:  # not the store's fault: kept, and tried again, loudly
                log.exception("spool: forwarding failed; the records stay spooled")
                await self._pause(self.retry[1])
                continue
            if failing:
                log.warning("spool: the store is back, forwarding")
                failing = False
            delay = self.retry[0]
            if moved:
                continue
            if self.active and await self._settle():
                log.warning("spool: every spooled record is in the store; writing to it again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_scan - time.monotonic()))

    async def _pause(self, seconds: float) -> None:
        """Wait before trying the store again; appends do not cut it short (they come at
        the rate of requests), stopping does."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _settle(self) -> bool:
        """Hand writing back to the store once this worker's spool is empty: between two
        groups (under the writer's mutex), so that no group overtakes a spooled one."""
        async with self._mutex:
            if any(o.pending for o in self._own) or not self.active:
                return False
            own, self._own = list(self._own), deque()
            await asyncio.to_thread(self._remove, [o.segment for o in own])
            self.active = False  # (a spool that refused an append still counts as refusing)
            return True

    def _remove(self, segments: list[Segment]) -> None:
        for segment in segments:
            segment.close()
            segment.path.unlink(missing_ok=True)
        sync_directory(self.directory)

    async def _forward_some(self) -> bool:
        """Forward one batch: from a dead worker's spool, else from this worker's. False
        when there was nothing to forward."""
        if self._adopted:
            return await self._forward_adopted(self._adopted[0])
        for own in self._own:
            if own.pending:
                return await self._forward_own(own)
        return False

    async def _forward_own(self, own: _Own) -> bool:
        segment = own.segment
        read = await asyncio.to_thread(
            read_entries, segment.fd, segment.path, own.forwarded, segment.size, self._max_records
        )
        if not read.entries:  # nothing whole up to the committed size: never expected
            raise SpoolDamaged(segment.path, own.forwarded, "no whole entry")
        batch = _merge([e.group for e in read.entries])
        await self._forward(batch)
        own.forwarded = read.end
        own.records -= batch.records
        if own is not self._own[-1] and own.forwarded >= segment.size:
            self._own.remove(own)
            await asyncio.to_thread(self._remove, [segment])
        return True

    async def _forward_adopted(self, adopted: _Adopted) -> bool:
        if adopted.fd is None:
            if not adopted.segments:
                await asyncio.to_thread(self._release, adopted)
                self._adopted.remove(adopted)
                return True
            path = adopted.segments[0]
            try:
                adopted.fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                adopted.segments.popleft()
                return True
            except OSError as err:  # a symlink, say: not something this spool wrote
                log.error("spool: cannot open %s (%s); left alone", path, err)
                adopted.segments.popleft()
                return True
            adopted.offset, adopted.size = 0, os.fstat(adopted.fd).st_size
        path = adopted.segments[0]
        try:
            read = await asyncio.to_thread(
                read_entries, adopted.fd, path, adopted.offset, adopted.size, self._max_records
            )
        except (SpoolDamaged, OSError) as err:
            log.error("spool: %s; forwarded what came before, kept the file as %s.bad", err, path)
            await asyncio.to_thread(self._done_with, adopted, bad=True)
            return True
        if read.entries:
            batch = _merge([e.group for e in read.entries])
            await self._forward(batch)
            adopted.offset = read.end
            adopted.records = max(0, adopted.records - batch.records)
        if read.torn:
            log.warning(
                "spool: %s ended in a torn entry of %d bytes (a write cut off, never"
                " acknowledged): dropped",
                path,
                read.torn,
            )
        if read.torn or adopted.offset >= adopted.size:
            await asyncio.to_thread(self._done_with, adopted, bad=False)
        return True

    async def _forward(self, batch: Group) -> None:
        # A batch of up to max_records on a store just back (and busy) may take a while: a
        # request waits on none of it, so only a store that hangs is given up on.
        assert self._flush is not None
        await self._bounded(self._flush, batch, FORWARD_TIMEOUT_S)

    def _done_with(self, adopted: _Adopted, bad: bool) -> None:
        path = adopted.segments.popleft()
        if adopted.fd is not None:
            os.close(adopted.fd)
            adopted.fd = None
        if bad:
            os.rename(path, path.with_name(path.name + ".bad"))
        else:
            path.unlink(missing_ok=True)
        sync_directory(self.directory)

    def _release(self, adopted: _Adopted) -> None:
        """A dead worker's spool is forwarded: its lock file goes (while still held)."""
        (self.directory / f"{adopted.worker}.lock").unlink(missing_ok=True)
        sync_directory(self.directory)
        os.close(adopted.lock)
        log.warning("spool: forwarded the spool of worker %s, which had stopped", adopted.worker)

    def _segments_of(self, worker: str) -> list[Path]:
        found = []
        for path in self.directory.glob(f"{worker}.*.spool"):
            match = _SEGMENT.fullmatch(path.name)
            if match is not None and match["worker"] == worker:
                found.append((int(match["n"]), path))
        return [path for _, path in sorted(found)]

    def _adopt(self) -> list[_Adopted]:
        """Take over the spool of every worker whose lock is free: it has stopped."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        workers = set()
        for name in names:
            match = _LOCK.fullmatch(name) or _SEGMENT.fullmatch(name)
            if match is not None:
                workers.add(match["worker"])
            elif _NEW_LOCK.fullmatch(name):
                fd = _flock(self.directory / name, create=False)
                if fd is not None:  # a worker that died while making its lock
                    (self.directory / name).unlink(missing_ok=True)
                    os.close(fd)
            elif name not in self._told and not name.endswith(".bad"):
                self._told.add(name)
                log.warning("spool: %s is not a spool file; left alone", self.directory / name)
        taken = {a.worker for a in self._adopted} | {self.worker}
        adopted = []
        for worker in sorted(workers - taken):
            fd = _flock(self.directory / f"{worker}.lock", create=True)
            if fd is None:
                continue  # alive, or being forwarded by another process
            segments = self._segments_of(worker)
            records = sum(_count_records(p) for p in segments)
            adopted.append(_Adopted(worker, fd, deque(segments), records))
            if segments:
                log.warning(
                    "spool: taking over %d spooled record(s) of worker %s, which stopped",
                    records,
                    worker,
                )
        return adopted
