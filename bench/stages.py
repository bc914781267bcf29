"""Where the time of one ``POST /v1/decide`` goes, stage by stage, in process: the real app
on the demo config with its SQLite store, and the request bench/decide.py sends (a
returning reader who meets the paywall, with a call id of its own).

Each stage is timed alone, by the function the endpoint calls for it, in CPU time (the best
of interleaved rounds, so a busy moment slows every stage alike): body decode, cookie
(the Cookie header parsed and the state unsealed), decide, render (the answer encoded, the
state sealed into its Set-Cookie headers), record (the records committed, in groups of 16
requests as under load). The whole call through the ASGI app is timed the same way, 16 at
a time, and what the stages leave of it is the framework: ASGI dispatch, the request and
response objects, CORS, metrics and the writer's hand-over.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from msgspec.structs import replace
from starlette.requests import Request

from asgi import post, post_scope
from sitecue.api import tag
from sitecue.api.bodies import decode
from sitecue.app import build_app
from sitecue.decide import Verdict, decide
from sitecue.ids import record_id
from sitecue.protocol import DecideRequest
from sitecue.settings import Settings
from sitecue.store import DecisionRecord, EventRecord, open_store

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://news.example"
ROUNDS = 15
CALLS = 200  # a round: this many calls of a stage
GROUP = 16  # concurrent requests, as under load: the records of 16 go in one commit


def _body(call: str) -> bytes:
    return json.dumps({
        "site": "news",
        "page": {"url": f"{ORIGIN}/news/articles/2.html", "title": "Story", "viewport": "desktop"},
        "events": [{"name": "paywall_view"}],
        "view": "bench-view",
        "call": call,
    }).encode()  # fmt: skip


def _cpu_us(run: Callable[[], Any], number: int) -> float:
    start = time.process_time()
    for _ in range(number):
        run()
    return (time.process_time() - start) / number * 1e6


async def _cpu_us_async(run: Callable[[int], Any], number: int) -> float:
    """CPU µs per request of ``number`` requests (rounded up to groups), ``GROUP`` at a
    time."""
    groups = -(-number // GROUP)
    start = time.process_time()
    for first in range(0, groups * GROUP, GROUP):
        await asyncio.gather(*(run(first + i) for i in range(GROUP)))
    return (time.process_time() - start) / (groups * GROUP) * 1e6


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


async def _stages(app: Any) -> None:
    runtime = app.state.runtime
    cookies = ""
    for i in range(2):  # a reader who met the paywall twice today
        warm = _body(f"stages-warm-{i}")
        status, cookies_set, _ = await post(app, "/v1/decide", warm, cookies, ORIGIN)
        assert status == 200, status
        cookies = "; ".join(cookies_set)
    body = _body("stages-00000001")
    site = runtime.site("news")
    request = decode(body, DecideRequest)
    http = Request({**post_scope("/v1/decide", body, cookies, ORIGIN), "app": app})
    now = tag._now_ms()
    key = runtime.keyring.mac_key("decision", "news")

    def fresh_state() -> Any:
        return tag._visitor_and_state(http, runtime, "news", request.call)

    outcome = decide(site, fresh_state(), request, now, key=key)
    assert outcome.decisions, "the paywall rule shows"

    def render() -> None:
        response = tag._answer(site, outcome, now)
        tag._set_cookies(http, response, runtime, outcome.state, True, "news", set())

    calls = iter(range(10**9))

    async def record(_: int) -> None:
        call = replace(request, call=f"stages-{next(calls):08d}")  # stored, not a retry
        events, record = tag._records(site, call, outcome, now, None)
        await runtime.store.write(events, [record])

    async def whole(_: int) -> None:
        call = _body(f"stages-{next(calls):08d}")
        status, _, _ = await post(app, "/v1/decide", call, cookies, ORIGIN)
        assert status == 200, status

    timed: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for name, us in (
            ("body decode", _cpu_us(lambda: decode(body, DecideRequest), CALLS)),
            ("cookie", _cpu_us(fresh_state, CALLS)),
            ("decide", _cpu_us(lambda: decide(site, fresh_state(), request, now, key=key), CALLS)),
            ("render", _cpu_us(render, CALLS)),
            ("record", await _cpu_us_async(record, CALLS)),
            ("whole call", await _cpu_us_async(whole, CALLS)),
        ):
            timed.setdefault(name, []).append(us)
    best = {name: min(us) for name, us in timed.items()}
    best["decide"] -= best["cookie"]  # each decide() had its cookie unsealed first
    parts = ("body decode", "cookie", "decide", "render", "record")
    best["framework and respond"] = best["whole call"] - sum(best[p] for p in parts)
    print(
        f"POST /v1/decide in process, stage by stage (CPU µs a request, best of {ROUNDS}"
        f" interleaved rounds; records committed {GROUP} requests a group):"
    )
    for name in (*parts, "framework and respond", "whole call"):
        share = best[name] / best["whole call"]
        print(f"  {name:22} {best[name]:6.1f} µs  {share:4.0%}")
