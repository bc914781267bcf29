"""Where the time of one ``POST /v1/decide`` goes, stage by stage, in process: the real app
on the demo config with its SQLite store, and the request bench/decide.py sends (a
returning reader who meets the paywall, with a call id of its own).

The stages are timed inside whole calls, 16 at a time as under load, by wrapping the
functions the endpoint calls for them: body decode, cookie (the Cookie header
parsed and the state unsealed), decide, render (the answer encoded, the state sealed into
its Set-Cookie headers), record (the records made, and each group's commit shared among its
requests). What they leave of the whole call is the framework: ASGI dispatch, the request
and response objects, CORS, metrics and the writer's hand-over. Timed inside the calls, a
stage costs what it costs among the others (caches shared, objects of the whole request
alive); the same function in a loop of its own runs faster, and then the framework's share
came out too large (issue 20's first figures: 133 µs of 300).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgi import post
from sitecue.api import tag
from sitecue.app import build_app
from sitecue.decide import Verdict
from sitecue.ids import record_id
from sitecue.retries import trigger_key
from sitecue.settings import Settings
from sitecue.store import DecisionRecord, EventRecord, open_store

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://news.example"
ROUNDS = 15
CALLS = 208  # whole calls a round, in groups of GROUP
STAGES = ("body decode", "cookie", "decide", "render", "record")
GROUP = 16  # concurrent requests, as under load: the records of 16 go in one commit


def _body(call: str) -> bytes:
    return json.dumps({
        "site": "news",
        "page": {"url": f"{ORIGIN}/news/articles/2.html", "title": "Story", "viewport": "desktop"},
        "events": [{"name": "paywall_view"}],
        "view": "bench-view",
        "call": call,
    }).encode()  # fmt: skip


async def _page_view(store: Any, n: int, visitors: int, now: int) -> None:
    """Page view ``n`` of one of ``visitors``: its decision and trigger, with a call id."""
    visitor, call = f"visitor-{n * 7919 % visitors:08d}", f"call{n * 104729:012d}"
    shown = [
        Verdict("paywall-faq", True, variant="faq"),
        Verdict("newsletter", False, reason="condition: page.path"),
    ]
    decision = DecisionRecord(
        record_id(now), "news", visitor, now, f"{ORIGIN}/news/articles/2.html", shown, True,
        key=call,
    )  # fmt: skip
    key = trigger_key(call, "0")  # as the endpoint keys it
    trigger = EventRecord("news", visitor, "trigger", now, name="paywall_view", key=key)
    await store.write([trigger], [decision])


class _TimedStatements:
    """The writing connection of a store, timing each statement by its first words."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.spent: dict[str, float] = {}

    def _timed(self, method: str, sql: str, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return getattr(self.connection, method)(sql, *args)
        finally:
            name = " ".join(sql.split()[:3]) + ("" if method == "execute" or args[0] else " (none)")
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - start

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed("execute", sql, *args)

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = list(rows)
        return self._timed("executemany", sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)


async def writes() -> None:
    """What a commit costs SQLite: the write-ahead log per decision, 200 groups of 16 page
    views (checkpoints held off for the count), from one visitor (as bench/decide.py sends
    them) and from 5,000 (as a site's traffic spreads them over the indexes); and each
    statement's time per commit, from 5,000 visitors, 16 page views a commit and one."""
    print("SQLite's write-ahead log per decision (groups of 16, WAL bytes / decisions):")
    timed: dict[int, tuple[_TimedStatements, float, int]] = {}
    for visitors, group in ((1, GROUP), (5000, GROUP), (5000, 1)):
        with tempfile.TemporaryDirectory(prefix="sitecue-wal-") as tmp:
            store = await open_store(f"sqlite:///{tmp}/store.db")
            store._checkpoints._task.cancel()  # type: ignore[attr-defined]  # the count only
            statements = store._writes = _TimedStatements(store._writes)  # type: ignore[attr-defined]
            now = tag._now_ms()
            commits = 200 * GROUP // group
            start = time.perf_counter()
            for first in range(0, commits * group, group):
                await asyncio.gather(
                    *(_page_view(store, first + i, visitors, now) for i in range(group))
                )
            if visitors > 1:  # the statements as a site's traffic spreads them
                timed[group] = statements, time.perf_counter() - start, commits
            wal = Path(f"{tmp}/store.db-wal").stat().st_size
            await store.close()
        if group == GROUP:
            print(f"  {visitors:5d} visitor(s)  {wal / (200 * GROUP) / 1024:5.1f} KiB a decision")
    print("A commit's statements, 5,000 visitors (µs a commit; 16 page views a commit / one):")
    many, one = timed[GROUP], timed[1]
    for name in sorted(many[0].spent, key=lambda n: -many[0].spent[n]):
        print(
            f"  {name:40} {many[0].spent[name] / many[2] * 1e6:7.1f}"
            f"  {one[0].spent.get(name, 0.0) / one[2] * 1e6:7.1f}"
        )
    totals = (
        ("all statements", [sum(t.spent.values()) / n for t, _, n in (many, one)]),
        ("the write: made, handed over, committed", [spent / n for _, spent, n in (many, one)]),
    )
    for label, (per_many, per_one) in totals:
        print(f"  {label:40} {per_many * 1e6:7.1f}  {per_one * 1e6:7.1f}")


async def stages() -> None:
    await writes()
    with tempfile.TemporaryDirectory(prefix="sitecue-stages-") as tmp:
        settings = Settings.load(
            config_dir=str(ROOT / "config"),
            db=f"sqlite:///{tmp}/store.db",
            env={"SITECUE_DATA_DIR": tmp, "SITECUE_SECRETS": "bench-secret-0123456789"},
        )
        app = build_app(settings)
        async with app.router.lifespan_context(app):
            await _stages(app)


class _Stages:
    """Time by stage, from wrappers around the functions the endpoint calls. The clock is
    perf_counter (the thread's CPU clock is a system call, dearer than some stages): one
    thread that waits for nothing, so it counts CPU time, and the quickest round is kept."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def _add(self, stage: str, start: float) -> None:
        self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - start

    def timed(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._add(stage, start)

        return timed

    def timed_async(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """For the writer's flush, which runs without waiting (one process, no other writer
        holds the file)."""

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self._add(stage, start)

        return timed


async def _stages(app: Any) -> None:
    runtime = app.state.runtime
    cookies = ""
    for i in range(2):  # a reader who met the paywall twice today
        warm = _body(f"stages-warm-{i}")
        status, cookies_set, _ = await post(app, "/v1/decide", warm, cookies, ORIGIN)
        assert status == 200, status
        cookies = "; ".join(cookies_set)
    stages = _Stages()
    # The endpoint's module names, wrapped for the run (and put back after it).
    wrapped = {
        "decode": stages.timed("body decode", tag.decode),
        "_visitor_and_state": stages.timed("cookie", tag._visitor_and_state),
        "decide": stages.timed("decide", tag.decide),
        "_answer": stages.timed("render", tag._answer),
        "_set_cookies": stages.timed("render", tag._set_cookies),
        "_records": stages.timed("record", tag._records),
    }
    originals = {name: getattr(tag, name) for name in wrapped}
    writer = runtime.store.writer
    flush = writer.flush
    calls = iter(range(10**9))

    async def whole() -> None:
        call = _body(f"stages-{next(calls):08d}")
        status, _, _ = await post(app, "/v1/decide", call, cookies, ORIGIN)
        assert status == 200, status

    async def quickest(group: int, rounds: int) -> dict[str, float]:
        """The stages of the quickest of ``rounds`` rounds of whole calls, ``group`` at a
        time: the round least disturbed by the rest of the machine."""
        timed = []
        for _ in range(rounds):
            stages.spent = {}
            start = time.perf_counter()
            for _ in range(CALLS // group):
                await asyncio.gather(*(whole() for _ in range(group)))
            made = CALLS // group * group
            timed.append({
                **{stage: spent / made * 1e6 for stage, spent in stages.spent.items()},
                "whole call": (time.perf_counter() - start) / made * 1e6,
            })  # fmt: skip
        best = min(timed, key=lambda r: r["whole call"])
        best["framework and respond"] = best["whole call"] - sum(best[p] for p in STAGES)
        return best

    try:
        for name, function in wrapped.items():
            setattr(tag, name, function)
        writer.flush = stages.timed_async("record", flush)
        for _ in range(3):  # warm up
            await asyncio.gather(*(whole() for _ in range(GROUP)))
        best = await quickest(GROUP, ROUNDS)
        alone = {group: await quickest(group, ROUNDS // 2) for group in (1, 4)}
    finally:
        for name, function in originals.items():
            setattr(tag, name, function)
        writer.flush = flush
    print(
        f"POST /v1/decide in process, stage by stage (µs a request, timed inside whole"
        f" calls, {GROUP} at a time; the quickest of {ROUNDS} rounds):"
    )
    for name in (*STAGES, "framework and respond", "whole call"):
        share = best[name] / best["whole call"]
        print(f"  {name:22} {best[name]:6.1f} µs  {share:4.0%}")
    # What one commit costs whatever it holds (BEGIN and COMMIT, the log's pages, the
    # writer's hand-over): paid once per group, so by every request when they come alone.
    print("  fewer requests a commit (whole call, of it record / framework and respond):")
    for group, r in alone.items():
        print(
            f"    {group:2d} at a time       {r['whole call']:6.1f} µs"
            f" ({r['record']:.0f} / {r['framework and respond']:.0f})"
        )
    fixed = (alone[1]["whole call"] - best["whole call"]) * GROUP / (GROUP - 1)
    print(f"  a commit's own cost, whatever it holds: ~{fixed:.0f} µs")
