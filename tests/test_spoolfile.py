"""The spool's file format: entries read back whole and in order; a torn last entry (a
write cut off by a crash or a full disk) is dropped without losing the entries before it;
damage in the middle is told apart from a torn tail; a failed append leaves nothing."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from sitecue.store import DecisionRecord, EventRecord
from sitecue.store.spoolfile import MAGIC, Group, Segment, SpoolDamaged, encode_entry, read_entries


def group(n: int, size: int = 1) -> Group:
    events = [
        EventRecord(
            "news", f"visitor-{n}", "trigger", 1_790_000_000_000 + n, name="x", key=f"k{n}.{i}"
        )
        for i in range(size)
    ]
    decisions = [DecisionRecord(f"d{n}", "news", f"visitor-{n}", 1, "https://news.example/", [])]
    return Group(events, decisions, [])


def spool_of(path: Path, groups: list[Group]) -> Segment:
    segment = Segment.create(path)
    for g in groups:
        segment.append([encode_entry(g)])
    return segment


def read_all(path: Path) -> tuple[list[Group], int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        read = read_entries(fd, path, 0, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return [e.group for e in read.entries], read.torn


def test_entries_read_back_in_order_with_their_records(tmp_path: Path) -> None:
    groups = [group(n, size=n) for n in range(1, 6)]
    segment = spool_of(tmp_path / "a.spool", groups)
    assert read_all(segment.path) == (groups, 0)
    # In pieces of at least two records, each read resuming where the last ended.
    fd, offset, seen = segment.fd, 0, []
    while offset < segment.size:
        read = read_entries(fd, segment.path, offset, segment.size, records=2)
        seen.extend(e.group for e in read.entries)
        offset = read.end
    assert seen == groups
    assert os.stat(segment.path).st_mode & 0o777 == 0o600  # records name visitors


@pytest.mark.parametrize("cut", [1, 5, 12, 30])
def test_a_torn_last_entry_is_dropped_and_the_ones_before_kept(tmp_path: Path, cut: int) -> None:
    segment = spool_of(tmp_path / "a.spool", [group(1), group(2), group(3)])
    size = segment.size
    os.truncate(segment.path, size - cut)
    groups, torn = read_all(segment.path)
    assert groups == [group(1), group(2)]
    assert torn == len(encode_entry(group(3))) - cut


def test_a_last_entry_of_full_length_but_unwritten_bytes_is_torn(tmp_path: Path) -> None:
    """A file system may grow the file before its data reaches the disk: zeros at the end."""
    segment = spool_of(tmp_path / "a.spool", [group(1), group(2)])
    last = len(encode_entry(group(2)))
    with open(segment.path, "r+b") as f:
        f.seek(segment.size - last + 12)
        f.write(b"\0" * (last - 12))
    assert read_all(segment.path) == ([group(1)], last)


def test_damage_in_the_middle_is_not_taken_for_a_torn_tail(tmp_path: Path) -> None:
    segment = spool_of(tmp_path / "a.spool", [group(1), group(2), group(3)])
    second = len(MAGIC) + len(encode_entry(group(1)))
    with open(segment.path, "r+b") as f:
        f.seek(second + 20)
        byte = f.read(1)
        f.seek(second + 20)
        f.write(bytes([byte[0] ^ 0xFF]))
    fd = os.open(segment.path, os.O_RDONLY)
    try:
        read = read_entries(fd, segment.path, 0, segment.size)
        assert ([e.group for e in read.entries], read.end, read.torn) == ([group(1)], second, 0)
        with pytest.raises(SpoolDamaged, match="checksum") as caught:
            read_entries(fd, segment.path, read.end, segment.size)
        assert caught.value.offset == second
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "content", [b"not a spool at all, but long enough", b"SCSPOOL1" + b"\xff" * 40]
)
def test_a_file_that_is_no_segment_is_damaged(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.spool"
    path.write_bytes(content)
    with pytest.raises(SpoolDamaged):
        read_all(path)


def test_a_failed_append_leaves_nothing_and_the_next_one_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = spool_of(tmp_path / "a.spool", [group(1)])
    size = segment.size
    real, failures = os.fdatasync, [OSError(errno.ENOSPC, "No space left on device")]

    def full_once(fd: int) -> None:
        if failures:
            raise failures.pop()
        real(fd)

    monkeypatch.setattr(os, "fdatasync", full_once)
    with pytest.raises(OSError, match="No space"):
        segment.append([encode_entry(group(2))])
    assert (segment.size, os.stat(segment.path).st_size) == (size, size)
    segment.append([encode_entry(group(3))])
    assert read_all(segment.path) == ([group(1), group(3)], 0)
