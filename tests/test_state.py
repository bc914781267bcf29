"""The state cookie: a faithful round trip, and nothing trusted that was not signed by us."""

from __future__ import annotations

import base64
import hashlib

import itsdangerous
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import msgpack

from sitecue.state import SESSION_GAP_MS, Counter, StateCodec, VisitorState

SECRET = "a-test-secret-of-some-length"


def sample() -> VisitorState:
    state = VisitorState(
        visitor="visitor-0123456789", first_seen=1, last_seen=2, sessions=3, pageviews=9
    )
    state.triggers["paywall_view"] = Counter(days={740000: 2, 740001: 1}, session=1, total=3)
    memory = state.rule("paywall-faq")
    memory.variant, memory.dismissed = "faq", 1764000000000
    return state


def test_round_trip() -> None:
    codec = StateCodec([SECRET])
    assert codec.decode(codec.encode(sample()), "visitor-0123456789") == sample()


def test_the_cookie_is_compact() -> None:
    assert len(StateCodec([SECRET]).encode(sample())) < 200


def test_state_of_another_visitor_is_ignored() -> None:
    codec = StateCodec([SECRET])
    assert codec.decode(codec.encode(sample()), "someone-else-0000") is None


def test_tampered_payload_is_ignored() -> None:
    codec = StateCodec([SECRET])
    payload, _, rest = codec.encode(sample()).partition(".")
    forged = VisitorState(visitor="visitor-0123456789", sessions=99)
    evil = base64.urlsafe_b64encode(msgpack.encode(forged)).rstrip(b"=").decode()
    assert codec.decode(f"{evil}.{rest}", "visitor-0123456789") is None
    assert payload != evil


def test_signed_with_another_key_is_ignored() -> None:
    other = StateCodec(["another-secret-entirely"]).encode(sample())
    assert StateCodec([SECRET]).decode(other, "visitor-0123456789") is None


def test_rotation_old_key_still_verifies_new_key_signs() -> None:
    old = StateCodec(["the-old-secret-0000"]).encode(sample())
    rotated = StateCodec(["the-old-secret-0000", SECRET])
    assert rotated.decode(old, "visitor-0123456789") == sample()
    assert StateCodec([SECRET]).decode(rotated.encode(sample()), "visitor-0123456789") == sample()


def test_expired_cookie_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = StateCodec([SECRET])
    value = codec.encode(sample())
    real = itsdangerous.TimestampSigner.get_timestamp
    monkeypatch.setattr(
        itsdangerous.TimestampSigner, "get_timestamp", lambda self: real(self) + 401 * 86400
    )
    assert codec.decode(value, "visitor-0123456789") is None


def test_signed_garbage_is_ignored() -> None:
    signer = itsdangerous.TimestampSigner(
        [SECRET], salt="sitecue.state", digest_method=hashlib.sha256
    )
    for junk in (b"", b"!!!", base64.urlsafe_b64encode(b"\x93\x01\x02")):
        assert StateCodec([SECRET]).decode(signer.sign(junk).decode(), "visitor-0123456789") is None


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_random_cookies_never_raise(junk: bytes | str) -> None:
    value = junk.decode("latin-1") if isinstance(junk, bytes) else junk
    assert StateCodec([SECRET]).decode(value, "visitor-0123456789") is None


@given(st.integers(0, 400))
def test_truncations_are_ignored(cut: int) -> None:
    value = StateCodec([SECRET]).encode(sample())
    if cut < len(value):
        assert StateCodec([SECRET]).decode(value[:cut], "visitor-0123456789") is None


def test_a_new_session_starts_after_the_gap() -> None:
    state = sample()
    state.touch(2 + SESSION_GAP_MS)  # within the gap
    assert state.sessions == 3
    state.touch(2 + 2 * SESSION_GAP_MS + 1)
    assert state.sessions == 4
    assert state.triggers["paywall_view"].session == 0
    assert state.triggers["paywall_view"].total == 3


def test_day_windows_count_today_and_the_days_before() -> None:
    counter = Counter(days={100: 1, 94: 2, 93: 4}, session=0, total=7)
    assert counter.count("1d", 100) == 1
    assert counter.count("7d", 100) == 3
    assert counter.count("8d", 100) == 7
    assert counter.count("total", 100) == 7


# --- windowed counters against a naive recount ----------------------------------------

from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

from hypothesis import settings  # noqa: E402

from sitecue.decide import decide  # noqa: E402
from sitecue.protocol import DecideRequest, Page, PageEvent  # noqa: E402
from sitecue.rules import load_sites  # noqa: E402
from sitecue.state import MAX_COOKIE_BYTES, RuleMemory  # noqa: E402
from sites import CONFIG_DIR, rule, site  # noqa: E402

ZONE = ZoneInfo("Europe/Stockholm")
START = int(datetime(2026, 10, 20, 23, 0, tzinfo=ZONE).timestamp() * 1000)  # DST ends on the 25th
WINDOWS = ["1d", "3d", "7d", "session", "total"]
COUNTING = site(
    timezone="Europe/Stockholm",
    rules=[rule(when={f"triggers.paywall_view.{w}": {"$gte": 0} for w in WINDOWS})],
)
gaps = st.one_of(
    st.integers(0, 29 * 60_000),  # within a session
    st.integers(30 * 60_000 + 1, 20 * 3_600_000),  # a new session, often a new day
    st.integers(1, 9).map(lambda d: d * 86_400_000),  # days away
)


def naive_counts(times: list[int], now: int) -> dict[str, int]:
    """Recount from the raw event times: calendar days in the site's zone, and sessions as
    runs of activity with no gap over 30 minutes."""
    today = datetime.fromtimestamp(now / 1000, ZONE).date()
    ages = [(today - datetime.fromtimestamp(t / 1000, ZONE).date()).days for t in times]
    session_start = 0
    for i in range(1, len(times)):
        if times[i] - times[i - 1] > SESSION_GAP_MS:
            session_start = i
    counts = {f"{n}d": sum(0 <= a < n for a in ages) for n in (1, 3, 7)}
    counts["session"] = len(times) - session_start
    counts["total"] = len(times)
    return counts


@settings(max_examples=300, deadline=None)
@given(st.lists(gaps, min_size=1, max_size=40))
def test_windowed_counters_equal_a_naive_recount(steps: list[int]) -> None:
    state = VisitorState(visitor="visitor-prop-0000")
    times, now = [], START
    for gap in steps:
        now += gap
        times.append(now)
        event = DecideRequest(
            site="news",
            page=Page(url="https://news.example/"),
            events=[PageEvent(name="paywall_view")],
        )
        decide(COUNTING, state, event, now, key=b"test-decision-key")
    counter = state.triggers["paywall_view"]
    today = datetime.fromtimestamp(now / 1000, ZONE).toordinal()
    assert {w: counter.count(w, today) for w in WINDOWS} == naive_counts(times, now)
    assert all(today - day < 7 for day in counter.days)  # nothing older than the 7d window


# --- the size cap ------------------------------------------------------------------------


def sent_size(codec: StateCodec, state: VisitorState) -> int:
    return len(f"sc_s={codec.encode(state)}")


def heavy_year(compiled: Any) -> VisitorState:
    """A visitor of ``compiled`` after a year in which every trigger fired 50 times a day
    and every rule was shown, dismissed and converted; identified, with attributes."""
    state = VisitorState(visitor="visitor-heavy-00000000", contact="customer-000123", verified=True)
    state.attributes = {"customer": True, "loyalty_tier": "platinum", "avg_order_value": 187.5}
    day0 = 739_000
    for name in compiled.windows:
        counter = state.triggers.setdefault(name, Counter())
        for day in range(365):
            counter.add(day0 + day, 50)
    for r in compiled.rules:
        memory = state.rule(r.id)
        memory.variant, memory.last_impression = r.variants[0].id, "decision-id-000000000"
        memory.last_shown = memory.dismissed = memory.converted = 1_790_000_000_000
        for day in range(365):
            memory.shown.add(day0 + day, 3)
    state.sessions, state.pageviews, state.session_pageviews = 2_000, 40_000, 60
    state.keep_only(compiled.trigger_days, compiled.rule_days, day0 + 364)
    return state


def test_a_year_of_heavy_use_on_the_demo_configs_fits() -> None:
    codec = StateCodec([SECRET])
    for name, compiled in load_sites(CONFIG_DIR).items():
        state = heavy_year(compiled)
        size = sent_size(codec, state)
        assert size <= MAX_COOKIE_BYTES, name
        assert codec.decode(codec.encode(state), state.visitor) == state, "nothing was evicted"


def test_the_cap_evicts_oldest_buckets_first_and_keeps_dismissals() -> None:
    codec = StateCodec([SECRET])
    state = VisitorState(visitor="visitor-huge-0000")
    for i in range(20):
        state.triggers[f"trigger-number-{i}"] = Counter(
            days={739_000 + d: 9 for d in range(30)}, total=270
        )
    state.rules["dismissed-rule"] = RuleMemory(variant="a", dismissed=1_790_000_000_000)
    value = codec.encode(state)
    assert len(f"sc_s={value}") <= MAX_COOKIE_BYTES
    kept = codec.decode(value, "visitor-huge-0000")
    assert kept is not None and kept.rules["dismissed-rule"].dismissed
    newest = [max(c.days) for c in kept.triggers.values() if c.days]
    assert newest and all(day == 739_029 for day in newest)  # the newest days survived
    assert min(d for c in kept.triggers.values() for d in c.days) > 739_000


def test_rejections_are_counted_by_reason() -> None:
    codec = StateCodec([SECRET])
    codec.decode("junk", "visitor-0123456789")
    codec.decode(StateCodec(["another-secret-entirely"]).encode(sample()), "visitor-0123456789")
    codec.decode(codec.encode(sample()), "someone-else-0000")
    assert codec.rejected == {"bad signature": 2, "other visitor": 1}
