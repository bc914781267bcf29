"""Attribute checks, a person's state rebuilt from their verified browsers' history, and
identification through the real store: claims kept apart, tokens limited to a few browsers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sitecue.decide import decide
from sitecue.errors import BadRequest
from sitecue.identity import _day_cache, _path, check_attributes, identify, rebuild
from sitecue.protocol import DecideRequest, Page, PageEvent
from sitecue.state import VisitorState, day_of
from sitecue.store import ContactEvent, EventRecord, PageView, Store, open_store
from sitecue.tokens import TokenCodec, TokenRejected
from sites import NEWS, rule, site

NOW = 1_790_000_000  # epoch seconds
NOW_MS = NOW * 1000
DAY_MS = 86_400_000
KEY = b"test-decision-key"  # signs decision ids


DECLARED = {"customer": "boolean", "tier": "string", "aov": "number"}


def test_declared_attributes_of_their_type_pass() -> None:
    check_attributes(DECLARED, {"customer": True, "tier": "gold", "aov": 87.5}, "attributes")
    check_attributes(DECLARED, {"aov": 87}, "attributes")  # a whole number is a number
    check_attributes(DECLARED, {"tier": None}, "attributes")  # cleared


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tierr": "gold"}, "attributes.tierr: expected an attribute the site declares (aov,"),
        ({"aov": "87"}, "attributes.aov: expected a number, got '87'"),
        ({"aov": True}, "attributes.aov: expected a number, got True"),
        ({"customer": "yes"}, "attributes.customer: expected a boolean, got 'yes'"),
        ([1], "attributes: expected an object of attributes"),
    ],
)
def test_undeclared_or_mistyped_attributes_are_named(values: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        check_attributes(DECLARED, values, "attributes")  # type: ignore[arg-type]


def test_rebuild_counts_every_browser_of_the_person() -> None:
    """Two paywall views on the laptop and one on the phone make three for the person: the
    rule that needs three shows on the phone at once."""
    compiled = site()
    laptop = [
        EventRecord("news", "laptop", "trigger", NOW_MS - 2 * DAY_MS, name="paywall_view"),
        EventRecord("news", "laptop", "trigger", NOW_MS - DAY_MS, name="paywall_view"),
        EventRecord("news", "laptop", "trigger", NOW_MS - 9 * DAY_MS, name="paywall_view"),
    ]
    phone = VisitorState(visitor="phone-visitor-000001")
    request = DecideRequest(site="news", page=Page(url="https://news.example/news/a/1"))
    assert decide(compiled, phone, request, NOW_MS, key=KEY).decisions == []
    rebuild(compiled, phone, laptop, [])
    counter = phone.triggers["paywall_view"]
    assert counter.total == 3 and counter.count("7d", day_of(NOW_MS, compiled.zone)) == 2
    again = DecideRequest(site="news", page=request.page, events=[PageEvent(name="paywall_view")])
    shown = decide(compiled, phone, again, NOW_MS, key=KEY).decisions
    assert [d.rule for d in shown] == ["paywall-faq"]


def test_rebuild_sums_the_values_of_every_browser_of_the_person() -> None:
    """Purchases on the laptop count toward "spent over 100 in 30 days" on the phone."""
    compiled = site(
        triggers={**NEWS["triggers"], "purchase": {"on": "custom", "value": "number"}},
        rules=[rule(when={"sums.purchase.30d": {"$gt": 100}})],
    )
    laptop = [
        EventRecord("news", "laptop", "trigger", NOW_MS - 40 * DAY_MS, name="purchase", value=500),
        EventRecord("news", "laptop", "trigger", NOW_MS - 2 * DAY_MS, name="purchase", value=59.9),
        EventRecord("news", "laptop", "trigger", NOW_MS - DAY_MS, name="purchase", value=45.1),
        EventRecord("news", "laptop", "trigger", NOW_MS - DAY_MS, name="purchase"),
    ]
    phone = VisitorState(visitor="phone-visitor-000003")
    phone.add_value("purchase", day_of(NOW_MS, compiled.zone), 7.0)  # this session's, here
    rebuild(compiled, phone, laptop, [])
    today = day_of(NOW_MS, compiled.zone)
    assert phone.triggers["purchase"].total == 4
    assert phone.summed("purchase", "30d", today) == 105.0
    assert phone.summed("purchase", "total", today) == 605.0
    assert phone.summed("purchase", "session", today) == 7.0  # a session stays the browser's


def test_rebuild_remembers_a_goal_reached_on_another_device() -> None:
    """Bought on the laptop, never shown the offer anywhere: on the phone the rule that
    stops after its goal stays stopped once the person is identified."""
    compiled = site(rules=[rule(limit={"stop_after": ["goal"]})])
    phone = VisitorState(visitor="phone-visitor-000003")
    laptop = [EventRecord("news", "laptop", "event", NOW_MS - DAY_MS, name="subscribe")]
    rebuild(compiled, phone, laptop, [])
    assert phone.goals == {"subscribe": NOW_MS - DAY_MS}
    request = DecideRequest(
        site="news", page=Page(url="https://news.example/news/a/1"),
        events=[PageEvent(name="paywall_view")] * 3,
    )  # fmt: skip
    (verdict,) = decide(compiled, phone, request, NOW_MS, key=KEY).verdicts
    assert verdict.reason == "cap: goal reached"


def test_rebuild_keeps_dismissals_and_the_person_s_first_variant() -> None:
    compiled = site()
    state = VisitorState(visitor="phone-visitor-000002")
    state.rule("paywall-faq").variant = "control"
    history = [
        EventRecord(
            "news", "laptop", "impression", NOW_MS - DAY_MS, None, "paywall-faq", "faq", "d1"
        ),
        EventRecord(
            "news", "laptop", "dismiss", NOW_MS - DAY_MS + 5, None, "paywall-faq", "faq", "d1"
        ),
    ]
    pageviews = [PageView(NOW_MS - DAY_MS, "https://x/news/articles/1.html")]
    rebuild(compiled, state, history, pageviews)
    memory = state.rules["paywall-faq"]
    assert memory.variant == "faq"  # the laptop's, first: the same on every device
    assert memory.dismissed and memory.shown.total == 1
    assert memory.shown.session == 0  # impressions on the laptop are not this session's


tokens = TokenCodec(["identity-test-secret-00"])


def with_store(tmp_path: Path, body: Callable[[Store], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = await open_store(f"sqlite:///{tmp_path / 'sitecue.db'}")
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def test_a_claim_is_linked_unverified_and_never_joins_the_person_s_history(
    tmp_path: Path,
) -> None:
    """Page JavaScript claims to be alice, views the paywall three times and dismisses the
    FAQ: none of it is alice's when she arrives by her email link."""
    compiled = site()
    token = tokens.mint("news", "alice", NOW + 86_400)

    async def body(store: Store) -> tuple[VisitorState, VisitorState, list[str], int]:
        claimer = VisitorState(visitor="claimer-000000000001")
        await identify(store, tokens, compiled, claimer, None, "alice", NOW_MS)
        at = NOW_MS - DAY_MS
        await store.write(
            [
                *(EventRecord("news", claimer.visitor, "trigger", at, "paywall_view"),) * 3,
                EventRecord("news", claimer.visitor, "impression", at, None, "paywall-faq", "faq"),
                EventRecord("news", claimer.visitor, "dismiss", at + 1, None, "paywall-faq", "faq"),
            ],
            [],
        )
        alice = VisitorState(visitor="alice-browser-000001")
        await identify(store, tokens, compiled, alice, token, None, NOW_MS)
        return (
            claimer,
            alice,
            await store.visitors("news", "alice"),
            await store.claims("news", "alice"),
        )

    claimer, alice, verified, claims = with_store(tmp_path, body)
    assert (claimer.contact, claimer.verified) == ("alice", False)
    assert (alice.contact, alice.verified) == ("alice", True)
    assert alice.triggers == {} and alice.rules == {}  # nothing of the claimer's
    assert verified == ["alice-browser-000001"] and claims == 1


def test_a_token_identifies_at_most_the_site_s_number_of_browsers(tmp_path: Path) -> None:
    compiled = site(identify={"browsers_per_token": 2})
    token = tokens.mint("news", "bob", NOW + 86_400)
    other = tokens.mint("news", "bob", NOW + 86_400)  # another email, another allowance

    async def body(store: Store) -> list[str | None]:
        seen: list[str | None] = []
        for browser, link in (("one", token), ("two", token), ("three", token), ("one", token)):
            state = VisitorState(visitor=f"browser-{browser:0>15}")  # a fresh cookie each time
            try:
                await identify(store, tokens, compiled, state, link, None, NOW_MS)
            except TokenRejected as refused:
                seen.append(refused.reason)
                continue
            seen.append(state.contact)
        three = VisitorState(visitor=f"browser-{'three':0>15}")
        await identify(store, tokens, compiled, three, other, None, NOW_MS)
        return [*seen, three.contact]

    before = tokens.rejected["too many browsers"]
    # The same browser clicking the link again is not a new browser.
    assert with_store(tmp_path, body) == ["bob", "bob", "too many browsers", "bob", "bob"]
    assert tokens.rejected["too many browsers"] == before + 1


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example/news/articles/1.html?utm_source=mail#top",
        "https://news.example",
        "https://news.example?x=1",
        "http://user:pw@news.example:8080/a;b/c#f",
        "/relative/path?q",
        "https://news.example/a\tb",  # urlsplit drops tabs: left to it
        "https://[::1/oops",  # urlsplit refuses it: no path
        "mailto:someone",
        "",
    ],
)
def test_the_recount_finds_the_path_the_page_context_does(url: str) -> None:
    """rebuild() matches page-view triggers on the path as decide() saw it (urlsplit's),
    found faster."""
    try:
        expected = urlsplit(url).path or "/"
    except ValueError:
        expected = "/"
    assert _path(url) == expected


def test_the_recount_puts_each_moment_on_the_site_s_calendar_day() -> None:
    """Days are looked up once per quarter hour; across a daylight-saving change the answer
    is still day_of's, minute by minute."""
    compiled = site(timezone="Europe/Stockholm")
    day = _day_cache(compiled)
    start = 1_792_800_000_000  # 2026-10-24, the night before Stockholm's clocks go back
    for minute in range(0, 3 * 24 * 60, 7):
        at = start + minute * 60_000 + minute % 60_000
        assert day(at) == day_of(at, compiled.zone)


def test_a_link_re_sent_without_its_cookie_is_recounted_once_a_minute(tmp_path: Path) -> None:
    """Re-sending a valid link from one browser, dropping the state cookie each time, buys
    no more than one history recount a minute: the rest are identified without one."""
    compiled = site()
    token = tokens.mint("news", "carol", NOW + 86_400)
    reads: list[str] = []

    async def body(store: Store) -> list[bool]:
        history = store.history

        async def counted(site_name: str, contact: str) -> Any:
            reads.append(contact)
            return await history(site_name, contact)

        store.history = counted  # type: ignore[method-assign]
        identified = []
        for at in (NOW_MS, NOW_MS + 1_000, NOW_MS + 59_000, NOW_MS + 61_000):
            state = VisitorState(visitor="carol-browser-0001")  # the cookie dropped each time
            await identify(store, tokens, compiled, state, token, None, at)
            identified.append(state.verified and state.contact == "carol")
        return identified

    assert with_store(tmp_path, body) == [True] * 4
    assert reads == ["carol", "carol"]  # at the first visit, and a minute after it


def test_identification_counts_the_person_s_server_side_events(tmp_path: Path) -> None:
    """What the site's systems reported about the person counts in the browser they
    identify, beside its own triggers; a claim of the same person gets none of it."""
    compiled = site(
        triggers={"subscribe": {"on": "custom"}, "store_purchase": {"on": "custom"}},
        rules=[
            rule(id="buyer", when={"triggers.store_purchase.7d": {"$gte": 2}}, goal=None),
            rule(
                id="loyal",
                when={"triggers.store_purchase.total": {"$gte": 3}},
                goal=None,
                placement={"type": "bar"},
            ),
        ],
    )
    token = tokens.mint("news", "erin", NOW + 86_400)
    bought = [
        ContactEvent("news", "erin", "store_purchase", NOW_MS - d * DAY_MS) for d in (1, 2, 9)
    ]

    async def body(store: Store) -> tuple[VisitorState, VisitorState]:
        await store.add_contact_events(bought)
        erin = VisitorState(visitor="erin-browser-000001")
        await identify(store, tokens, compiled, erin, token, None, NOW_MS)
        claimer = VisitorState(visitor="claimer-000000000001")
        await identify(store, tokens, compiled, claimer, None, "erin", NOW_MS)
        return erin, claimer

    erin, claimer = with_store(tmp_path, body)
    assert erin.snapshot is not None and erin.triggers == {}
    assert erin.snapshot.counts == {"store_purchase": {"7d": 2, "total": 3}}
    assert erin.snapshot.at * 1000 >= NOW_MS
    request = DecideRequest(site="news", page=Page(url="https://news.example/"))
    shown = decide(compiled, erin, request, NOW_MS, key=KEY).verdicts
    assert [v.rule for v in shown if v.matched] == ["buyer", "loyal"]
    assert claimer.snapshot is None
    shown = decide(compiled, claimer, request, NOW_MS, key=KEY).verdicts
    assert not any(v.matched for v in shown)
