"""The site-wide overlay budget: per page view across re-decisions, per session, per day and
a cooldown across pages, counted by the server in the sealed state."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.app import build_app
from sitecue.decide import Outcome, apply_feedback, decide
from sitecue.errors import ConfigError
from sitecue.protocol import DecideRequest, Feedback, Page, PageEvent
from sitecue.settings import Settings
from sitecue.state import Budget, VisitorState
from sitecue.state_size import state_size, worst_state
from sites import site

NOW = int(datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp() * 1000)
MINUTE, DAY = 60_000, 86_400_000
KEY = b"test-decision-key"


def offer(title: str) -> dict[str, Any]:
    return {"template": "widgets/offer.html", "data": {"title": title, "text": "t", "code": "C"}}


def overlay(rule_id: str, kind: str, priority: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "placement": {"type": kind, **({"selector": "#offers"} if kind == "inline" else {})},
        "variants": [{"id": "a", "weight": 100, "widget": rule_id}],
        "priority": priority,
        **fields,
    }


# A shop page: a welcome modal on every page, a slide-in once the visitor clicked "add to
# cart" (a click trigger: the tag decides the page view again), and an inline banner.
SHOP: dict[str, Any] = {
    "site": "budget",
    "origins": [ORIGIN],
    "triggers": {"add_to_cart": {"on": "click", "selector": ".add"}},
    "widgets": {name: offer(name) for name in ("welcome", "cart-help", "banner")},
    "frequency": {"per_view": 1},
    "rules": [
        overlay("cart-help", "slide-in", 20, when={"triggers.add_to_cart.session": {"$gte": 1}}),
        overlay("welcome", "modal", 10),
        overlay("banner", "inline", 5),
    ],
}


def shop(**frequency: Any) -> Any:
    raw = copy.deepcopy(SHOP)
    if frequency:
        raw["frequency"] = frequency
    return site(raw)


def request(
    view: str | None = "view-1", events: tuple[str, ...] = (), pageview: bool = True
) -> Any:
    return DecideRequest(
        site="budget",
        page=Page(url=f"{ORIGIN}/shop/"),
        events=[PageEvent(name=e) for e in events],
        view=view,
        pageview=pageview,
    )


def run(compiled: Any, state: VisitorState, req: DecideRequest, now: int = NOW) -> Outcome:
    return decide(compiled, state, req, now, key=KEY)


def shown(outcome: Outcome) -> list[str]:
    return [d.rule for d in outcome.decisions]


def why(outcome: Outcome, rule: str) -> str | None:
    return next(v.reason for v in outcome.verdicts if v.rule == rule)


def impression(compiled: Any, state: VisitorState, outcome: Outcome, rule: str, at: int) -> None:
    (d,) = [d for d in outcome.decisions if d.rule == rule]
    apply_feedback(compiled, state, [Feedback("impression", d.id, d.rule, d.variant, at=at)], at)


def test_a_click_in_the_same_page_view_brings_no_second_overlay() -> None:
    compiled, state = shop(per_view=1), VisitorState(visitor="visitor-0001")
    first = run(compiled, state, request())
    assert shown(first) == ["welcome", "banner"]  # the inline banner is not an overlay
    again = run(compiled, state, request(events=("add_to_cart",), pageview=False))
    assert why(again, "cart-help") == "frequency: per_view"
    # The modal given before is given again, as the same decision: the tag shows it once.
    assert shown(again) == ["welcome", "banner"]
    assert again.decisions[0].id == first.decisions[0].id


def test_without_a_budget_the_click_brings_a_second_overlay() -> None:
    """What the budget is for: each call caps only itself (max_per_view)."""
    raw = copy.deepcopy(SHOP)
    del raw["frequency"]
    compiled, state = site(raw), VisitorState(visitor="visitor-0001")
    run(compiled, state, request())
    again = run(compiled, state, request(events=("add_to_cart",), pageview=False))
    assert shown(again) == ["cart-help", "welcome"]
    assert state.budget is None  # nothing kept for a budget the site does not set


def test_each_page_view_has_its_own_per_view_budget() -> None:
    compiled, state = shop(per_view=1), VisitorState(visitor="visitor-0001")
    run(compiled, state, request("view-1"))
    run(compiled, state, request("view-1", ("add_to_cart",), pageview=False))
    assert shown(run(compiled, state, request("view-2"))) == ["cart-help", "banner"]
    # A call without a view id (an old tag, a script) is a page view of its own.
    assert shown(run(compiled, state, request(None))) == ["cart-help", "banner"]


def test_per_session_counts_the_overlays_shown() -> None:
    compiled, state = shop(per_session=1), VisitorState(visitor="visitor-0001")
    first = run(compiled, state, request("view-1"))
    # Decided but never shown (its impression never came): spends nothing.
    assert shown(run(compiled, state, request("view-2"), NOW + MINUTE)) == ["welcome", "banner"]
    impression(compiled, state, first, "welcome", NOW + MINUTE)
    later = run(compiled, state, request("view-3"), NOW + 2 * MINUTE)
    assert shown(later) == ["banner"]
    assert why(later, "welcome") == "frequency: per_session"
    # A new session (30 minutes without activity) starts afresh.
    assert "welcome" in shown(run(compiled, state, request("view-4"), NOW + 40 * MINUTE))


def test_per_day_and_cooldown_hold_across_sessions() -> None:
    compiled, state = shop(per_day=2, cooldown="10m"), VisitorState(visitor="visitor-0001")
    first = run(compiled, state, request("view-1"), NOW)
    impression(compiled, state, first, "welcome", NOW)
    soon = run(compiled, state, request("view-2"), NOW + 5 * MINUTE)
    assert why(soon, "welcome") == "frequency: cooldown"
    assert shown(soon) == ["banner"]
    second = run(compiled, state, request("view-3"), NOW + 11 * MINUTE)
    impression(compiled, state, second, "welcome", NOW + 11 * MINUTE)
    # Two shown today, in two sessions: no more today.
    at = NOW + 60 * MINUTE
    assert why(run(compiled, state, request("view-4"), at), "welcome") == "frequency: per_day"
    assert "welcome" in shown(run(compiled, state, request("view-5"), NOW + DAY))


def test_a_control_spends_the_budget_like_a_variant() -> None:
    """An experiment then compares its campaign with nothing shown, not with the next
    campaign in line."""
    raw = copy.deepcopy(SHOP)
    raw["frequency"] = {"per_session": 1}
    raw["rules"][1]["variants"] = [{"id": "control", "weight": 100, "widget": None}]
    compiled, state = site(raw), VisitorState(visitor="visitor-0001")
    first = run(compiled, state, request("view-1"))
    assert (first.decisions[0].rule, first.decisions[0].html) == ("welcome", None)
    impression(compiled, state, first, "welcome", NOW)
    assert why(run(compiled, state, request("view-2")), "welcome") == "frequency: per_session"


def test_inline_and_replace_count_only_when_listed() -> None:
    compiled = shop(per_view=1, applies_to=["modal", "inline"])
    state = VisitorState(visitor="visitor-0001")
    first = run(compiled, state, request())
    assert shown(first) == ["welcome"]
    assert why(first, "banner") == "frequency: per_view"
    # The slide-in is not covered now: the click brings it.
    again = run(compiled, state, request(events=("add_to_cart",), pageview=False))
    assert shown(again) == ["cart-help", "welcome"]


def test_without_consent_no_budget_can_be_kept_so_no_overlay_it_covers() -> None:
    raw = copy.deepcopy(SHOP)
    raw["consent"] = "required"
    compiled = site(raw)
    outcome = run(compiled, VisitorState(visitor="visitor-0001"), request())
    assert shown(outcome) == ["banner"]
    assert (why(outcome, "welcome") or "").startswith("consent:")


def test_a_site_without_a_budget_forgets_an_old_one() -> None:
    raw = copy.deepcopy(SHOP)
    del raw["frequency"]
    state = VisitorState(visitor="visitor-0001", budget=Budget(view=1, session=3))
    run(site(raw), state, request())
    assert state.budget is None


def test_a_budget_is_checked_with_its_path() -> None:
    for wrong, path in (
        ({"cooldown": "10 minutes"}, "$.frequency.cooldown"),
        ({"per_view": 0}, "$.frequency.per_view"),
        ({"applies_to": ["popup"]}, "$.frequency.applies_to[0]"),
        ({"per_day": 1, "daily": 2}, "$.frequency.daily"),
    ):
        with pytest.raises(ConfigError) as err:
            shop(**wrong)
        assert [p.path for p in err.value.problems] == [path], wrong


def test_the_worst_case_cookie_holds_the_budget() -> None:
    compiled = shop(per_view=1, per_session=2, per_day=3, cooldown="10m")
    worst = worst_state(compiled)
    assert worst.budget is not None and len(worst.budget.given) == 1
    without = copy.deepcopy(SHOP)
    del without["frequency"]
    grown = state_size(compiled).worst - state_size(site(without)).worst
    assert 0 < grown <= 48  # a view, one mark, two counts, a day and a time: ~35 bytes packed


# Through the real app: the tag's second call for one page view, after a click.


@pytest.fixture
def budget_client(env: dict[str, str]) -> Iterator[TestClient]:
    path = f"{env['SITECUE_CONFIG_DIR']}/sites/budget.json"
    with open(path, "w") as file:
        json.dump(SHOP, file)
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        yield client


def post_decide(client: TestClient, **body: Any) -> Any:
    payload = {"site": "budget", "page": {"url": f"{ORIGIN}/shop/"}, **body}
    response = client.post("/v1/decide", json=payload, headers={"origin": ORIGIN})
    assert response.status_code == 200, response.text
    return response.json()


def test_api_a_click_trigger_in_one_page_view_shows_no_second_overlay(
    budget_client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    first = post_decide(budget_client, view="page-view-1", call="call-000001")
    assert [d["rule"] for d in first["decisions"]] == ["welcome", "banner"]
    assert {"name": "add_to_cart", "on": "click", "selector": ".add"} in first["triggers"]
    clicked = post_decide(
        budget_client,
        view="page-view-1",
        pageview=False,
        events=[{"name": "add_to_cart"}],
        call="call-000002",
    )
    assert [d["id"] for d in clicked["decisions"]] == [d["id"] for d in first["decisions"]]
    # The next page view may show the slide-in: the budget is per view here.
    following = post_decide(budget_client, view="page-view-2", call="call-000003")
    assert [d["rule"] for d in following["decisions"]] == ["cart-help", "banner"]

    key = new_key(capsys, "budget")
    records = budget_client.get(
        "/v1/decisions", params={"site": "budget"}, headers={"authorization": f"Bearer {key}"}
    ).json()["items"]
    (click,) = [r for r in records if not r["pageview"]]
    reasons = {v["rule"]: v.get("reason") for v in click["verdicts"]}
    assert reasons["cart-help"] == "frequency: per_view"
