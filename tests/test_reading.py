"""Reading time: what the tag reports is credited within the time the server saw pass, kept
in day buckets with the page views, and read by conditions as ``reading.minutes.<window>``
and ``reading.average_seconds.<window>``; the beacon of a page being left is accepted by
``POST /v1/events``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from sitecue.api import tag as tag_api
from sitecue.app import build_app
from sitecue.decide import decide
from sitecue.errors import ConfigError
from sitecue.protocol import DecideRequest, Page
from sitecue.reading import MAX_REPORT_S, credit
from sitecue.settings import Settings
from sitecue.state import MAX_COOKIE_BYTES, StateCodec, VisitorState
from sitecue.state_size import state_size, worst_state
from sites import CONFIG_DIR, NEWS, rule, site

NOW = int(datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
DAY = 86_400_000
KEY = b"test-decision-key"
ORIGIN = "https://news.example"


def reader_rule(**when: Any) -> dict[str, Any]:
    return rule(
        id="long-reads",
        placement={"type": "inline", "selector": "#aside"},
        when=when,
        limit={},
        variants=[{"id": "show", "weight": 100, "widget": "faq"}],
        goal=None,
    )


def reading_site(**when: Any) -> Any:
    return site(rules=[reader_rule(**when)])


def ask(
    compiled: Any,
    state: VisitorState,
    now: int,
    read: int | None = None,
    pageview: bool = True,
    call: str | None = None,
) -> list[str]:
    request = DecideRequest(
        site="news",
        page=Page(url=f"{ORIGIN}/articles/1"),
        view="v",
        pageview=pageview,
        call=call,
        read=read,
    )
    return [d.rule for d in decide(compiled, state, request, now, key=KEY).decisions]


def test_a_report_is_credited_at_most_the_time_the_server_saw_pass() -> None:
    state = VisitorState(visitor="v", first_seen=NOW)
    today = NOW // DAY
    assert credit(state, 36_000, today, NOW + MINUTE) == 60  # not ten hours in a minute
    assert credit(state, 60, today, NOW + MINUTE + 1_000) == 1  # a second tab: one second
    assert credit(state, 50, today, NOW + 3 * MINUTE) == 50  # a real read is credited whole
    assert credit(state, 10, today, NOW + 3 * MINUTE) == 0
    assert credit(state, 36_000, today, NOW + DAY) == MAX_REPORT_S  # however long the silence
    assert state.read is not None and state.read.total == 60 + 1 + 50 + MAX_REPORT_S


def test_minutes_over_a_window_match_after_enough_reading() -> None:
    compiled = reading_site(**{"reading.minutes.7d": {"$gte": 30}})
    state = VisitorState(visitor="reader-1")
    now = NOW
    assert ask(compiled, state, now) == []  # the first page view, nothing read yet
    for day in range(3):  # ten minutes a day, on three days, reported as pages are left
        now = NOW + day * DAY + 10 * MINUTE
        assert ask(compiled, state, now, read=600, pageview=False) == (
            ["long-reads"] if day == 2 else []
        )
    assert state.read is not None and state.read.total == 1800
    # Eight days on, the first day's ten minutes are out of the week.
    assert ask(compiled, state, NOW + 8 * DAY) == []


def test_average_seconds_per_page_view() -> None:
    compiled = reading_site(**{"reading.average_seconds.30d": {"$gte": 150}})
    state = VisitorState(visitor="reader-2")
    assert ask(compiled, state, NOW) == []
    # The second page view carries what the first one read (an SPA route change does so).
    assert ask(compiled, state, NOW + 5 * MINUTE, read=240) == []  # 240 s over 2 views
    assert ask(compiled, state, NOW + 6 * MINUTE, read=60, pageview=False) == ["long-reads"]
    assert state.views is not None and state.views.total == 2  # 300 s over 2 views


def test_session_window_and_retried_calls() -> None:
    compiled = reading_site(**{"reading.minutes.session": {"$gte": 2}})
    state = VisitorState(visitor="reader-3")
    ask(compiled, state, NOW, call="call-0001")
    assert ask(compiled, state, NOW + 3 * MINUTE, read=120, call="call-0002") == ["long-reads"]
    # The same call again (a retry) credits nothing again.
    ask(compiled, state, NOW + 3 * MINUTE + 1_000, read=120, call="call-0002")
    assert state.read is not None and state.read.total == 120
    # A new session starts from nothing.
    assert ask(compiled, state, NOW + 3 * 3_600_000, call="call-0003") == []


def test_a_site_that_reads_no_reading_time_keeps_none() -> None:
    plain = site()
    state = VisitorState(visitor="reader-4")
    before = msgspec.msgpack.encode(state)
    ask(plain, state, NOW, read=300)
    assert state.read is None and state.views is None and state.read_at == 0
    # The new fields are at the end and left out when unset: the cookie is as it was.
    assert msgspec.msgpack.encode(VisitorState(visitor="x")) == msgspec.msgpack.encode(
        msgspec.structs.replace(VisitorState(visitor="x"), read=None)
    )
    assert len(before) == len(msgspec.msgpack.encode(VisitorState(visitor="reader-4")))
    # Reading time kept once is dropped when no rule reads it any more.
    reads = reading_site(**{"reading.minutes.7d": {"$gte": 1}})
    ask(reads, state, NOW + MINUTE, read=30, pageview=False)
    assert state.read is not None
    ask(plain, state, NOW + 2 * MINUTE)
    assert state.read is None and state.views is None and state.read_at == 0


def test_day_buckets_older_than_the_longest_window_are_forgotten() -> None:
    reads = {"reading.minutes.3d": {"$gte": 100}, "reading.average_seconds.2d": {"$gt": 1}}
    compiled = reading_site(**reads)
    state = VisitorState(visitor="reader-5")
    for day in range(6):
        ask(compiled, state, NOW + day * DAY, read=60)
    assert state.read is not None and state.views is not None
    assert len(state.read.days) == 3 and len(state.views.days) == 3
    assert state.views.total == 6


def test_page_views_are_kept_only_where_some_rule_reads_an_average() -> None:
    compiled = reading_site(**{"reading.minutes.7d": {"$gte": 100}})
    state = VisitorState(visitor="reader-6")
    ask(compiled, state, NOW)
    ask(compiled, state, NOW + MINUTE, read=60)
    assert state.read is not None and state.read.total == 60 and state.views is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("reading.minutes", "expected reading.minutes.<window> or reading.average_seconds"),
        ("reading.hours.7d", "expected reading.minutes.<window> or reading.average_seconds"),
        ("reading.minutes.week", "expected a window: session, total or a number of days"),
        ("reading.average_seconds.0d", "expected a window"),
    ],
)
def test_check_names_a_wrong_reading_path(key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        reading_site(**{key: {"$gte": 1}})
    (problem,) = caught.value.problems
    assert problem.path == f'$.rules[0].when["{key}"]'
    assert expected in problem.expected


def test_the_worst_case_cookie_counts_reading_time_and_evicts_it_oldest_first() -> None:
    plain = reader_rule(**{"triggers.paywall_view.7d": {"$gte": 1}})
    reads = reader_rule(
        **{"triggers.paywall_view.7d": {"$gte": 1}, "reading.minutes.30d": {"$gte": 1}}
    )
    before, after = state_size(site(rules=[plain])), state_size(site(rules=[reads]))
    print(f"\nworst-case state cookie: {before.worst} B, {after.worst} B reading 30 days")
    assert before.worst < after.worst <= MAX_COOKIE_BYTES
    assert after.floor == before.floor  # reading time goes before any dismissal
    # Over the cap the oldest day buckets go first, reading time's among them.
    heavy = site(rules=[reader_rule(**{"reading.average_seconds.365d": {"$gte": 1}})])
    codec = StateCodec(["size-test-secret-0000"])
    kept = codec.decode(codec.encode(worst_state(heavy), "news"), "", "news")
    assert kept is not None and kept.read is not None and kept.views is not None
    assert 0 < len(kept.read.days) < 365 and {k for _, k in codec.evicted} == {"day bucket"}
    assert max(kept.read.days) == max(worst_state(heavy).read.days)  # type: ignore[union-attr]


# The beacon: POST /v1/events with reading time, through the real app.


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    now = [NOW]
    monkeypatch.setattr(tag_api, "_now_ms", lambda: now[0])
    return now


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    data = {**NEWS, "rules": [reader_rule(**{"reading.minutes.7d": {"$gte": 3}})]}
    (config / "sites" / "news.json").write_text(json.dumps(data))
    env = {
        "SITECUE_DATA_DIR": str(tmp_path),
        "SITECUE_SECRETS": "reading-test-secret-0123",
        "SITECUE_CONFIG_DIR": str(config),
    }
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        yield client


def post(client: TestClient, path: str, body: dict[str, Any], origin: str = ORIGIN) -> Any:
    # sendBeacon with a string sends text/plain: no CORS preflight, and the server reads it.
    return client.post(
        path,
        content=json.dumps(body),
        headers={"origin": origin, "content-type": "text/plain;charset=UTF-8"},
    )


def page_view(client: TestClient, **body: Any) -> Any:
    answer = post(client, "/v1/decide", {"site": "news", "page": {"url": ORIGIN + "/"}, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_beacon_of_a_page_left_carries_its_reading_time(
    client: TestClient, clock: list[int]
) -> None:
    first = page_view(client)
    assert first["reading"] is True and first["decisions"] == []
    clock[0] += 3 * MINUTE
    beacon = {"site": "news", "read": 150, "call": "beacon-0001"}
    assert post(client, "/v1/events", beacon).status_code == 204
    clock[0] += 3 * MINUTE
    assert post(client, "/v1/events", beacon).status_code == 204  # a retry: credited once
    assert page_view(client)["decisions"] == []  # 2.5 minutes, not 5
    clock[0] += MINUTE
    assert post(client, "/v1/events", {**beacon, "call": "beacon-0002"}).status_code == 204
    (shown,) = page_view(client)["decisions"]  # 150 + 60 seconds: over three minutes
    assert shown["rule"] == "long-reads"


def test_a_beacon_claiming_more_than_the_time_that_passed_is_cut_to_it(
    client: TestClient, clock: list[int]
) -> None:
    page_view(client)
    clock[0] += 30_000
    post(client, "/v1/events", {"site": "news", "read": 86_400, "call": "beacon-0003"})
    assert page_view(client)["decisions"] == []  # 30 seconds, not a day


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"site": "news"}, 400, "events: expected at least one event, or reading time in read"),
        ({"site": "news", "read": -1}, 400, "$.read"),
        ({"site": "news", "read": 86_401}, 400, "$.read"),
        ({"site": "news", "read": "10"}, 400, "$.read"),
        ({"site": "news", "read": 10, "call": "x"}, 400, "$.call"),
        ({"site": "news", "events": [], "read": 10}, 400, "$.events"),
        ({"site": "nope", "read": 10}, 404, "site"),
    ],
)
def test_bad_reading_reports_are_refused_naming_the_field(
    client: TestClient, body: dict[str, Any], status: int, message: str
) -> None:
    response = post(client, "/v1/events", body)
    assert response.status_code == status and message in response.json()["error"]


def test_a_reading_beacon_from_another_origin_is_refused(client: TestClient) -> None:
    response = post(client, "/v1/events", {"site": "news", "read": 10}, "https://evil.example")
    assert response.status_code == 403
