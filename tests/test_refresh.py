"""Fresh attributes with bounded staleness, through the real app: an identified browser's
attributes and the person's server-side counts are read again once per interval, never
before it, never for an anonymous or merely claimed visitor, and never counted twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm_site import CRM_SITE, MINUTE_MS, Crm, crm_app
from sitecue.decide import decide
from sitecue.errors import StoreUnavailable
from sitecue.protocol import DecideRequest, Page
from sitecue.refresh import due, server_counts, server_sums
from sitecue.state import MAX_SUM, Snapshot, VisitorState
from sitecue.store import Refreshed
from sites import site

INTERVAL_MS = 15 * MINUTE_MS
DUE_MS = INTERVAL_MS + 1000  # the cookie keeps whole seconds, rounded up
DAY_MS = 86_400_000


@pytest.fixture
def crm(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Crm]:
    yield from crm_app(env, monkeypatch, capsys)


def reads(crm: Crm, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the store's reads made from now on (a decision's record is a write)."""
    store = crm.client.app.state.runtime.store  # type: ignore[attr-defined]
    seen: list[str] = []
    for name in ("refresh", "contact", "history", "visitors", "claims", "events", "use_token"):
        method = getattr(store, name)

        async def spy(*args: Any, _name: str = name, _method: Any = method) -> Any:
            seen.append(_name)
            return await _method(*args)

        monkeypatch.setattr(store, name, spy)
    return seen


def test_a_patch_reaches_the_browser_after_the_interval_and_not_before(crm: Crm) -> None:
    crm.attributes("PUT", "carol", {"tier": "silver"})
    assert crm.shown("carol-laptop-000001", token=crm.token("carol")) == []
    crm.attributes("PATCH", "carol", {"tier": "gold"})
    crm.clock.now += INTERVAL_MS - 1
    assert crm.shown("carol-laptop-000001") == []  # the snapshot is not yet due
    crm.clock.now += 1000  # the cookie keeps whole seconds, rounded up
    assert crm.shown("carol-laptop-000001") == ["gold"]


def test_a_store_purchase_counts_for_every_browser_of_the_person_after_the_interval(
    crm: Crm,
) -> None:
    laptop, phone, claimer, stranger = (
        f"{name}-{'0' * (19 - len(name))}1" for name in ("laptop", "phone", "claimer", "stranger")
    )
    crm.shown(laptop, token=crm.token("carol"))
    crm.clock.now += 5 * MINUTE_MS
    crm.shown(phone, token=crm.token("carol"))
    crm.shown(claimer, identify="carol")  # page JavaScript claims to be carol
    crm.shown(stranger)
    assert crm.send("carol", [{"name": "store_purchase", "value": 120.0, "id": "o-1"}]) == {
        "stored": 1,
        "duplicate": 0,
    }
    crm.clock.now += MINUTE_MS
    assert crm.shown(laptop) == [] and crm.shown(phone) == []  # neither is due yet
    crm.clock.now += DUE_MS - 6 * MINUTE_MS
    assert crm.shown(laptop) == ["buyer"]  # 15 minutes after its identification
    assert crm.shown(phone) == []  # identified 5 minutes later: due 5 minutes later
    crm.clock.now += 5 * MINUTE_MS
    assert crm.shown(phone) == ["buyer"]
    assert crm.shown(claimer) == [] and crm.shown(stranger) == []  # never theirs


def test_server_side_events_are_never_counted_twice_across_refreshes(crm: Crm) -> None:
    """``reader`` needs two email opens in all: one open, refreshed again and again, stays
    one; the second open shows it."""
    crm.shown("carol-laptop-000001", token=crm.token("carol"))
    crm.send("carol", [{"name": "email_open", "id": "open-1"}])
    for _ in range(4):
        crm.clock.now += DUE_MS
        assert crm.shown("carol-laptop-000001") == []
    crm.send("carol", [{"name": "email_open", "id": "open-2"}])
    crm.clock.now += DUE_MS
    assert crm.shown("carol-laptop-000001") == ["reader"]


def test_identification_counts_the_person_s_server_side_events_at_once(crm: Crm) -> None:
    day = crm.clock.now - 3 * DAY_MS
    crm.send("carol", [{"name": "store_purchase", "at": day}])
    crm.send("carol", [{"name": "email_open", "at": day + i} for i in range(2)])
    assert crm.shown("carol-laptop-000001") == []  # anonymous: none of it
    assert crm.shown("carol-laptop-000001", token=crm.token("carol")) == ["buyer", "reader"]


def test_an_erased_person_s_browser_loses_the_contact_at_its_next_refresh(crm: Crm) -> None:
    crm.attributes("PUT", "carol", {"tier": "gold"})
    crm.send("carol", [{"name": "store_purchase"}])
    answer = crm.visit("carol-laptop-000001", token=crm.token("carol"))
    assert answer["identified"] and sorted(d["rule"] for d in answer["decisions"]) == [
        "buyer",
        "gold",
    ]
    assert crm.admin("DELETE", "/v1/contacts/carol").status_code == 204
    crm.clock.now += DUE_MS
    answer = crm.visit("carol-laptop-000001")
    assert not answer["identified"] and answer["decisions"] == []


def test_no_read_for_an_anonymous_a_claimed_or_a_freshly_identified_browser(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = crm.token("carol")
    crm.shown("carol-laptop-000001", token=token)
    crm.shown("claimer-000000000001", identify="carol")  # the claim itself links (a write)
    seen = reads(crm, monkeypatch)
    for _ in range(3):
        crm.clock.now += 4 * MINUTE_MS  # 12 minutes in all: within the interval
        crm.shown("stranger-00000000001")
        crm.shown("claimer-000000000001")
        crm.shown("carol-laptop-000001")
    assert seen == []
    crm.clock.now += DUE_MS - 12 * MINUTE_MS
    crm.shown("carol-laptop-000001")
    crm.shown("carol-laptop-000001")
    crm.shown("claimer-000000000001")
    assert seen == ["refresh"]  # one read for the identified browser, once per interval


def test_a_replayed_older_cookie_buys_at_most_one_read_a_minute(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm.shown("carol-laptop-000001", token=crm.token("carol"))
    old = dict(crm.jars["carol-laptop-000001"])  # the cookie as identification sealed it
    seen = reads(crm, monkeypatch)
    crm.clock.now += DUE_MS
    for _ in range(3):
        crm.jars["carol-laptop-000001"] = old  # each says: refreshed 15 minutes ago
        crm.shown("carol-laptop-000001")
        crm.clock.now += 20_000
    assert seen == ["refresh"]
    crm.jars["carol-laptop-000001"] = old
    crm.shown("carol-laptop-000001")  # a minute after the last read
    assert seen == ["refresh", "refresh"]


def test_the_interval_is_the_site_s_setting(crm: Crm) -> None:
    compiled = site(CRM_SITE, identify={"refresh": "2h"})
    state = VisitorState(
        visitor="v", contact="carol", verified=True, snapshot=Snapshot(at=1_790_000_000)
    )
    at = 1_790_000_000_000
    assert not due(compiled, state, at + 2 * 3_600_000 - 1)
    assert due(compiled, state, at + 2 * 3_600_000)
    assert due(compiled, state, at - 2 * 3_600_000 - 1)  # sealed by a clock far ahead
    claimed = VisitorState(visitor="v", contact="carol", verified=False)
    assert not due(compiled, claimed, at) and not due(compiled, VisitorState(visitor="v"), at)


def test_server_side_counts_follow_the_site_s_calendar_days() -> None:
    compiled = site(
        {
            **CRM_SITE,
            "timezone": "Europe/Stockholm",
            "rules": [
                {**CRM_SITE["rules"][1], "when": {"triggers.store_purchase.2d": {"$gte": 1}}},
                {**CRM_SITE["rules"][1], "id": "b", "when": {"triggers.store_purchase.session": 1}},
                {**CRM_SITE["rules"][2], "when": {"triggers.email_open.total": {"$gte": 1}}},
            ],
        }
    )
    zone = ZoneInfo("Europe/Stockholm")
    assert compiled.zone == zone
    now = 1_790_000_000_000  # 2026-09-21 16:53 in Stockholm (UTC+2)
    midnight = 1_789_941_600_000  # 2026-09-21 00:00 in Stockholm
    found = Refreshed(
        {},
        [
            ("store_purchase", now + 60_000, 0),  # a minute ahead (the sender's clock): today
            ("store_purchase", midnight, 0),  # today
            ("store_purchase", midnight - 1, 0),  # yesterday
            ("store_purchase", midnight - DAY_MS - 1, 0),  # two days ago: outside 2d
        ],
        {"store_purchase": 9, "email_open": 4},
    )
    assert server_counts(compiled, found, now) == {
        "store_purchase": {"2d": 3},  # only the windows rules read; none in a session
        "email_open": {"total": 4},
    }


def test_a_store_purchase_s_value_counts_in_sums_for_the_person_s_verified_browsers(
    crm: Crm,
) -> None:
    laptop, phone, claimer, stranger = (
        f"{name}-{'0' * (19 - len(name))}1" for name in ("laptop", "phone", "claimer", "stranger")
    )
    crm.shown(laptop, token=crm.token("carol"))
    crm.shown(phone, token=crm.token("carol"))
    crm.shown(claimer, identify="carol")  # page JavaScript claims to be carol
    crm.shown(stranger)
    crm.send("carol", [{"name": "store_purchase", "value": 1500, "id": "o-1"}])
    assert crm.shown(laptop) == []  # not yet refreshed
    crm.clock.now += DUE_MS
    assert crm.shown(laptop) == crm.shown(phone) == ["buyer", "spender"]
    assert crm.shown(claimer) == [] and crm.shown(stranger) == []  # never theirs
    crm.clock.now += DUE_MS
    assert crm.shown(laptop) == ["buyer", "spender"]  # the next refresh keeps it


def test_server_side_sums_are_never_added_twice_across_refreshes(crm: Crm) -> None:
    """``spender`` needs over 1,000 in 90 days: 600, refreshed again and again, stays 600;
    a second 600 shows it."""
    crm.shown("carol-laptop-000001", token=crm.token("carol"))
    crm.send("carol", [{"name": "store_purchase", "value": 600, "id": "o-1"}])
    for _ in range(3):
        crm.clock.now += DUE_MS
        assert crm.shown("carol-laptop-000001") == ["buyer"]
    crm.send("carol", [{"name": "store_purchase", "value": 600, "id": "o-2"}])
    crm.clock.now += DUE_MS
    assert crm.shown("carol-laptop-000001") == ["buyer", "spender"]


def test_server_side_sums_add_to_the_browser_s_own_in_hundredths(crm: Crm) -> None:
    """A purchase the tag reported (999.99) and one the store did (0.02) add up to over
    1,000 exactly: the sums are added in hundredths, not as floats."""
    crm.shown("carol-laptop-000001", token=crm.token("carol"))
    crm.visit("carol-laptop-000001", events=[{"name": "store_purchase", "value": 999.99}])
    assert "spender" not in crm.shown("carol-laptop-000001")
    crm.send("carol", [{"name": "store_purchase", "value": 0.02, "id": "o-1"}])
    crm.clock.now += DUE_MS
    assert "spender" in crm.shown("carol-laptop-000001")


def test_server_side_sums_follow_the_site_s_calendar_days() -> None:
    compiled = site(
        {
            **CRM_SITE,
            "timezone": "Europe/Stockholm",
            "rules": [
                {**CRM_SITE["rules"][1], "when": {"sums.store_purchase.2d": {"$gte": 1}}},
                {**CRM_SITE["rules"][1], "id": "b", "when": {"sums.store_purchase.session": 1}},
                {**CRM_SITE["rules"][1], "id": "c", "when": {"sums.store_purchase.total": 1}},
                {**CRM_SITE["rules"][2], "when": {"triggers.email_open.total": {"$gte": 1}}},
            ],
        }
    )
    assert dict(compiled.sums) == {"store_purchase": {"2d", "session", "total"}}
    now = 1_790_000_000_000  # 2026-09-21 16:53 in Stockholm (UTC+2)
    midnight = 1_789_941_600_000  # 2026-09-21 00:00 in Stockholm
    found = Refreshed(
        {},
        [
            ("store_purchase", now + 60_000, 1_050),  # a minute ahead: today
            ("store_purchase", midnight, 0),  # no value
            ("store_purchase", midnight - 1, 2),  # yesterday
            ("store_purchase", midnight - DAY_MS - 1, 70_000),  # two days ago: outside 2d
            ("email_open", now, 500),  # a value of a trigger no rule sums: not summed
        ],
        {"store_purchase": 9, "email_open": 1},
        {"store_purchase": 123_456, "email_open": 500},
    )
    assert server_sums(compiled, found, now) == {
        "store_purchase": {"2d": 1_052, "total": 123_456}  # none in a session
    }
    refunded = Refreshed({}, [("store_purchase", now, 500), ("store_purchase", now, -500)], {})
    assert server_sums(compiled, refunded, now) == {}  # zeros are left out
    huge = Refreshed({}, [("store_purchase", now, MAX_SUM)] * 2, {}, {"store_purchase": MAX_SUM})
    assert server_sums(compiled, huge, now) == {"store_purchase": {"2d": MAX_SUM, "total": MAX_SUM}}


def test_only_a_verified_browser_adds_the_snapshot_s_sums() -> None:
    """A claimed contact's state can carry no snapshot (a claim drops it); were one there, it
    would still add nothing: the sums of the site's systems need a verified identification."""
    compiled = site(CRM_SITE)
    now = 1_790_000_000_000
    request = DecideRequest(site="crm", page=Page(url="https://news.example/"))
    shown = {}
    for verified in (True, False):
        state = VisitorState(
            visitor="v",
            contact="carol",
            verified=verified,
            snapshot=Snapshot(at=now // 1000, sums={"store_purchase": {"90d": 100_001}}),
        )
        result = decide(compiled, state, request, now, key=b"decision-key")
        shown[verified] = sorted(d.rule for d in result.decisions)
    assert shown == {True: ["spender"], False: []}


def test_a_store_that_cannot_answer_leaves_the_snapshot_and_the_decision_goes_on(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm.attributes("PUT", "carol", {"tier": "gold"})
    assert crm.shown("carol-laptop-000001", token=crm.token("carol")) == ["gold"]
    store = crm.client.app.state.runtime.store  # type: ignore[attr-defined]
    tries: list[str] = []

    async def down(*args: Any) -> None:
        tries.append(args[1])
        raise StoreUnavailable("the database is down")

    monkeypatch.setattr(store, "refresh", down)
    crm.clock.now += DUE_MS
    assert crm.shown("carol-laptop-000001") == ["gold"]  # from the cookie, as it was
    assert crm.shown("carol-laptop-000001") == ["gold"]  # not tried again at once
    crm.clock.now += MINUTE_MS
    assert crm.shown("carol-laptop-000001") == ["gold"]
    assert tries == ["carol-laptop-000001"] * 2
