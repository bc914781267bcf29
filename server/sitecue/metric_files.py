"""Each worker's metric values in a memory-mapped file, summed over the node's workers when
``/metrics`` is scraped: the idea of ``prometheus-client``'s multiprocess mode, with dead
workers told apart by a lock rather than by a hook the server would have to call.

``sitecue serve`` makes a fresh directory for the node (``mkdtemp``: mode 0700, its own
name) and hands it to its workers in ``SITECUE_METRICS_DIR``. Each worker maps a file of its
own there and writes every value through as it changes (an 8-byte store into shared memory,
no system call), so a scrape answered by any worker reads every worker's values as they are
at that moment. A worker holds an exclusive ``flock`` on its file while it lives, which the
kernel drops when it dies, however it dies: the counters and histograms of a dead worker's
file still count (a Prometheus counter must never go down because a worker restarted), its
gauges do not. Without a directory (tests, the demo) the values live in this process only.

A file: ``MAGIC``, the bytes in use (u64), then entries, each a key's length (u32), the key
(JSON ``[kind, family, label values…]``), padding to 8 bytes, and the value (f64). An entry
is written before the length in use is raised past it, so a reader never sees half of one.

    mine = WorkerFile(directory)
    mine.set(mine.slot((COUNTER, "sitecue_requests_total", "GET", "/healthz", "200")), 3)
    node_values(directory, mine)  # every worker's values, summed
"""

from __future__ import annotations

import fcntl
import logging
import math
import mmap
import os
import secrets
import stat
import struct
from collections import Counter
from pathlib import Path
from typing import Any, TypeVar

import msgspec

__all__ = [
    "COUNTER",
    "GAUGE",
    "Tally",
    "WorkerFile",
    "check_directory",
    "node_values",
    "parse",
]

log = logging.getLogger("sitecue")

COUNTER = "c"  # summed over every worker that ever ran on the node (counters, histograms)
GAUGE = "g"  # summed over the live workers only
MAGIC = b"SCMETRC1"
HEADER = 16  # MAGIC, then the bytes in use
INITIAL_BYTES = 1 << 16  # about 700 series before the file first grows
SUFFIX = ".series"

Key = tuple[str, ...]  # (kind, family, label values…)
_USED = struct.Struct("<Q")
_LENGTH = struct.Struct("<I")
_VALUE = struct.Struct("<d")
_key_decoder = msgspec.json.Decoder(list[str])


def _aligned(offset: int) -> int:
    return (offset + 7) & ~7


def check_directory(path: Path) -> Path:
    """``path`` if it is a directory of this user's that nobody else may write in (other
    users could otherwise plant files that the scrape sums); ValueError saying what is not."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        raise ValueError(f"an existing directory, got {path}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ValueError(f"a directory (not a link or a file), got {path}")
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ValueError(f"a directory of this user's that no one else may write in: {path}")
    return path


class WorkerFile:
    """This process's values, written through to its file in ``directory`` (or kept in
    memory when there is none). One event loop per process writes it: no locks."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path: Path | None = None
        self._fd = -1
        self._slots: dict[Key, int] = {}
        self._used = HEADER
        self._buffer: mmap.mmap | bytearray
        self.values: memoryview[float]  # the buffer as doubles: values[slot] = value, no call
        if directory is None:
            self._buffer = bytearray(INITIAL_BYTES)
        else:
            # Made under a temporary name and locked before it gets its real one: a scrape
            # never takes a starting worker for a dead one.
            name = f"{os.getpid()}-{secrets.token_hex(4)}"
            temporary = directory / f"{name}.new"
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd = os.open(temporary, flags, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            os.ftruncate(self._fd, INITIAL_BYTES)
            self._buffer = mmap.mmap(self._fd, INITIAL_BYTES)
            self.path = directory / f"{name}{SUFFIX}"
            os.rename(temporary, self.path)
        self._buffer[: len(MAGIC)] = MAGIC
        _USED.pack_into(self._buffer, len(MAGIC), self._used)
        self.values = memoryview(self._buffer).cast("d")

    def slot(self, key: Key) -> int:
        """Where ``key``'s value is kept (an index into :attr:`values`), the entry made (at
        0) the first time."""
        index = self._slots.get(key)
        if index is None:
            index = self._slots[key] = self._append(key) // _VALUE.size
        return index

    def set(self, index: int, value: float) -> None:
        self.values[index] = value

    def _append(self, key: Key) -> int:
        raw = msgspec.json.encode(key)
        start = self._used
        at = _aligned(start + _LENGTH.size + len(raw))
        end = at + _VALUE.size
        if end > len(self._buffer):
            self._grow(end)
        _LENGTH.pack_into(self._buffer, start, len(raw))
        self._buffer[start + _LENGTH.size : start + _LENGTH.size + len(raw)] = raw
        _VALUE.pack_into(self._buffer, at, 0.0)
        self._used = end
        _USED.pack_into(self._buffer, len(MAGIC), end)  # last: the entry is whole
        return at

    def _grow(self, needed: int) -> None:
        size = len(self._buffer)
        while size < needed:
            size *= 2
        self.values.release()  # a buffer with a view on it can be neither grown nor closed
        if isinstance(self._buffer, bytearray):
            self._buffer.extend(bytes(size - len(self._buffer)))
        else:
            os.ftruncate(self._fd, size)
            old, self._buffer = self._buffer, mmap.mmap(self._fd, size)
            old.close()
        self.values = memoryview(self._buffer).cast("d")

    def read(self) -> bytes:
        return bytes(self._buffer[: self._used])

    def close(self) -> None:
        """Unmap and unlock the file (its counters keep counting, its gauges stop); later
        writes, if any, land in memory."""
        if isinstance(self._buffer, mmap.mmap):
            copy = bytearray(self._buffer)
            self.values.release()
            self._buffer.close()
            self._buffer = copy
            self.values = memoryview(self._buffer).cast("d")
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def parse(data: bytes) -> list[tuple[Key, float]]:
    """The entries of a file's bytes; whatever does not parse ends the list (a file cut
    short, or not one of ours)."""
    if data[: len(MAGIC)] != MAGIC or len(data) < HEADER:
        return []
    (used,) = _USED.unpack_from(data, len(MAGIC))
    used = min(used, len(data))
    entries: list[tuple[Key, float]] = []
    offset = HEADER
    while offset + _LENGTH.size <= used:
        (length,) = _LENGTH.unpack_from(data, offset)
        at = _aligned(offset + _LENGTH.size + length)
        if at + _VALUE.size > used:
            break
        try:
            start = offset + _LENGTH.size
            key = tuple(_key_decoder.decode(data[start : start + length]))
        except msgspec.DecodeError:
            break
        (value,) = _VALUE.unpack_from(data, at)
        if len(key) >= 2 and key[0] in (COUNTER, GAUGE) and math.isfinite(value):
            entries.append((key, value))
        offset = at + _VALUE.size
    return entries


def _read_other(path: Path) -> tuple[bytes, bool]:
    """Another worker's file and whether that worker lives (holds its lock)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            live = True
        else:
            live = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks), live
    finally:
        os.close(fd)


def node_values(directory: Path | None, own: WorkerFile) -> dict[Key, float]:
    """Every series of the node: counters summed over all its workers' files, gauges over
    the live workers' only (this one's read from memory, as it is now)."""
    totals: dict[Key, float] = {}

    def add(data: bytes, live: bool) -> None:
        for key, value in parse(data):
            if live or key[0] == COUNTER:
                totals[key] = totals.get(key, 0.0) + value

    add(own.read(), True)
    if directory is not None:
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            if path == own.path:
                continue
            try:
                data, live = _read_other(path)
            except OSError as err:  # removed meanwhile, or not a file we may read
                log.warning("metrics: skipped %s: %s", path.name, err.strerror)
                continue
            add(data, live)
    return totals


K = TypeVar("K")


class Tally(Counter[K]):
    """A ``Counter`` of one metric family whose every value is also written to a worker's
    file (once attached), so the node's other workers see it. Keys are a label value or a
    tuple of them, after the ``prefix`` labels every key of this tally shares."""

    def __init__(
        self, family: str, prefix: tuple[str, ...] = (), file: WorkerFile | None = None
    ) -> None:
        self.family = family
        self.prefix = prefix
        self._file = file
        self._slots: dict[Any, int] = {}
        super().__init__()

    def attach(self, file: WorkerFile) -> None:
        """Write through to ``file`` from now on, starting with what was counted so far."""
        self._file, self._slots = file, {}
        for key, value in self.items():
            self._write(key, value)

    def __setitem__(self, key: K, value: int) -> None:
        # The request path: a dict store, a dict lookup and a store into the mapped file.
        dict.__setitem__(self, key, value)
        if self._file is not None:
            index = self._slots.get(key)
            if index is None:
                index = self._slot(key)
            self._file.values[index] = value

    def _write(self, key: K, value: int) -> None:
        assert self._file is not None
        index = self._slots.get(key)
        self._file.values[self._slot(key) if index is None else index] = value

    def _slot(self, key: K) -> int:
        assert self._file is not None
        labels: tuple[Any, ...] = key if isinstance(key, tuple) else (key,)
        series = (COUNTER, self.family, *self.prefix, *(str(v) for v in labels))
        index = self._slots[key] = self._file.slot(series)
        return index
