"""The spool: while the store fails, a worker's groups are answered from a local, fsynced
spool and forwarded to the store, in order and exactly once, when it returns; a hung store
holds up one group, not every request; a worker that died leaves its spool to the next
process; damaged and foreign files are left for the operator; a full spool refuses."""

from __future__ import annotations

import asyncio
import fcntl
import http.client
import json
import logging
import os
import random
import shutil
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from admin_keys import ORIGIN
from postgres_cluster import stoppable_postgres_cluster
from servers import free_port, sitecue_process
from sitecue.errors import StoreUnavailable
from sitecue.store import DecisionQuery, DecisionRecord, EventRecord, Message, open_store
from sitecue.store.spool import Spool
from sitecue.store.spoolfile import MAGIC, Group, Segment, encode_entry, read_entries
from sitecue.store.writer import GroupWriter
from sites import CONFIG_DIR

AT = 1_790_000_000_000


def event(n: int, key: str | None = None) -> EventRecord:
    return EventRecord("news", f"visitor-{n % 7}", "trigger", AT + n, name="x", value=n, key=key)


class FakeStore:
    """A flush that fails while ``down``, never answers while ``hung``, and otherwise keeps
    each group's events in the order it got them."""

    def __init__(self) -> None:
        self.down = False
        self.hung = False
        self.calls = 0
        self.events: list[EventRecord] = []

    async def flush(self, events: list[EventRecord], decisions: object, messages: object) -> None:
        self.calls += 1
        if self.hung:
            await asyncio.Event().wait()
        if self.down:
            raise StoreUnavailable("the database system is shutting down")
        self.events.extend(events)


async def until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_groups_are_spooled_while_the_store_fails_and_forwarded_in_order(tmp_path: Path) -> None:
    store = FakeStore()

    async def main() -> None:
        writer = GroupWriter(store.flush)  # type: ignore[arg-type]
        writer.start()
        spool = Spool(tmp_path / "spool", retry=(0.01, 0.05))
        spool.attach(writer)
        await writer.write([event(0)], [])
        store.down = True
        for n in range(1, 40):  # each acknowledged: durable in the spool
            await writer.write([event(n)], [])
        await asyncio.gather(*(writer.write([event(n)], []) for n in range(40, 80)))
        assert spool.active and spool.depth == 79 and [e.value for e in store.events] == [0]
        store.down = False
        # Writes go on while the spool drains: they queue behind it, never before it.
        for n in range(80, 120):
            await writer.write([event(n)], [])
        await until(lambda: not spool.active)
        await writer.write([event(120)], [])
        await writer.stop()

    asyncio.run(main())
    assert [e.value for e in store.events] == list(range(121))  # in order, each once
    assert store.events[0].key is None and all(e.key for e in store.events[1:80])  # spooled
    assert list((tmp_path / "spool").iterdir()) == []  # forwarded, then removed


def test_a_hung_store_holds_up_one_group_and_the_rest_go_straight_to_the_spool(
    tmp_path: Path,
) -> None:
    store = FakeStore()

    async def main() -> None:
        writer = GroupWriter(store.flush)  # type: ignore[arg-type]
        writer.start()
        spool = Spool(tmp_path / "spool", flush_timeout=0.2, retry=(3600, 3600))
        spool.attach(writer)
        store.hung = True
        for n in range(30):
            await writer.write([event(n)], [])
        # One try by the writer, one by the forwarder (then it waits an hour): no request
        # after the first waited for the store.
        assert store.calls <= 2 and spool.depth == 30 and spool.active
        await writer.stop()

    asyncio.run(main())


def test_sqlite_waiting_for_its_lock_is_bounded_in_the_writers_own_task(tmp_path: Path) -> None:
    """SQLite's flush waits only for the writers' lock, so it runs bounded in the writer's
    own task, with no task of its own: a wait past the timeout is cancelled at once, the
    group spooled, and neither lock left held."""
    path = tmp_path / "sitecue.db"

    async def main() -> None:
        store = await open_store(f"sqlite:///{path}")
        assert store.writer.cancels_at_once
        spool = Spool(tmp_path / "spool", flush_timeout=0.3, retry=(3600, 3600))
        spool.attach(store.writer)
        with open(f"{path}.writer-lock", "a+b") as holder:  # another process writing
            fcntl.flock(holder, fcntl.LOCK_EX)
            started = time.monotonic()
            await store.write([event(1)], [])
            waited = time.monotonic() - started
            fcntl.flock(holder, fcntl.LOCK_UN)
        assert 0.3 <= waited < 5 and spool.active and spool.depth == 1
        assert not spool._zombies and not store._turn.locked()  # type: ignore[attr-defined]
        with open(f"{path}.writer-lock", "a+b") as other:  # the store let its lock go
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        await store.close()  # the spool stopped with its writer, its group kept

    asyncio.run(main())


def test_a_full_spool_refuses_and_says_so(tmp_path: Path) -> None:
    store = FakeStore()
    store.down = True

    async def main() -> None:
        writer = GroupWriter(store.flush)  # type: ignore[arg-type]
        writer.start()
        spool = Spool(tmp_path / "spool", max_bytes=2000, retry=(3600, 3600))
        spool.attach(writer)

        async def down() -> bool:
            return False

        assert await spool.health(down) == "degraded"  # it can still take records
        refused = 0
        for n in range(40):
            try:
                await writer.write([event(n)], [])
            except StoreUnavailable as err:
                assert "the spool is full" in str(err)
                refused += 1
        assert 0 < refused < 40 and spool.depth == 40 - refused
        assert await spool.health(down) == "unavailable"
        await writer.stop()

    asyncio.run(main())


def test_a_replay_after_a_crash_between_forward_and_removal_stores_nothing_twice(
    store_url: str, tmp_path: Path
) -> None:
    """A forwarder commits its batch and dies before removing the segment: the next
    process forwards the segment again, and the records' keys (given to keyless ones
    when spooled) keep every record, decision and outbox message single."""
    directory = tmp_path / "spool"
    decisions = [
        DecisionRecord(f"d{n}", "news", "visitor-1", AT + n, f"/p{n}", []) for n in range(3)
    ]
    message = Message("m-1", "news", "hook", "rule.converted", AT, {"n": 1})  # no key

    async def main() -> None:
        store = await open_store(store_url)
        writer = store.writer
        real = writer.flush

        async def stopped(*_: object) -> None:
            raise StoreUnavailable("stopped")

        writer.flush = stopped  # type: ignore[assignment]
        first = Spool(directory, retry=(3600, 3600))
        first.attach(writer)
        await writer.write([event(1, key="call-1.0"), event(2)], decisions[:2], [message])
        await writer.write([event(3)], decisions[2:])
        assert first.depth == 7
        # The forwarder commits what the segment holds ... and the process dies.
        for own in first._own:
            read = read_entries(own.segment.fd, own.segment.path, 0, own.segment.size)
            for entry in read.entries:
                await real(entry.group.events, entry.group.decisions, entry.group.messages)
        assert first._task is not None
        first._task.cancel()
        for own in first._own:
            os.close(own.segment.fd)
        assert first._lock_fd is not None
        os.close(first._lock_fd)  # its lock goes with the process
        writer.spool = None
        writer.flush = real  # type: ignore[assignment]
        # The next process takes the dead worker's spool over and forwards it again.
        second = Spool(directory, retry=(0.01, 0.05))
        second.attach(writer)
        await until(lambda: second.depth == 0 and not list(directory.iterdir()))
        stored = await store.decisions(DecisionQuery(site="news"))
        events = await store.events("news", [f"visitor-{n}" for n in range(7)])
        outbox = await store.outbox_depth()
        await store.close()
        assert sorted(d.id for d in stored) == ["d0", "d1", "d2"]
        assert sorted(e.value or 0 for e in events) == [1, 2, 3]
        assert outbox == {("news", "hook"): 1}

    asyncio.run(main())


def test_a_dead_workers_spool_is_forwarded_and_damaged_or_foreign_files_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "spool"
    store = FakeStore()

    def dead_workers() -> None:
        # A worker that died mid-append: a torn last entry.
        torn = Segment.create(directory / "11-00000000000a.000001.spool")
        first, second = (encode_entry(Group([event(n)], [], [])) for n in (1, 2))
        torn.append([first, second])
        torn.close()
        os.truncate(torn.path, torn.size - 3)
        # Its next segment, in order after it.
        later = Segment.create(directory / "11-00000000000a.000002.spool")
        later.append([encode_entry(Group([event(3)], [], []))])
        later.close()
        # Another whose second entry was damaged on disk.
        damaged = Segment.create(directory / "22-00000000000b.000001.spool")
        entries = [encode_entry(Group([event(n)], [], [])) for n in (4, 5, 6)]
        damaged.append(entries)
        damaged.close()
        with open(damaged.path, "r+b") as f:
            f.seek(len(MAGIC) + len(entries[0]) + 14)
            f.write(b"\x00\x01")
        (directory / "notes.txt").write_text("an operator's file")
        # Names of the spool's, but no segments: a directory, and a link elsewhere.
        (directory / "33-00000000000c.000001.spool").mkdir()
        (directory / "44-00000000000d.000001.spool").symlink_to(directory / "notes.txt")

    async def main() -> None:
        # A live worker's spool (its lock held) is not taken over.
        stopped = FakeStore()
        stopped.down = True
        writer_a = GroupWriter(stopped.flush)  # type: ignore[arg-type]
        writer_a.start()
        live = Spool(directory, retry=(3600, 3600))
        live.attach(writer_a)
        await writer_a.write([event(100)], [])
        dead_workers()
        writer_b = GroupWriter(store.flush)  # type: ignore[arg-type]
        writer_b.start()
        spool = Spool(directory, retry=(0.01, 0.05))
        spool.attach(writer_b)
        await until(lambda: len(store.events) >= 3 and spool.depth == 0)
        assert live.depth == 1
        await writer_b.stop()
        await writer_a.stop()

    with caplog.at_level(logging.WARNING, "sitecue"):
        asyncio.run(main())
    assert [e.value for e in store.events] == [1, 3, 4]  # 2 was torn, 5 and 6 damaged
    left = sorted(p.name for p in directory.iterdir())
    assert "22-00000000000b.000001.spool.bad" in left and "notes.txt" in left
    assert "33-00000000000c.000001.spool.bad" in left  # forwarded nothing, kept aside
    assert "44-00000000000d.000001.spool" in left  # never followed
    assert (directory / "notes.txt").read_text() == "an operator's file"
    assert not any(name.startswith("11-") for name in left)
    assert any("notes.txt is not a spool file" in r.message for r in caplog.records)
    assert any("torn entry" in r.message for r in caplog.records)
    assert os.stat(directory).st_mode & 0o777 == 0o700


def test_a_worker_that_stopped_with_records_spooled_leaves_them_to_the_next_start(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    directory = tmp_path / "spool"

    async def run(work: Callable[[GroupWriter, Spool], Awaitable[None]]) -> None:
        writer = GroupWriter(store.flush)  # type: ignore[arg-type]
        writer.start()
        spool = Spool(directory, retry=(0.01, 0.05))
        spool.attach(writer)
        await work(writer, spool)
        await writer.stop()

    async def spooling(writer: GroupWriter, spool: Spool) -> None:
        store.down = True
        for n in range(5):
            await writer.write([event(n)], [])

    async def draining(writer: GroupWriter, spool: Spool) -> None:
        await until(lambda: len(store.events) == 5 and not list(directory.iterdir()))

    asyncio.run(run(spooling))
    assert len(list(directory.glob("*.spool"))) == 1  # kept, and its lock released
    store.down = False
    asyncio.run(run(draining))
    assert [e.value for e in store.events] == [0, 1, 2, 3, 4]
    assert list(directory.iterdir()) == []
    shutil.rmtree(directory)


class Browsers:
    """Threads that act as browsers against a real server until told to stop: each sends
    decide calls (a paywall view each, with a seeded call id and a unique value) and
    reports an impression of every decision it is given, starting a new visitor every
    few calls. What the server acknowledged (2xx) is kept; anything else is a failure."""

    def __init__(self, port: int, threads: int) -> None:
        self.port = port
        self.calls: list[tuple[str, str, float]] = []  # (url, visitor, value) acknowledged
        self.impressions: list[str] = []  # decision ids whose impression was acknowledged
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._browse, args=(n,)) for n in range(threads)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _browse(self, n: int) -> None:
        rng = random.Random(n)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        cookies: dict[str, str] = {}
        i = 0
        while not self._stop.is_set():
            if i % 6 == 0:
                cookies = {}  # a new browser
            i += 1
            call = f"t{n}-{i}-{rng.getrandbits(64):016x}"
            value = float(n * 1_000_000 + i)
            url = f"{ORIGIN}/news/articles/1.html?c={call}"
            body = {
                "site": "news",
                "page": {"url": url},
                "events": [{"name": "paywall_view", "value": value}],
                "call": call,
            }
            status, answer = self._post(conn, "/v1/decide", body, cookies)
            if status != 200:
                self.failures.append(f"decide {status}: {answer[:200]!r}")
                continue
            decided = json.loads(answer)
            with self._lock:
                self.calls.append((url, decided["visitor"], value))
            for d in decided["decisions"]:
                event = {"type": "impression", "decision": d["id"], "rule": d["rule"]}
                event |= {"variant": d["variant"], "id": f"i{n}-{i}-{rng.getrandbits(32):08x}"}
                events = {"site": "news", "events": [event]}
                status, answer = self._post(conn, "/v1/events", events, cookies)
                if status != 204:
                    self.failures.append(f"events {status}: {answer[:200]!r}")
                    continue
                with self._lock:
                    self.impressions.append(d["id"])
        conn.close()

    @staticmethod
    def _post(
        conn: http.client.HTTPConnection, path: str, body: object, cookies: dict[str, str]
    ) -> tuple[int, bytes]:
        headers = {"content-type": "application/json", "origin": ORIGIN}
        if cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        try:
            conn.request("POST", path, json.dumps(body), headers)
            response = conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            return 0, repr(err).encode()
        for header in response.headers.get_all("set-cookie") or []:
            name, _, rest = header.partition("=")
            cookies[name] = rest.split(";", 1)[0]
        return response.status, answer


def test_decide_and_events_survive_a_30_second_postgresql_outage_under_load(
    tmp_path: Path,
) -> None:
    """A real server (two workers) on a real PostgreSQL, browsers calling it throughout:
    PostgreSQL stops for 30 s and starts again. No decide or event call fails, /healthz
    says degraded meanwhile, and once the spools are drained every acknowledged decision,
    trigger and impression is in the store exactly once (and nothing else is)."""
    port = free_port()
    data = tmp_path / "data"
    with stoppable_postgres_cluster() as cluster:
        env = {
            **os.environ,
            "SITECUE_SECRETS": "spool-test-secret-0000",
            "SITECUE_CONFIG_DIR": str(CONFIG_DIR),
            "SITECUE_ALLOW_ORIGINS": ORIGIN,
            "SITECUE_DATA_DIR": str(data),
            "SITECUE_DB": cluster.url,
        }
        args = ["serve", "--port", str(port), "--workers", "2"]
        health = f"http://127.0.0.1:{port}/healthz"
        with sitecue_process(args, env, tmp_path / "server.log", health):
            browsers = Browsers(port, threads=4)
            browsers.start()
            try:
                time.sleep(3)
                cluster.stop()
                stopped = time.monotonic()
                statuses = set()
                while time.monotonic() - stopped < 30:
                    with urllib.request.urlopen(health, timeout=10) as answer:
                        statuses.add((answer.status, json.loads(answer.read())["status"]))
                    time.sleep(1)
                spooled = len(browsers.calls)
                cluster.start()
                time.sleep(3)
            finally:
                browsers.stop()
            log = (tmp_path / "server.log").read_text()
            assert browsers.failures == [], log
            assert statuses == {(200, "degraded")}
            deadline = time.monotonic() + 60
            while list(data.joinpath("spool").glob("*.spool")):
                assert time.monotonic() < deadline, "the spools were not drained"
                time.sleep(0.2)
            # Each worker hands writing back just after removing its spool: poll for it.
            while True:
                with urllib.request.urlopen(health, timeout=10) as answer:
                    if json.loads(answer.read())["status"] == "ok":
                        break
                assert time.monotonic() < deadline, "still degraded with the spools drained"
                time.sleep(0.2)
        urls = scalar_rows(cluster.url, "SELECT url FROM decisions")
        triggers = scalar_rows(cluster.url, "SELECT value FROM events WHERE type = 'trigger'")
        shown = scalar_rows(cluster.url, "SELECT decision FROM events WHERE type = 'impression'")
    assert len(browsers.calls) > spooled > 0 and browsers.impressions
    assert Counter(urls) == Counter(url for url, _, _ in browsers.calls)
    assert Counter(triggers) == Counter(value for _, _, value in browsers.calls)
    assert Counter(shown) == Counter(browsers.impressions)
    log = (tmp_path / "server.log").read_text()
    # (asyncpg's pool logs a traceback of its own while it cannot reconnect: not ours)
    assert "store unavailable, spooling" in log, log
    assert "Exception in ASGI application" not in log and "forwarding failed" not in log, log


def scalar_rows(url: str, sql: str) -> list[object]:
    async def main() -> list[object]:
        db = await asyncpg.connect(url)
        try:
            return [row[0] for row in await db.fetch(sql)]
        finally:
            await db.close()

    return asyncio.run(main())
