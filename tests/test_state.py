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
