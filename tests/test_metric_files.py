"""The workers' metric files: written through, summed over a node's workers, a dead
worker's counters kept and its gauges dropped, and nothing planted or damaged trusted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sitecue.metric_files import (
    COUNTER,
    GAUGE,
    INITIAL_BYTES,
    Tally,
    WorkerFile,
    check_directory,
    node_values,
    parse,
)

REQUESTS = (COUNTER, "sitecue_requests_total", "POST", "/v1/decide", "200")
DEPTH = (GAUGE, "sitecue_writer_queue_records")


@pytest.fixture
def node(tmp_path: Path) -> Path:
    directory = tmp_path / "metrics"
    directory.mkdir(mode=0o700)
    return directory


def test_values_are_summed_over_the_workers_as_they_change(node: Path) -> None:
    one, two = WorkerFile(node), WorkerFile(node)
    first, second = (
        Tally[tuple[str, str, int]]("sitecue_requests_total", file=one),
        Tally[tuple[str, str, int]]("sitecue_requests_total", file=two),
    )
    first[("POST", "/v1/decide", 200)] += 3
    second[("POST", "/v1/decide", 200)] += 4
    assert node_values(node, one)[REQUESTS] == 7 == node_values(node, two)[REQUESTS]
    first[("POST", "/v1/decide", 200)] += 1  # seen at once by the other worker's scrape
    assert node_values(node, two)[REQUESTS] == 8


def test_a_dead_workers_counters_stay_and_its_gauges_go(node: Path) -> None:
    live, dead = WorkerFile(node), WorkerFile(node)
    for file, requests, depth in ((live, 2, 5), (dead, 3, 7)):
        file.set(file.slot(REQUESTS), requests)
        file.set(file.slot(DEPTH), depth)
    assert node_values(node, live)[DEPTH] == 12
    dead.close()  # as the kernel drops the lock of a killed process
    restarted = WorkerFile(node)  # its successor starts from zero
    restarted.set(restarted.slot(REQUESTS), 1)
    values = node_values(node, live)
    assert values[REQUESTS] == 6  # never down: 2 + 3 (dead) + 1 (its successor)
    assert values[DEPTH] == 5  # the live workers' only
    dead.set(dead.slot(REQUESTS), 99)  # a late write after close lands in memory only
    assert node_values(node, live)[REQUESTS] == 6


def test_a_file_grows_past_its_first_size_and_stays_readable(node: Path) -> None:
    writer, reader = WorkerFile(node), WorkerFile(node)
    tally = Tally[str]("sitecue_regex_timeouts_total", file=writer)
    for i in range(INITIAL_BYTES // 40):
        tally[f"site-{i:05}"] += i
    values = node_values(node, reader)
    assert len(values) == INITIAL_BYTES // 40
    assert values[(COUNTER, "sitecue_regex_timeouts_total", "site-00007")] == 7


def test_a_tally_attached_late_writes_what_it_counted_so_far(node: Path) -> None:
    tally = Tally[str]("sitecue_regex_timeouts_total")
    tally["news"] += 2
    file = WorkerFile(node)
    tally.attach(file)
    tally["news"] += 1
    assert node_values(node, file)[(COUNTER, "sitecue_regex_timeouts_total", "news")] == 3


def test_damaged_and_foreign_files_count_for_nothing(node: Path) -> None:
    mine = WorkerFile(node)
    mine.set(mine.slot(REQUESTS), 1)
    other = WorkerFile(node)
    other.set(other.slot(REQUESTS), 5)
    other.close()
    assert other.path is not None
    whole = other.path.read_bytes()
    other.path.write_bytes(whole[:60])  # cut short: its only entry is not whole
    (node / "junk.series").write_bytes(b"not a metrics file")
    (node / "link.series").symlink_to(other.path)  # never followed
    assert node_values(node, mine)[REQUESTS] == 1


@given(st.binary(max_size=300))
def test_parsing_any_bytes_never_raises(data: bytes) -> None:
    for key, value in parse(b"SCMETRC1" + data):
        assert key[0] in (COUNTER, GAUGE) and value == value


def test_only_a_private_directory_is_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ValueError, match="no one else may write in"):
        check_directory(shared)
    link = tmp_path / "link"
    link.symlink_to(shared)
    with pytest.raises(ValueError, match="not a link"):
        check_directory(link)
    with pytest.raises(ValueError, match="an existing directory"):
        check_directory(tmp_path / "missing")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert check_directory(private) == private
    assert os.stat(private).st_mode & 0o022 == 0
