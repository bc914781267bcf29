"""The spool's file format, and one segment file being appended to.

A segment is a header, then one entry per spooled group, appended and fsynced before the
group's requests are answered::

    segment := MAGIC entry*
    entry   := length:u32 records:u32 crc:u32 payload[length]      (big-endian)
    crc     := CRC-32 of the first eight header bytes, then of the payload
    payload := msgpack of a Group (its events, decisions and outbox messages)

A crash (or a full disk) part-way through an append leaves a torn last entry: too short
for its header or its length, or, where the file system grew the file before writing it,
of the right length with a wrong checksum. Reading stops there and reports the torn bytes;
the entries before it are whole, and the torn one was never acknowledged. A bad entry
with more bytes after it is not a torn write but damage (or a file that is no segment):
:class:`SpoolDamaged` says where, and the entries before it are still returned.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import msgspec

from .base import DecisionRecord, EventRecord
from .outbox import Message

__all__ = [
    "MAGIC",
    "Group",
    "Read",
    "Segment",
    "SpoolDamaged",
    "encode_entry",
    "read_entries",
    "sync_directory",
]

MAGIC = b"SCSPOOL1"
_HEADER = struct.Struct(">III")
MAX_ENTRY_BYTES = 256 * 1024 * 1024
"""Larger than any group the writer makes (2,000 records of at most 16 KiB bodies); a
header claiming more is damage, not an entry."""


class Group(msgspec.Struct, array_like=True, frozen=True):
    """One writer group: what one transaction would have committed."""

    events: list[EventRecord]
    decisions: list[DecisionRecord]
    messages: list[Message]

    @property
    def records(self) -> int:
        return len(self.events) + len(self.decisions) + len(self.messages)


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Group).decode


class SpoolDamaged(Exception):
    """A segment whose bytes at ``offset`` are neither an entry nor a torn last one."""

    def __init__(self, path: Path, offset: int, why: str) -> None:
        self.path, self.offset, self.why = path, offset, why
        super().__init__(f"{path}: at byte {offset}: {why}")


def encode_entry(group: Group) -> bytes:
    """The bytes of one entry holding ``group``."""
    payload = _encode(group)
    head = _HEADER.pack(len(payload), group.records, 0)[:8]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack(">I", crc) + payload


class Entry(NamedTuple):
    group: Group
    end: int  # the offset just after it


class Read(NamedTuple):
    """What :func:`read_entries` found: whole entries, the offset after the last of them,
    and how many bytes after it were a torn last entry (0: none, or ``stop`` was reached
    before the end)."""

    entries: list[Entry]
    end: int
    torn: int


def read_entries(
    fd: int, path: Path, offset: int, size: int, records: int = 0, *, check_magic: bool = True
) -> Read:
    """Whole entries from ``offset`` (0: the segment's start, its magic checked) up to
    ``size`` bytes of the file, stopping once ``records`` records are read (0: no limit).
    Raises SpoolDamaged only when no entry was read before the damage; otherwise the
    entries before it are returned and the next read (from their end) raises."""
    if offset == 0:
        head = os.pread(fd, len(MAGIC), 0)
        if check_magic and head != MAGIC:
            if len(head) < len(MAGIC) and MAGIC.startswith(head):
                return Read([], 0, len(head))  # torn while the segment was being made
            raise SpoolDamaged(path, 0, "not a sitecue spool segment")
        offset = len(MAGIC)
    entries: list[Entry] = []
    count = 0
    while offset < size and (not records or count < records):
        head = os.pread(fd, _HEADER.size, offset)
        if len(head) < _HEADER.size or offset + _HEADER.size > size:
            return Read(entries, offset, size - offset)
        length, n, crc = _HEADER.unpack(head)
        if length > MAX_ENTRY_BYTES:
            if entries:
                break
            raise SpoolDamaged(path, offset, f"an entry of {length} bytes")
        end = offset + _HEADER.size + length
        if end > size:
            return Read(entries, offset, size - offset)
        payload = os.pread(fd, length, offset + _HEADER.size)
        if len(payload) < length:
            return Read(entries, offset, size - offset)
        if zlib.crc32(payload, zlib.crc32(head[:8])) != crc:
            if end == size:  # written to its full length, but not all of it reached the disk
                return Read(entries, offset, size - offset)
            if entries:
                break
            raise SpoolDamaged(path, offset, "an entry whose checksum does not match")
        try:
            group = _decode(payload)
        except msgspec.DecodeError as err:
            if entries:
                break
            raise SpoolDamaged(path, offset, f"an entry that is no group: {err}") from None
        entries.append(Entry(group, end))
        count += n
        offset = end
    return Read(entries, offset, 0)


def sync_directory(path: Path) -> None:
    """fsync a directory, so that a file created, renamed or removed in it stays so."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Segment:
    """One segment file this process appends to. ``size`` counts only what was written and
    fsynced whole: a failed append is cut off again (or, if even that fails, the segment
    is ``broken`` and takes no more appends), so a reader never meets it mid-file."""

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path = path
        self.fd = fd
        self.size = size
        self.broken = False

    @classmethod
    def create(cls, path: Path) -> Segment:
        """A new, empty segment, readable by its owner only (records name visitors), its
        name made durable in the directory."""
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        segment = cls(path, fd, 0)
        try:
            segment._write(MAGIC)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        sync_directory(path.parent)
        return segment

    def append(self, entries: Sequence[bytes]) -> None:
        """Append the entries and fsync them; on any failure nothing of them stays."""
        self._write(b"".join(entries))

    def _write(self, data: bytes) -> None:
        if self.broken:
            raise OSError(f"{self.path}: an earlier failed append could not be undone")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
            os.fdatasync(self.fd)
        except OSError:
            try:
                os.ftruncate(self.fd, self.size)
                os.fdatasync(self.fd)
            except OSError:
                self.broken = True
            raise
        self.size += len(data)

    def close(self) -> None:
        os.close(self.fd)
