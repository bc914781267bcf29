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
from sitecue.settings import Settings
from sitecue.store import DecisionRecord, EventRecord, open_store

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://news.example"
ROUNDS = 15
CALLS = 208  # whole calls a round, in groups of GROUP
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
    trigger = EventRecord("news", visitor, "trigger", now, name="paywall_view", key=f"{call}:0")
    await store.write([trigger], [decision])


async def write_volume() -> None:
    """What SQLite's write-ahead log takes per decision, as the writer commits them: 200
    groups of 16 page views, checkpoints held off for the count; from one visitor (as
    bench/decide.py sends them) and from 5,000 (as a site's traffic spreads them over the
    indexes)."""
    print("SQLite's write-ahead log per decision (groups of 16, WAL bytes / decisions):")
    for visitors in (1, 5000):
        with tempfile.TemporaryDirectory(prefix="sitecue-wal-") as tmp:
            store = await open_store(f"sqlite:///{tmp}/store.db")
            store._checkpoints._task.cancel()  # type: ignore[attr-defined]  # the count only
            now = tag._now_ms()
            for first in range(0, 200 * GROUP, GROUP):
                await asyncio.gather(
                    *(_page_view(store, first + i, visitors, now) for i in range(GROUP))
                )
            wal = Path(f"{tmp}/store.db-wal").stat().st_size
            await store.close()
        print(f"  {visitors:5d} visitor(s)  {wal / (200 * GROUP) / 1024:5.1f} KiB a decision")


async def stages() -> None:
    await write_volume()
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

    def timed(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - start

        return timed

    def timed_async(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """For the writer's flush, which runs without waiting (one process, no other writer
        holds the file)."""

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - start

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

    rounds: list[dict[str, float]] = []
    try:
        for name, function in wrapped.items():
            setattr(tag, name, function)
        writer.flush = stages.timed_async("record", flush)
        for _ in range(3):  # warm up
            await asyncio.gather(*(whole() for _ in range(GROUP)))
        for _ in range(ROUNDS):
            stages.spent = {}
            start = time.perf_counter()
            for _ in range(CALLS // GROUP):
                await asyncio.gather(*(whole() for _ in range(GROUP)))
            whole_us = (time.perf_counter() - start) / CALLS * 1e6
            rounds.append({
                **{stage: spent / CALLS * 1e6 for stage, spent in stages.spent.items()},
                "whole call": whole_us,
            })  # fmt: skip
    finally:
        for name, function in originals.items():
            setattr(tag, name, function)
        writer.flush = flush
    # The round whose whole call was quickest: the one least disturbed by the machine.
    best = min(rounds, key=lambda r: r["whole call"])
    parts = ("body decode", "cookie", "decide", "render", "record")
    best["framework and respond"] = best["whole call"] - sum(best[p] for p in parts)
    print(
        f"POST /v1/decide in process, stage by stage (µs a request, timed inside whole"
        f" calls, {GROUP} at a time; the quickest of {ROUNDS} rounds):"
    )
    for name in (*parts, "framework and respond", "whole call"):
        share = best[name] / best["whole call"]
        print(f"  {name:22} {best[name]:6.1f} µs  {share:4.0%}")
