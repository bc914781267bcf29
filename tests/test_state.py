"""The state cookie: a faithful round trip, nothing readable by whoever holds it, and
nothing trusted that was not sealed by us for this visitor on this site."""

from __future__ import annotations

import base64
import binascii
import contextlib

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from sitecue.keyring import Keyring
from sitecue.state import (
    MAX_AGE_S,
    MAX_SUM,
    SESSION_GAP_MS,
    Budget,
    Counter,
    Products,
    Snapshot,
    StateCodec,
    VisitorState,
    _evictions,
)

SECRET = "a-test-secret-of-some-length"
VISITOR = "visitor-0123456789"


def sample() -> VisitorState:
    state = VisitorState(visitor=VISITOR, first_seen=1, last_seen=2, sessions=3, pageviews=9)
    state.triggers["paywall_view"] = Counter(days={740000: 2, 740001: 1}, session=1, total=3)
    memory = state.rule("paywall-faq")
    memory.variant, memory.dismissed = "faq", 1764000000000
    return state


def identified() -> VisitorState:
    state = sample()
    state.contact, state.verified = "customer-4711@mail.example", True
    state.attributes = {"loyalty_tier": "platinum", "avg_order_value": 187.5}
    return state


def test_round_trip() -> None:
    codec = StateCodec([SECRET])
    assert codec.decode(codec.encode(identified(), "news"), VISITOR, "news") == identified()


def test_the_cookie_is_compact() -> None:
    assert len(StateCodec([SECRET]).encode(sample(), "news")) < 200


def readable_texts(value: str) -> list[bytes]:
    """Everything a holder of the cookie can get out of it without a key: the value and
    each dot-separated part, as they are and base64-decoded (then unpacked if they can be)."""
    texts = [value.encode()]
    for part in [value, *value.split(".")]:
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            continue
        texts.append(raw)
        # Random bytes (the nonce, the ciphertext) may look like any msgpack, strings of
        # invalid UTF-8 included: whatever fails to unpack has nothing more to show.
        with contextlib.suppress(msgspec.DecodeError, ValueError):
            texts.append(repr(msgspec.msgpack.decode(raw)).encode())
    return texts


def test_the_cookie_reveals_nothing_about_the_person() -> None:
    value = StateCodec([SECRET]).encode(identified(), "news")
    for secret in (b"platinum", b"customer-4711", b"paywall", b"faq", b"187.5", VISITOR.encode()):
        assert not any(secret in text for text in readable_texts(value)), secret


def test_two_seals_of_one_state_differ() -> None:
    codec = StateCodec([SECRET])
    assert codec.encode(sample(), "news") != codec.encode(sample(), "news")  # a fresh nonce


def test_state_of_another_visitor_is_ignored() -> None:
    codec = StateCodec([SECRET])
    assert codec.decode(codec.encode(sample(), "news"), "someone-else-0000", "news") is None


def test_state_of_another_site_is_refused_and_counted() -> None:
    codec = StateCodec([SECRET])
    value = codec.encode(identified(), "shop")
    assert codec.decode(value, VISITOR, "news", ["news", "shop"]) is None
    assert codec.rejected == {"other site": 1}
    assert codec.decode(value, VISITOR, "shop", ["news", "shop"]) == identified()


def test_sealed_for_another_purpose_is_ignored() -> None:
    box = Keyring([SECRET]).sealer("token", "news")
    packed = msgspec.msgpack.encode([1_790_000_000, sample()])
    forged = base64.urlsafe_b64encode(box.seal(packed, VISITOR.encode())).decode()
    assert StateCodec([SECRET]).decode(forged, VISITOR, "news") is None


@given(st.integers(0, 150), st.integers(1, 255))
def test_tampered_cookies_are_ignored(at: int, flip: int) -> None:
    value = StateCodec([SECRET]).encode(sample(), "news")
    sealed = bytearray(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    sealed[at % len(sealed)] ^= flip
    evil = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    assert StateCodec([SECRET]).decode(evil, VISITOR, "news") is None


def test_sealed_with_another_key_is_ignored() -> None:
    other = StateCodec(["another-secret-entirely"]).encode(sample(), "news")
    assert StateCodec([SECRET]).decode(other, VISITOR, "news") is None


def test_rotation_old_key_still_opens_new_key_seals() -> None:
    old = StateCodec(["the-old-secret-0000"]).encode(sample(), "news")
    rotated = StateCodec([SECRET, "the-old-secret-0000"])  # the first one seals
    assert rotated.decode(old, VISITOR, "news") == sample()
    assert StateCodec([SECRET]).decode(rotated.encode(sample(), "news"), VISITOR, "news") == (
        sample()
    )


def test_a_cookie_expires_400_days_after_it_was_sealed() -> None:
    now = [1_790_000_000.0]
    codec = StateCodec([SECRET], clock=lambda: now[0])
    value = codec.encode(sample(), "news")
    now[0] += MAX_AGE_S
    assert codec.decode(value, VISITOR, "news") == sample()
    now[0] += 1
    assert codec.decode(value, VISITOR, "news") is None
    assert codec.rejected == {"expired": 1}


def test_sealed_garbage_is_ignored() -> None:
    box = Keyring([SECRET]).sealer("state", "news")
    codec = StateCodec([SECRET])
    for junk in (b"", b"!!!", b"\x93\x01\x02", msgspec.msgpack.encode(["x", sample()])):
        sealed = base64.urlsafe_b64encode(box.seal(junk, VISITOR.encode())).decode()
        assert codec.decode(sealed, VISITOR, "news") is None
    assert codec.rejected == {"undecodable": 4}


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_random_cookies_never_raise(junk: bytes | str) -> None:
    value = junk.decode("latin-1") if isinstance(junk, bytes) else junk
    assert StateCodec([SECRET]).decode(value, VISITOR, "news", ["shop"]) is None


@given(st.integers(0, 400))
def test_truncations_are_ignored(cut: int) -> None:
    value = StateCodec([SECRET]).encode(sample(), "news")
    if cut < len(value):
        assert StateCodec([SECRET]).decode(value[:cut], VISITOR, "news") is None


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
from sitecue.state import sent_size as state_sent_size  # noqa: E402
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


def sent_size(codec: StateCodec, state: VisitorState, keep: set[str] | None = None) -> int:
    return len(f"sc_s={codec.encode(state, 'news', keep or set())}")


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
            if name in compiled.sums:  # fifty purchases of 59.90 a day
                counter.add_value(day0 + day, 50 * 59.9)
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
        assert size == state_sent_size(state)  # what `sitecue check` measures is what is sent
        assert codec.decode(codec.encode(state, "news"), state.visitor, "news") == state
    assert not codec.evicted, "nothing was evicted"


def huge_state() -> VisitorState:
    """Twenty triggers with thirty days of counts each: about four times the cap."""
    state = VisitorState(visitor="visitor-huge-0000")
    for i in range(20):
        state.triggers[f"trigger-number-{i}"] = Counter(
            days={739_000 + d: 9 for d in range(30)}, total=270
        )
    return state


def test_the_cap_evicts_oldest_buckets_first_and_keeps_dismissals() -> None:
    codec = StateCodec([SECRET])
    state = huge_state()
    state.rules["dismissed-rule"] = RuleMemory(variant="a", dismissed=1_790_000_000_000)
    value = codec.encode(state, "news")
    assert MAX_COOKIE_BYTES - 12 < len(f"sc_s={value}") <= MAX_COOKIE_BYTES  # no more than needed
    kept = codec.decode(value, "visitor-huge-0000", "news")
    assert kept is not None and kept.rules["dismissed-rule"].dismissed
    newest = [max(c.days) for c in kept.triggers.values() if c.days]
    assert newest and all(day == 739_029 for day in newest)  # the newest days survived
    assert min(d for c in kept.triggers.values() for d in c.days) > 739_000
    left = sum(len(c.days) for c in kept.triggers.values())
    assert codec.evicted == {("news", "day bucket"): 600 - left}  # each one counted


def long_id(i: int) -> str:
    return f"campaign-{i:03d}-" + "x" * 50


def test_a_rule_dismissed_at_the_cap_stays_dismissed() -> None:
    """Forty dismissed campaigns do not fit. The one this request dismissed stays, even
    with the oldest time (the tag's clock may be wrong); the oldest others go first."""
    codec = StateCodec([SECRET])
    state = VisitorState(visitor="visitor-dismisser-00")
    for i in range(40):
        state.rules[long_id(i)] = RuleMemory(variant="a", dismissed=1_790_000_000_000 + i)
    state.rules["just-dismissed"] = RuleMemory(variant="a", dismissed=1)
    value = codec.encode(state, "news", {"just-dismissed"})
    assert len(f"sc_s={value}") <= MAX_COOKIE_BYTES
    kept = codec.decode(value, "visitor-dismisser-00", "news")
    assert kept is not None and kept.rules["just-dismissed"].dismissed == 1
    survivors = sorted(r for r in kept.rules if r != "just-dismissed")
    assert survivors == [long_id(i) for i in range(40 - len(survivors), 40)]  # the newest
    assert codec.evicted[("news", "dismissal")] == 40 - len(survivors) > 0
    assert codec.evicted[("news", "rule history")] > 0  # the variants went before dismissals
    again = codec.decode(codec.encode(kept, "news"), "visitor-dismisser-00", "news")
    assert again is not None and again.rules["just-dismissed"].dismissed == 1


def test_the_rule_just_shown_is_kept_at_the_cap() -> None:
    """Over the cap with counters and thirty campaigns shown once: the rule just shown
    keeps its variant and impressions (its caps and the coming impression need them)."""
    codec = StateCodec([SECRET])
    state = huge_state()
    for i in range(30):
        state.rules[long_id(i)] = RuleMemory(variant="a", last_shown=1_790_000_000_000 + i)
    state.rules["just-shown"] = RuleMemory(variant="b", shown=Counter(days={739_000: 1}, total=1))
    state.attributes = {"loyalty_tier": "x" * 200}
    kept = codec.decode(codec.encode(state, "news", {"just-shown"}), state.visitor, "news")
    assert kept is not None
    assert kept.rules["just-shown"] == RuleMemory(
        variant="b", shown=Counter(days={739_000: 1}, total=1)
    )
    assert kept.attributes == {}
    kinds = {kind for _, kind in codec.evicted}
    assert {"day bucket", "attributes", "rule memory"} <= kinds and "dismissal" not in kinds


def test_over_the_cap_with_nothing_left_to_evict_is_counted() -> None:
    codec = StateCodec([SECRET])
    state = VisitorState(visitor="visitor-kept-0000")
    for i in range(20):
        state.rules[long_id(i)] = RuleMemory(variant="a", dismissed=1_790_000_000_000)
    value = codec.encode(state, "news", set(state.rules))  # all touched: nothing may go
    assert len(f"sc_s={value}") > MAX_COOKIE_BYTES
    assert codec.evicted == {("news", "over the cap"): 1}
    assert codec.decode(value, state.visitor, "news") == state


def test_rejections_are_counted_by_reason() -> None:
    codec = StateCodec([SECRET])
    codec.decode("junk", VISITOR, "news")
    other_key = StateCodec(["another-secret-entirely"]).encode(sample(), "news")
    codec.decode(other_key, VISITOR, "news", ["news", "shop"])
    codec.decode(codec.encode(sample(), "news"), "someone-else-0000", "news", ["shop"])
    codec.decode(codec.encode(sample(), "shop"), VISITOR, "news", ["news", "shop"])
    assert codec.rejected == {"bad signature": 3, "other site": 1}


def test_a_cookie_signed_before_sealing_keeps_its_dismissals_but_not_its_person() -> None:
    """Upgrading from the signed cookie (before 0.2) resets no visitor's dismissals; the
    contact and attributes, which named no site, are dropped; a forged one opens nothing."""
    import base64
    import hashlib

    import itsdangerous
    import msgspec

    secret = "state-test-secret-0000"
    salt = b"sitecue.state"
    key = hashlib.sha256(salt + b"signer" + secret.encode()).digest()
    signer = itsdangerous.TimestampSigner(
        [key], salt=salt, key_derivation="none", digest_method=hashlib.sha256
    )
    old = VisitorState(visitor="v" * 22, contact="alice@example.com", verified=True)
    old.attributes = {"tier": "gold"}
    old.rule("free-express").dismissed = 1_790_000_000_000
    packed = base64.urlsafe_b64encode(msgspec.msgpack.encode(old)).rstrip(b"=")
    cookie = signer.sign(packed).decode()
    codec = StateCodec([secret])
    state = codec.decode(cookie, "v" * 22, "shop")
    assert state is not None and state.rules["free-express"].dismissed == 1_790_000_000_000
    assert (state.contact, state.verified, state.attributes) == (None, False, {})
    assert codec.decode(cookie, "w" * 22, "shop") is None  # another browser's
    assert codec.decode(cookie[:-2] + "xx", "v" * 22, "shop") is None  # altered
    assert StateCodec(["another-secret-000000"]).decode(cookie, "v" * 22, "shop") is None


def test_form_answers_are_kept_apart_and_go_before_any_rule_memory_at_the_cap() -> None:
    codec = StateCodec([SECRET])
    state = VisitorState(visitor="v", answers={"note": "x" * 2000})
    state.rule("newsletter").converted = 1
    kept = codec.decode(codec.encode(state, "news"), "v", "news")
    assert kept is not None and kept.answers == {} and kept.rules["newsletter"].converted == 1
    assert codec.evicted[("news", "answers")] == 1


def test_a_cookie_sealed_before_answers_existed_still_opens() -> None:
    """The answers are the state's last field, with a default: an older cookie, without it,
    opens with no answers."""
    codec = StateCodec([SECRET])
    old = msgspec.msgpack.encode([1_790_000_000, ["", 1, 2, 3]])
    sealed = Keyring([SECRET]).sealer("state", "news").seal(old, b"v")
    cookie = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    state = codec.decode(cookie, "v", "news")
    assert state is not None and state.answers == {} and state.sessions == 3


def test_server_side_counts_go_after_the_attributes_and_their_time_stays() -> None:
    """At the cap the server-side counts go with the attribute snapshot (both are read again
    at the next refresh); the time of the last read stays, so a cookie at the cap does not
    buy a read on every request."""
    codec = StateCodec([SECRET])
    state = identified()
    counts = {f"event_{i}": {"30d": i, "total": i} for i in range(100)}
    state.snapshot = Snapshot(at=1_790_000_000, counts=counts)
    state.rule("newsletter").converted = 1
    kept = codec.decode(codec.encode(state, "news"), VISITOR, "news")
    assert kept is not None and kept.snapshot == Snapshot(at=1_790_000_000)
    assert kept.attributes == {} and kept.rules["newsletter"].converted == 1
    assert codec.evicted[("news", "attributes")] == codec.evicted[("news", "server counts")] == 1
    assert ("news", "rule memory") not in codec.evicted


def test_server_side_sums_go_with_the_server_side_counts() -> None:
    """The sums of the person's server-side values are read again at the next refresh too:
    at the cap they go in the same step as the counts, before the answers."""
    codec = StateCodec([SECRET])
    state = identified()
    sums = {f"event_{i}": {"90d": MAX_SUM, "total": MAX_SUM} for i in range(60)}
    state.snapshot = Snapshot(at=1_790_000_000, counts={"event_0": {"total": 1}}, sums=sums)
    state.answers = {"note": "kept"}
    state.rule("newsletter").converted = 1
    kept = codec.decode(codec.encode(state, "news"), VISITOR, "news")
    assert kept is not None and kept.snapshot == Snapshot(at=1_790_000_000)
    assert kept.answers == {"note": "kept"} and kept.rules["newsletter"].converted == 1
    assert codec.evicted[("news", "server counts")] == 1
    assert ("news", "answers") not in codec.evicted


def test_a_snapshot_sealed_before_sums_existed_still_opens() -> None:
    """The snapshot's sums are its last field, with a default: a cookie whose snapshot holds
    only the time and the counts opens with no sums."""
    codec = StateCodec([SECRET])
    fields: list[object] = ["", 1, 2, 3, 4, 5, {}, {}, None, "c", True, {}, 0, {}, None, None, 0]
    before = msgspec.msgpack.encode(
        [1_790_000_000, [*fields, [1_790_000_000, {"purchase": {"total": 2}}]]]
    )
    sealed = Keyring([SECRET]).sealer("state", "news").seal(before, b"v")
    cookie = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    state = codec.decode(cookie, "v", "news")
    assert state is not None and state.verified
    assert state.snapshot == Snapshot(at=1_790_000_000, counts={"purchase": {"total": 2}})
    assert state.snapshot.sums == {}


def test_a_cookie_sealed_before_snapshots_existed_opens_due_for_a_refresh() -> None:
    """A browser identified before refreshes existed carries no snapshot: its next page view
    reads the person's attributes again (see sitecue.refresh)."""
    codec = StateCodec([SECRET])
    before = msgspec.msgpack.encode([1_790_000_000, ["", 1, 2, 3, 4, 5, {}, {}, None, "c", True]])
    sealed = Keyring([SECRET]).sealer("state", "news").seal(before, b"v")
    cookie = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    state = codec.decode(cookie, "v", "news")
    assert state is not None and state.snapshot is None and state.verified


# --- sums of event values ------------------------------------------------------------------


def test_sums_are_kept_in_hundredths_in_the_day_buckets_of_the_counts() -> None:
    state = VisitorState(visitor="v")
    for day, value in ((93, 0.1), (93, 0.2), (94, 59.9), (100, -10.0), (100, 10.0)):
        state.triggers.setdefault("purchase", Counter()).add(day)
        state.add_value("purchase", day, value)
    sums = state.sums["purchase"]
    assert sums.days == {93: 30, 94: 5990}  # a day whose values came to 0 has no sum
    assert set(sums.days) <= set(state.triggers["purchase"].days)
    assert state.summed("purchase", "1d", 100) == 0
    assert state.summed("purchase", "7d", 100) == 59.9
    assert state.summed("purchase", "8d", 100) == state.summed("purchase", "total", 100) == 60.2
    assert state.summed("purchase", "session", 100) == 60.2  # and no drift from 0.1 + 0.2
    assert state.summed("refund", "total", 100) == 0
    state.keep_only({"purchase": 7}, {}, 100, summed=["purchase"])
    assert sums.days == {94: 5990} and state.summed("purchase", "total", 100) == 60.2
    state.keep_only({"purchase": 7}, {}, 100)  # no rule sums it any more
    assert state.sums == {} and state.triggers["purchase"].total == 5


def test_a_sum_is_bounded_where_a_javascript_number_is_still_exact() -> None:
    near = 2**53 - 10**11  # 90,000 purchases of a billion
    state = VisitorState(visitor="v", sums={"p": Counter(days={1: near}, session=near, total=near)})
    for _ in range(2):
        state.add_value("p", 1, 1e9)
    assert state.sums["p"] == Counter(days={1: 2**53}, session=2**53, total=2**53)
    state.add_value("p", 1, -1e9)
    assert state.sums["p"].days[1] == 2**53 - 10**11
    assert len(msgspec.msgpack.encode(2**53)) == 9


def test_a_new_session_starts_its_sums_afresh() -> None:
    state = sample()
    state.add_value("paywall_view", 740_001, 12.5)
    state.touch(2 + 2 * SESSION_GAP_MS + 1)
    assert state.summed("paywall_view", "session", 740_001) == 0
    assert state.summed("paywall_view", "total", 740_001) == 12.5


def test_a_cookie_sealed_before_sums_existed_still_opens() -> None:
    """The sums are the state's last field, with a default: an older cookie opens with none."""
    codec = StateCodec([SECRET])
    old = msgspec.msgpack.encode([1_790_000_000, ["", 1, 2, 3, 4, 5, {"p": [{740: 2}, 1, 3]}]])
    sealed = Keyring([SECRET]).sealer("state", "news").seal(old, b"v")
    state = codec.decode(base64.urlsafe_b64encode(sealed).rstrip(b"=").decode(), "v", "news")
    assert state is not None and state.sums == {} and state.triggers["p"].total == 3


def test_at_the_cap_a_day_s_sum_goes_with_its_count_oldest_first() -> None:
    codec = StateCodec([SECRET])
    state = VisitorState(visitor="visitor-sums-cap-0")
    for name in ("purchase", "refund"):
        counter = state.triggers[name] = Counter()
        for day in range(739_000, 739_090):
            counter.add(day, 1000)
            state.add_value(name, day, 1234.56)
    value = codec.encode(state, "news")
    assert MAX_COOKIE_BYTES - 30 < len(f"sc_s={value}") <= MAX_COOKIE_BYTES  # no more than needed
    kept = codec.decode(value, "visitor-sums-cap-0", "news")
    assert kept is not None
    for name, counter in kept.triggers.items():
        sums = kept.sums[name]
        assert set(sums.days) == set(counter.days) and max(counter.days) == 739_089
        assert 0 < len(counter.days) < 90  # the newest days survived, the oldest went
        assert sums.total == 90 * 123456  # the total keeps them
    evicted = 180 - sum(len(c.days) for c in kept.triggers.values())
    assert codec.evicted == {("news", "day bucket"): evicted}


def test_goals_reached_go_last_and_the_budget_stays_at_the_cap() -> None:
    """A goal reached stops offers for good: it goes after every dismissal, and the overlay
    budget (a few dozen bytes) is never evicted."""
    codec = StateCodec([SECRET])
    state = huge_state()
    state.budget = Budget(view=7, given=[1], session=2, day=739_029, today=2, last_shown=5)
    state.goals = {f"goal-{i:02d}-" + "x" * 50: 1_790_000_000_000 + i for i in range(40)}
    state.rules["dismissed-rule"] = RuleMemory(variant="a", dismissed=1_790_000_000_000)
    kept = codec.decode(codec.encode(state, "news"), "visitor-huge-0000", "news")
    assert kept is not None and kept.budget == state.budget
    assert "dismissed-rule" not in kept.rules and kept.triggers == {}
    assert 0 < len(kept.goals) < 40  # the oldest went first
    assert min(kept.goals.values()) == 1_790_000_000_000 + 40 - len(kept.goals)
    assert codec.evicted[("news", "goal")] == 40 - len(kept.goals)


def test_a_cookie_sealed_before_the_budget_and_goals_existed_still_opens() -> None:
    codec = StateCodec([SECRET])
    old = msgspec.msgpack.encode([1_790_000_000, ["", 1, 2, 3, 4, 5, {}, {}, True]])
    sealed = Keyring([SECRET]).sealer("state", "news").seal(old, b"v")
    cookie = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    state = codec.decode(cookie, "v", "news")
    assert state is not None and state.budget is None and state.goals == {}
    assert state.consent is True


def _keys(prefix: bytes, n: int) -> bytes:
    return b"".join(prefix + bytes([i]) * 5 for i in range(n))  # newest first


def test_products_are_evicted_server_first_then_views_then_purchases_oldest_first() -> None:
    """The person's purchases as the site's records say go with the other refreshed data;
    then this browser's views, the oldest first, before any rule memory; its own purchases
    (what keeps a bought product out of its recommendations) after the trigger counters,
    before any rule's history or dismissal."""
    state = identified()
    state.rules = {}
    state.rule("seen").last_shown = 5
    state.rule("dismissed").dismissed = 7
    state.answers = {"note": "x"}
    state.products = Products(_keys(b"v", 3), _keys(b"b", 2), _keys(b"s", 2))
    steps = []
    for kind, _ in _evictions(state, ()):
        products = state.products or Products()
        steps.append((kind, products.viewed, products.bought))
    kinds = [kind for kind, *_ in steps]
    assert kinds[: kinds.index("trigger counter")] == [
        "day bucket", "day bucket", "attributes", "server products", "answers",
        "viewed product", "viewed product", "viewed product", "rule memory",
    ]  # fmt: skip
    assert kinds[kinds.index("trigger counter") :] == [
        "trigger counter", "bought product", "bought product", "dismissal",
    ]  # fmt: skip
    first_view = kinds.index("viewed product")
    assert steps[first_view][1] == _keys(b"v", 2)  # the oldest view went first
    first_buy = kinds.index("bought product")
    assert steps[first_buy][2] == _keys(b"b", 1)  # the oldest purchase went first
    assert state.products is None  # nothing left: not even an empty record


def test_at_the_cap_views_go_before_rule_memory_and_purchases_stay() -> None:
    codec = StateCodec([SECRET])
    state = VisitorState(visitor=VISITOR)
    state.products = Products(_keys(b"v", 20), _keys(b"b", 16))
    for i in range(14):
        state.rule(f"rule-{i:02d}").variant = f"{i:02d}" + "v" * 80
        state.rules[f"rule-{i:02d}"].last_shown = 1_790_000_000_000 + i
    kept = codec.decode(codec.encode(state, "shop"), VISITOR, "shop")
    assert kept is not None and kept.products is not None
    assert kept.products.bought == _keys(b"b", 16)
    assert kept.products.viewed == b""  # all 20 views went before any rule memory
    assert codec.evicted[("shop", "viewed product")] == 20
    assert codec.evicted[("shop", "rule memory")] >= 1
    assert "rule-13" in kept.rules and "rule-00" not in kept.rules  # least recently shown
