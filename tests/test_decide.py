"""decide(): the pure decision, with every verdict explained."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from sitecue import decision_ids
from sitecue.decide import Outcome, apply_feedback, decide
from sitecue.errors import BadRequest, ConfigError
from sitecue.protocol import DecideRequest, Feedback, Page, PageEvent
from sitecue.state import VisitorState, day_of
from sites import rule, site

NOW = int(datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp() * 1000)
DAY = 86_400_000
KEY = b"test-decision-key"  # signs decision ids


def request(
    path: str = "/articles/1",
    events: list[str] = (),  # type: ignore[assignment]
    view: str | None = "v",
    pageview: bool = True,
    call: str | None = None,
) -> DecideRequest:
    return DecideRequest(
        site="news",
        page=Page(url=f"https://news.example{path}?utm_source=mail"),
        events=[PageEvent(name=e) for e in events],
        view=view,
        pageview=pageview,
        call=call,
    )


def run(compiled: Any, state: VisitorState, *reqs: DecideRequest, now: int = NOW) -> Outcome:
    outcome = None
    for r in reqs:
        outcome = decide(compiled, state, r, now, key=KEY)
    assert outcome is not None
    return outcome


def visitor_for(variant: str) -> str:
    compiled = site()
    for i in range(1000):
        state = VisitorState(visitor=f"visitor-{variant}-{i:04d}")
        out = run(compiled, state, *[request(events=["paywall_view"])] * 3)
        if out.decisions and out.decisions[0].variant == variant:
            return state.visitor
    raise AssertionError(variant)


def test_the_third_paywall_in_seven_days_shows_the_faq() -> None:
    compiled, state = site(), VisitorState(visitor=visitor_for("faq"))
    first = run(compiled, state, request(events=["paywall_view"]))
    assert first.decisions == []
    assert first.verdicts[0].reason == "condition: triggers.paywall_view.7d"
    third = run(compiled, state, request(events=["paywall_view"]), request(events=["paywall_view"]))
    (decision,) = third.decisions
    assert (decision.rule, decision.variant) == ("paywall-faq", "faq")
    assert decision.placement.selector == "#paywall"
    assert decision.html is not None and "Try us free for 7 days" in decision.html
    assert third.verdicts[0].matched


def test_views_older_than_the_window_do_not_count() -> None:
    compiled, state = site(), VisitorState(visitor=visitor_for("faq"))
    run(
        compiled,
        state,
        request(events=["paywall_view"]),
        request(events=["paywall_view"]),
        now=NOW - 7 * DAY,
    )
    assert run(compiled, state, request(events=["paywall_view"])).decisions == []
    assert run(
        compiled, state, request(events=["paywall_view"]), request(events=["paywall_view"])
    ).decisions


def test_the_control_is_decided_and_logged_but_shows_nothing() -> None:
    compiled, state = site(), VisitorState(visitor=visitor_for("control"))
    (decision,) = run(compiled, state, *[request(events=["paywall_view"])] * 3).decisions
    assert decision.variant == "control" and decision.html is None


def test_variant_is_sticky_when_weights_change() -> None:
    state = VisitorState(visitor=visitor_for("control"))
    run(site(), state, *[request(events=["paywall_view"])] * 3)
    reweighted = site(
        rules=[
            rule(
                variants=[
                    {"id": "faq", "weight": 99, "widget": "faq"},
                    {"id": "control", "weight": 1, "widget": None},
                ]
            )
        ]
    )
    (decision,) = run(reweighted, state, request()).decisions
    assert decision.variant == "control"


def test_dismissed_never_again() -> None:
    compiled, state = site(), VisitorState(visitor=visitor_for("faq"))
    (d,) = run(compiled, state, *[request(events=["paywall_view"])] * 3).decisions
    apply_feedback(compiled, state, [Feedback("impression", d.id, d.rule, d.variant)], NOW)
    apply_feedback(compiled, state, [Feedback("dismiss", d.id, d.rule, d.variant)], NOW)
    later = run(compiled, state, request(events=["paywall_view"]), now=NOW + 3 * DAY)
    assert later.decisions == [] and later.verdicts[0].reason == "cap: dismissed"


def test_the_goal_event_converts_and_stops_the_rule() -> None:
    compiled, state = site(), VisitorState(visitor=visitor_for("faq"))
    run(compiled, state, *[request(events=["paywall_view"])] * 3)
    apply_feedback(compiled, state, [Feedback("event", name="subscribe")], NOW)
    assert state.rules["paywall-faq"].converted == NOW
    assert run(compiled, state, request()).verdicts[0].reason == "cap: converted"


def test_feedback_about_a_rule_never_decided_is_refused() -> None:
    compiled, state = site(), VisitorState(visitor="visitor-0000-0000")
    accepted = apply_feedback(
        compiled, state, [Feedback("dismiss", "x", "paywall-faq", "faq")], NOW
    )
    assert accepted == [] and "paywall-faq" not in state.rules


def test_max_per_day_counts_impressions() -> None:
    compiled = site(rules=[rule(when={}, limit={"max": 1, "per": "1d"})])
    state = VisitorState(visitor=visitor_for("faq"))
    (d,) = run(compiled, state, request()).decisions
    # decided again before it was seen (e.g. a re-decision): still allowed
    assert run(compiled, state, request(view="v2")).decisions
    apply_feedback(compiled, state, [Feedback("impression", d.id, d.rule, d.variant)] * 2, NOW)
    assert state.rules["paywall-faq"].shown.total == 1  # the same impression twice counts once
    assert run(compiled, state, request(view="v3")).verdicts[0].reason == "cap: 1 per 1d"
    assert run(compiled, state, request(view="v4"), now=NOW + DAY).decisions


def test_same_view_repeats_the_decision_id() -> None:
    compiled = site(rules=[rule(when={})])
    state = VisitorState(visitor=visitor_for("faq"))
    a = run(compiled, state, request(view="page-1")).decisions[0].id
    b = run(compiled, state, request(view="page-1", pageview=False)).decisions[0].id
    c = run(compiled, state, request(view="page-2")).decisions[0].id
    assert a == b != c


def test_priority_wins_the_slot_and_the_loser_says_so() -> None:
    always = [{"id": "on", "weight": 100, "widget": "faq"}]
    low = rule(id="low", when={}, priority=1, variants=always)
    high = rule(id="high", when={}, priority=5, variants=always)
    out = run(site(rules=[low, high]), VisitorState(visitor="visitor-0000-0007"), request())
    assert [d.rule for d in out.decisions] == ["high"]
    assert {v.rule: v.reason for v in out.verdicts} == {
        "high": None,
        "low": "lost on priority to high",
    }


def test_different_slots_both_show() -> None:
    banner = rule(
        id="banner",
        when={},
        placement={"type": "bar"},
        variants=[{"id": "on", "weight": 100, "widget": "faq"}],
    )
    modal = rule(
        id="modal",
        when={},
        placement={"type": "modal"},
        variants=[{"id": "on", "weight": 100, "widget": "faq"}],
    )
    out = run(site(rules=[banner, modal]), VisitorState(visitor="visitor-0000-0001"), request())
    assert sorted(d.rule for d in out.decisions) == ["banner", "modal"]


def test_schedule() -> None:
    always = [{"id": "on", "weight": 100, "widget": "faq"}]
    future = rule(when={}, variants=always, schedule={"from": "2026-12-01T00:00:00Z"})
    past = rule(
        id="past",
        when={},
        variants=always,
        placement={"type": "modal"},
        schedule={"until": "2026-11-25T11:00:00Z"},
    )
    live = rule(
        id="live",
        when={},
        variants=always,
        placement={"type": "bar"},
        schedule={"from": "2026-11-25T00:00:00Z", "until": "2026-11-26T00:00:00Z"},
    )
    out = run(
        site(rules=[future, past, live]), VisitorState(visitor="visitor-0000-0002"), request()
    )
    reasons = {v.rule: v.reason for v in out.verdicts}
    assert reasons == {
        "paywall-faq": "schedule: not started",
        "past": "schedule: ended",
        "live": None,
    }


def test_pageview_triggers_count_on_matching_paths() -> None:
    compiled = site(
        rules=[
            rule(
                when={"triggers.article_read.session": {"$gte": 2}},
                variants=[{"id": "on", "weight": 100, "widget": "faq"}],
            )
        ]
    )
    state = VisitorState(visitor="visitor-0000-0003")
    assert run(compiled, state, request("/")).decisions == []
    assert run(compiled, state, request("/articles/1")).decisions == []
    assert (
        run(compiled, state, request("/articles/1", pageview=False)).decisions == []
    )  # not a new view
    assert run(compiled, state, request("/articles/2")).decisions


def test_the_context_has_page_utm_visitor_and_time() -> None:
    when = {
        "page.path": "/articles/1",
        "utm.source": "mail",
        "visitor.new": True,
        "time.hour": 12,
        "page.query.utm_source": "mail",
    }
    compiled = site(
        rules=[rule(when=when, variants=[{"id": "on", "weight": 100, "widget": "faq"}])]
    )
    assert run(compiled, VisitorState(visitor="visitor-0000-0004"), request()).decisions


def test_state_keeps_only_triggers_rules_read() -> None:
    compiled, state = site(), VisitorState(visitor="visitor-0000-0005")
    run(compiled, state, request(events=["paywall_view", "subscribe", "unknown"]))
    assert set(state.triggers) == {"paywall_view"}


def test_old_day_buckets_are_forgotten() -> None:
    compiled, state = site(), VisitorState(visitor="visitor-0000-0006")
    run(compiled, state, request(events=["paywall_view"]), now=NOW - 30 * DAY)
    run(compiled, state, request(events=["paywall_view"]))
    counter = state.triggers["paywall_view"]
    assert len(counter.days) == 1 and counter.total == 2


ALWAYS = [{"id": "on", "weight": 100, "widget": "faq"}]


def shown(compiled: Any, state: VisitorState, at: int) -> list[str]:
    """Decide at ``at`` and report an impression for every decision, as the tag would."""
    out = run(compiled, state, request(view=str(at)), now=at)
    apply_feedback(
        compiled,
        state,
        [Feedback("impression", d.id, d.rule, d.variant) for d in out.decisions],
        at,
    )
    return [d.rule for d in out.decisions]


def test_minimum_gap_between_impressions() -> None:
    compiled = site(rules=[rule(when={}, variants=ALWAYS, limit={"gap": "2h"})])
    state = VisitorState(visitor="visitor-gap-0000")
    assert shown(compiled, state, NOW) == ["paywall-faq"]
    assert shown(compiled, state, NOW + 3_600_000) == []
    assert (
        run(compiled, state, request(), now=NOW + 3_600_000).verdicts[0].reason
        == "cap: at most one per 2h"
    )
    assert shown(compiled, state, NOW + 7_200_000) == ["paywall-faq"]


def test_max_per_session() -> None:
    compiled = site(rules=[rule(when={}, variants=ALWAYS, limit={"max": 2, "per": "session"})])
    state = VisitorState(visitor="visitor-ses-0000")
    assert [shown(compiled, state, NOW + i * 60_000) for i in range(3)] == [["paywall-faq"]] * 2 + [
        []
    ]
    assert shown(compiled, state, NOW + 2 * 3_600_000) == ["paywall-faq"]  # a new session


def test_max_in_total() -> None:
    compiled = site(rules=[rule(when={}, variants=ALWAYS, limit={"max": 1})])
    state = VisitorState(visitor="visitor-tot-0000")
    assert shown(compiled, state, NOW) == ["paywall-faq"]
    assert shown(compiled, state, NOW + 100 * DAY) == []


def test_per_page_view_cap_across_rules() -> None:
    rules = [
        rule(
            id=f"r{i}",
            when={},
            variants=ALWAYS,
            priority=i,
            placement={"type": "inline", "selector": f"#s{i}"},
        )
        for i in range(4)
    ]
    compiled = site(rules=rules, max_per_view=2)
    out = run(compiled, VisitorState(visitor="visitor-cap-0000"), request())
    assert [d.rule for d in out.decisions] == ["r3", "r2"]
    assert {v.rule: v.reason for v in out.verdicts if not v.matched} == {
        "r1": "cap: 2 per page view",
        "r0": "cap: 2 per page view",
    }


def consent_site(mode: str) -> Any:
    stateless = rule(
        id="banner",
        when={"page.path": "/articles/1"},
        variants=ALWAYS,
        placement={"type": "bar"},
        limit={},
    )
    return site(consent=mode, rules=[rule(), stateless])


def test_consent_required_without_an_answer_uses_the_page_alone() -> None:
    compiled = consent_site("required")
    state = VisitorState(visitor="visitor-con-0000")
    out = run(compiled, state, request(events=["paywall_view"]))
    assert not out.persist and out.state.visitor == "" and out.state.triggers == {}
    assert [d.rule for d in out.decisions] == ["banner"]  # needs no history: may show
    reasons = {v.rule: v.reason for v in out.verdicts}
    assert (
        reasons["paywall-faq"]
        == "consent: the rule needs the visitor's history, kept only with consent"
    )


def test_consent_required_and_given_is_remembered() -> None:
    compiled = consent_site("required")
    state = VisitorState(visitor="visitor-con-0001")
    yes = DecideRequest(site="news", page=Page(url="https://news.example/articles/1"), consent=True)
    assert run(compiled, state, yes).persist and state.consent is True
    assert run(compiled, state, request()).persist  # later views need not repeat it


def test_consent_implied_until_declined() -> None:
    compiled = consent_site("implied")
    state = VisitorState(visitor="visitor-con-0002")
    assert run(compiled, state, request()).persist
    no = DecideRequest(site="news", page=Page(url="https://news.example/"), consent=False)
    assert not run(compiled, state, no).persist


def test_consent_none_always_keeps_state() -> None:
    compiled = consent_site("none")
    no = DecideRequest(site="news", page=Page(url="https://news.example/"), consent=False)
    assert run(compiled, VisitorState(visitor="visitor-con-0003"), no).persist


def test_attributes_count_only_when_verified() -> None:
    compiled = site(
        attributes={"tier": "string"},
        rules=[rule(when={"attributes.tier": "gold"}, variants=ALWAYS)],
    )
    state = VisitorState(visitor="visitor-att-0000", contact="c-1", attributes={"tier": "gold"})
    assert run(compiled, state, request()).decisions == []  # linked by page JavaScript only
    state.verified = True
    assert run(compiled, state, request()).decisions


def test_removed_rules_and_unread_triggers_are_forgotten() -> None:
    state = VisitorState(visitor="visitor-gc-0000")
    run(site(rules=[rule(when={}, variants=ALWAYS)]), state, request(events=["paywall_view"]))
    assert set(state.rules) == {"paywall-faq"}
    run(site(rules=[rule(id="other", when={}, variants=ALWAYS)]), state, request())
    assert set(state.rules) == {"other"} and state.triggers == {}


SPLIT = [{"id": "a", "weight": 50, "widget": "faq"}, {"id": "b", "weight": 50, "widget": "faq"}]


def shown_rules(compiled: Any, visitor: str, **state: Any) -> dict[str, str]:
    outcome = run(compiled, VisitorState(visitor=visitor, **state), request())
    return {d.rule: d.variant for d in outcome.decisions}


def test_coverage_leaves_the_rest_out_of_the_experiment() -> None:
    compiled = site(rules=[rule(when={}, variants=SPLIT, coverage=0.3)])
    taking_part = sum(bool(shown_rules(compiled, f"visitor-cov-{i:05d}")) for i in range(2000))
    assert 500 < taking_part < 700  # about 30%
    out = run(compiled, VisitorState(visitor="visitor-cov-00000"), request())
    reasons = {v.reason for v in out.verdicts if not v.matched}
    assert reasons <= {"not in any variant"}


def test_experiments_in_one_namespace_never_share_a_person() -> None:
    def half(rule_id: str, start: float, end: float, slot: str) -> dict[str, Any]:
        return rule(
            id=rule_id,
            when={},
            variants=SPLIT,
            namespace={"id": "hero", "range": [start, end]},
            placement={"type": "inline", "selector": slot},
        )

    compiled = site(rules=[half("left", 0, 0.5, "#a"), half("right", 0.5, 1, "#b")])
    seen = [set(shown_rules(compiled, f"visitor-ns-{i:05d}")) for i in range(1000)]
    assert all(len(s) == 1 for s in seen)  # one experiment each, never both, never none
    assert 400 < sum("left" in s for s in seen) < 600


def test_a_verified_person_gets_the_same_variant_on_every_device() -> None:
    compiled = site(rules=[rule(when={}, variants=SPLIT)])
    for i in range(50):
        contact = {"contact": f"person-{i}", "verified": True}
        laptop = shown_rules(compiled, f"laptop-visitor-{i:04d}", **contact)
        phone = shown_rules(compiled, f"phone-visitor-{i:05d}", **contact)
        assert laptop == phone
    by_browser = {shown_rules(compiled, f"browser-{i:04d}")["paywall-faq"] for i in range(50)}
    assert by_browser == {"a", "b"}  # anonymous browsers still split


def test_a_retried_call_with_the_state_it_already_updated_counts_nothing_again() -> None:
    compiled = site()
    state = VisitorState(visitor="visitor-retry-0001")
    first = run(compiled, state, request(events=["paywall_view"], call="call-0001"))
    again = run(compiled, state, request(events=["paywall_view"], call="call-0001"))
    assert again.decisions == first.decisions and again.verdicts == first.verdicts
    assert state.triggers["paywall_view"].total == 1 and state.pageviews == 1
    run(compiled, state, request(events=["paywall_view"], call="call-0002"))
    assert state.triggers["paywall_view"].total == 2 and state.pageviews == 2
    run(compiled, state, request(events=["paywall_view"]))  # no id: counted every time
    run(compiled, state, request(events=["paywall_view"]))
    assert state.triggers["paywall_view"].total == 4


def test_decision_ids_are_signed_for_the_visitor_rule_and_variant() -> None:
    compiled = site(rules=[rule(when={}, variants=ALWAYS)])
    state = VisitorState(visitor="visitor-signed-01")
    (d,) = run(compiled, state, request(view="page-1")).decisions
    assert decision_ids.verify([KEY], d.id, "visitor-signed-01", "paywall-faq", "on")
    assert not decision_ids.verify([b"another key"], d.id, "visitor-signed-01", "paywall-faq", "on")
    assert not decision_ids.verify([KEY], d.id, "visitor-other-01", "paywall-faq", "on")
    assert not decision_ids.verify([KEY], d.id, "visitor-signed-01", "paywall-faq", "off")
    assert not decision_ids.verify([KEY], d.id, "visitor-signed-01", "other-rule", "on")
    blank = run(compiled, VisitorState(visitor=""), request(view="page-1")).decisions
    assert decision_ids.verify([KEY], blank[0].id, decision_ids.ANONYMOUS, "paywall-faq", "on")


SHOP_TRIGGERS = {
    "purchase": {"on": "custom", "value": "number"},
    "paywall_view": {"on": "visible", "selector": "#paywall"},
}
PAGE_DATA = {"cart_value": "number", "logged_in": "boolean", "category": "string"}


def valued_site(when: dict[str, Any]) -> Any:
    return site(
        triggers=SHOP_TRIGGERS, page_data=PAGE_DATA, rules=[rule(when=when, variants=ALWAYS)]
    )


def purchase(value: float | None, **fields: Any) -> DecideRequest:
    return DecideRequest(
        site="news",
        page=Page(url="https://news.example/checkout", **fields),
        events=[PageEvent(name="purchase", value=value)],
    )


def test_a_rule_on_sums_of_values_shows_once_the_purchases_add_up_in_the_window() -> None:
    compiled = valued_site({"sums.purchase.30d": {"$gt": 100}})
    state = VisitorState(visitor="visitor-sums-0001")
    old = run(compiled, state, purchase(80.0), now=NOW - 40 * DAY)  # out of the window by now
    assert old.verdicts[0].reason == "condition: sums.purchase.30d"
    first = run(compiled, state, purchase(59.9), now=NOW - 2 * DAY)
    assert first.decisions == []
    again = run(compiled, state, purchase(None))  # counted, no value: the sum stays
    assert again.decisions == [] and state.triggers["purchase"].total == 3
    shown = run(compiled, state, purchase(40.2))
    assert [d.rule for d in shown.decisions] == ["paywall-faq"]  # 59.9 + 40.2 = 100.1
    assert state.summed("purchase", "30d", day_of(NOW, compiled.zone)) == 100.1
    assert state.summed("purchase", "total", day_of(NOW, compiled.zone)) == 180.1


def test_a_value_on_a_trigger_that_declares_none_is_counted_not_summed() -> None:
    compiled = site(
        triggers={**SHOP_TRIGGERS, "purchase": {"on": "custom"}},
        rules=[rule(when={"triggers.purchase.7d": {"$gte": 1}}, variants=ALWAYS)],
    )
    state = VisitorState(visitor="visitor-sums-0002")
    run(compiled, state, purchase(500.0))
    counter = state.triggers["purchase"]
    assert counter.total == 1 and state.sums == {}


def test_a_rule_on_page_data_reads_what_the_page_set_in_this_view() -> None:
    compiled = valued_site({"page.data.cart_value": {"$gt": 500}, "page.data.logged_in": True})
    state = VisitorState(visitor="visitor-data-0001")

    def data(**values: Any) -> DecideRequest:
        sent = {k: msgspec.Raw(msgspec.json.encode(v)) for k, v in values.items()}
        return DecideRequest(site="news", page=Page(url="https://news.example/cart", data=sent))

    assert run(compiled, state, data()).verdicts[0].reason == "condition: page.data.cart_value"
    low = run(compiled, state, data(cart_value=499.5, logged_in=True, other=[1]))
    assert low.verdicts[0].reason == "condition: page.data.cart_value"
    high = run(compiled, state, data(cart_value=520, logged_in=True))
    assert [d.rule for d in high.decisions] == ["paywall-faq"]
    assert run(compiled, state, data()).decisions == []  # nothing of it is kept for later
    with pytest.raises(BadRequest, match=r"\$\.page\.data\.cart_value: expected a finite"):
        run(compiled, state, data(cart_value="520"))


# stop_after: goal. The visitor reached the rule's goal, however: the rule stops.


def stopping() -> Any:
    return site(rules=[rule(limit={"stop_after": ["goal"]})])


def test_stop_after_goal_stops_a_rule_the_visitor_never_saw() -> None:
    compiled, state = stopping(), VisitorState(visitor=visitor_for("faq"))
    goal = Feedback("event", name="subscribe", at=NOW - DAY)
    apply_feedback(compiled, state, [goal], NOW - DAY)  # subscribed on their own
    out = run(compiled, state, *[request(events=["paywall_view"])] * 3)
    assert out.decisions == []
    assert out.verdicts[0].reason == "cap: goal reached"
    assert state.goals == {"subscribe": NOW - DAY}
    # Without it, the rule shows them the offer they have no use for (the old behaviour).
    plain, other = site(), VisitorState(visitor=state.visitor)
    apply_feedback(plain, other, [goal], NOW - DAY)
    assert run(plain, other, *[request(events=["paywall_view"])] * 3).decisions
    assert other.goals == {}  # nothing kept that no rule stops after


def test_a_goal_reported_with_a_decision_stops_the_rule_at_once() -> None:
    compiled, state = stopping(), VisitorState(visitor=visitor_for("faq"))
    run(compiled, state, *[request(events=["paywall_view"])] * 2)
    out = run(compiled, state, request(events=["paywall_view", "subscribe"]))
    assert out.decisions == [] and out.verdicts[0].reason == "cap: goal reached"


def test_the_rule_s_own_conversion_reaches_its_goal() -> None:
    compiled, state = stopping(), VisitorState(visitor=visitor_for("faq"))
    (shown,) = run(compiled, state, *[request(events=["paywall_view"])] * 3).decisions
    convert = Feedback("convert", shown.id, shown.rule, shown.variant, at=NOW)
    apply_feedback(compiled, state, [convert], NOW)
    assert run(compiled, state, request()).verdicts[0].reason == "cap: goal reached"


def test_stop_after_goal_needs_a_goal() -> None:
    with pytest.raises(ConfigError) as err:
        site(rules=[rule(goal=None, limit={"stop_after": ["dismiss", "goal"]})])
    ((path, message, _),) = err.value.problems
    assert path == "$.rules[0].limit.stop_after[1]"
    assert message == 'expected a rule with a goal to stop after (set its "goal")'
