"""Decision ids: issued with a MAC, verified without a database read."""

from __future__ import annotations

from sitecue.decision_ids import ID_LENGTH, issue, verify
from sitecue.keyring import Keyring

OLD, NEW = "an old secret, sixteen+", "a new secret, sixteen+"


def test_the_same_view_gives_the_same_short_id() -> None:
    key = Keyring([NEW]).mac_key("decision", "news")
    a = issue(key, "visitor-1", "view-1", "rule", "variant")
    assert a == issue(key, "visitor-1", "view-1", "rule", "variant")
    assert a != issue(key, "visitor-1", "view-2", "rule", "variant")
    assert len(a) == ID_LENGTH == 24 and a.replace("-", "").replace("_", "").isalnum()


def test_ids_verify_across_a_key_rotation_and_only_for_their_site() -> None:
    before = issue(Keyring([OLD]).mac_key("decision", "news"), "v", "view", "rule", "a")
    rotated = Keyring([OLD, NEW])
    assert verify(rotated.mac_keys("decision", "news"), before, "v", "rule", "a")
    assert not verify(Keyring([NEW]).mac_keys("decision", "news"), before, "v", "rule", "a")
    assert not verify(rotated.mac_keys("decision", "shop"), before, "v", "rule", "a")


def test_malformed_ids_are_refused_not_raised() -> None:
    keys = Keyring([NEW]).mac_keys("decision", "news")
    good = issue(keys[0], "v", "view", "rule", "a")
    for bad in ("", "x", "é" * 24, "!" * 24, good[:-1] + "!", good + "AAAA", "=" * 24):
        assert not verify(keys, bad, "v", "rule", "a"), bad
