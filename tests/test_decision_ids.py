"""Decision ids: issued with a MAC, verified without a database read."""

from __future__ import annotations

import base64

from sitecue.decision_ids import ID_LENGTH, current, issue, verify
from sitecue.keyring import Keyring

OLD, NEW = "an old secret, sixteen+", "a new secret, sixteen+"
DAY = 86_400_000
NOW = 20_400 * DAY + 3_600_000  # 2025-11-10, 01:00 UTC


def test_the_same_view_gives_the_same_short_id() -> None:
    key = Keyring([NEW]).mac_key("decision", "news")
    a = issue(key, "visitor-1", "view-1", "rule", "variant", NOW)
    assert a == issue(key, "visitor-1", "view-1", "rule", "variant", NOW)
    assert a != issue(key, "visitor-1", "view-2", "rule", "variant", NOW)
    assert len(a) == ID_LENGTH == 24 and a.replace("-", "").replace("_", "").isalnum()


def test_ids_verify_across_a_key_rotation_and_only_for_their_site() -> None:
    before = issue(Keyring([OLD]).mac_key("decision", "news"), "v", "view", "rule", "a", NOW)
    rotated = Keyring([OLD, NEW])
    assert verify(rotated.mac_keys("decision", "news"), before, "v", "rule", "a")
    assert not verify(Keyring([NEW]).mac_keys("decision", "news"), before, "v", "rule", "a")
    assert not verify(rotated.mac_keys("decision", "shop"), before, "v", "rule", "a")


def test_malformed_ids_are_refused_not_raised() -> None:
    keys = Keyring([NEW]).mac_keys("decision", "news")
    good = issue(keys[0], "v", "view", "rule", "a", NOW)
    for bad in ("", "x", "é" * 24, "!" * 24, good[:-1] + "!", good + "AAAA", "=" * 24):
        assert not verify(keys, bad, "v", "rule", "a"), bad


def test_an_id_carries_its_day_of_issue_under_the_mac() -> None:
    """Feedback is taken on a decision of yesterday or today (or tomorrow: another node's
    clock may be past midnight); the day cannot be moved without breaking the MAC."""
    keys = Keyring([NEW]).mac_keys("decision", "news")
    d = issue(keys[0], "v", "view", "rule", "a", NOW)
    late_today = NOW + 22 * 3_600_000
    assert d == issue(keys[0], "v", "view", "rule", "a", late_today)  # the same day: same id
    assert d != issue(keys[0], "v", "view", "rule", "a", NOW + DAY)
    for now, taken in [
        (NOW, True),
        (NOW + DAY, True),  # yesterday's
        (NOW - DAY, True),  # tomorrow's, by a clock a little ahead
        (NOW + 2 * DAY - 3_600_001, True),  # yesterday's, just before midnight
        (NOW + 2 * DAY - 3_600_000, False),  # at midnight it is the day before yesterday's
        (NOW + 30 * DAY, False),
        (NOW - 2 * DAY, False),
    ]:
        assert current(d, now) is taken, now
    raw = bytearray(base64.urlsafe_b64decode(d))
    raw[1] ^= 2  # moved two days: the MAC no longer holds
    moved = base64.urlsafe_b64encode(bytes(raw)).decode()
    assert current(moved, NOW + 2 * DAY) and not verify(keys, moved, "v", "rule", "a")


def test_an_id_has_one_spelling() -> None:
    """Base64 decoders also take ``+`` for ``-`` and ``/`` for ``_``: each spelling would be
    an id of its own to the deduplication of feedback (one impression counted twice)."""
    keys = Keyring([NEW]).mac_keys("decision", "news")
    spelled = [
        d
        for view in range(40)
        if {"-", "_"} & set(d := issue(keys[0], "v", f"view-{view}", "rule", "a", NOW))
    ]
    assert spelled  # some ids have a character with another spelling
    for d in spelled:
        assert verify(keys, d, "v", "rule", "a") and current(d, NOW)
        other = d.replace("-", "+").replace("_", "/")
        assert base64.b64decode(other) == base64.urlsafe_b64decode(d)  # the same bytes
        assert not verify(keys, other, "v", "rule", "a") and not current(other, NOW)
