"""DESIGN scenario 5 through the real HTTP API: an experiment with two variants and a
control, traffic with known conversion rates, and results that recover them.

Nothing is left to chance: the visitor ids (and so the variants) come from a seeded
generator, and exactly each variant's true share of its visitors converts, spread evenly, so
the measured rates are the true ones to within one visitor and the intervals cannot miss
them on an unlucky draw."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sp
from starlette.testclient import TestClient

from admin_keys import new_key
from news_site import News, at, news_app

NEWS = "https://news.example"
# The demo's newsletter experiment: two wordings and a control, with these true rates.
TRUE_PERCENT = {"short": 15, "long": 10, "control": 8}
TRUE_RATES = {name: percent / 100 for name, percent in TRUE_PERCENT.items()}


def simulate(client: TestClient, visitors: int, seed: int) -> dict[str, int]:
    """Each visitor (a seeded id): a view of the front page, the impression the tag reports,
    and for the variant's true share of them, a conversion (the widget's button, or the
    page's own signup): the n-th visitor of a variant converts when n x rate passes a whole
    number."""
    rng = random.Random(seed)
    assigned = dict.fromkeys(TRUE_RATES, 0)
    conversions = dict.fromkeys(TRUE_RATES, 0)
    headers = {"origin": NEWS}
    for _ in range(visitors):
        client.cookies.clear()
        client.cookies.set("sc_vid", f"visitor-{rng.getrandbits(64):016x}", domain="news.example")
        page = {"site": "news", "page": {"url": f"{NEWS}/news/"}}
        (decision,) = client.post("/v1/decide", json=page, headers=headers).json()["decisions"]
        variant = decision["variant"]
        assigned[variant] += 1
        about = {"decision": decision["id"], "rule": "newsletter", "variant": variant}
        events: list[dict[str, Any]] = [{"type": "impression", **about}]
        if assigned[variant] * TRUE_PERCENT[variant] // 100 > conversions[variant]:
            conversions[variant] += 1
            # A widget's button converts; the control has none, so the page reports the goal.
            converted = {"type": "event", "name": "newsletter_signup"}
            events.append(converted if variant == "control" else {"type": "convert", **about})
        assert client.post("/v1/events", json={"site": "news", "events": events},
                           headers=headers).status_code == 204  # fmt: skip
    return assigned


def test_scenario_5_results_recover_the_true_rates(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assigned = simulate(client, 2400, seed=5)
    assert assigned == {"short": 812, "long": 786, "control": 802}  # the same on every run
    key = new_key(capsys, "news")
    response = client.get("/v1/results", params={"site": "news", "rule": "newsletter"},
                      headers={"authorization": f"Bearer {key}"})  # fmt: skip
    assert response.status_code == 200, response.text
    results = response.json()
    by = {v["variant"]: v for v in results["variants"]}
    assert {v: by[v]["visitors"] for v in by} == assigned and sum(assigned.values()) == 2400
    assert all(by[v]["impressions"] == by[v]["visitors"] for v in by)
    assert all(by[v]["conversions"] == assigned[v] * TRUE_PERCENT[v] // 100 for v in by)
    assert by["control"]["control"] and by["control"]["uplift"] is None
    for name in ("short", "long"):
        low, high = by[name]["uplift_ci"]
        assert low <= TRUE_RATES[name] - TRUE_RATES["control"] <= high, (name, by[name])
        rel_low, rel_high = by[name]["relative_uplift_ci"]
        assert rel_low <= TRUE_RATES[name] / TRUE_RATES["control"] - 1 <= rel_high
        rate = by[name]["conversions"] / by[name]["visitors"]
        assert by[name]["rate"] == pytest.approx(rate)
    assert by["short"]["p_value"] < 0.05  # 15% against 8% is found
    assert results["sample_ratio"]["mismatch"] is False


def test_results_name_what_is_wrong(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    key = new_key(capsys, "news")
    headers = {"authorization": f"Bearer {key}"}
    for params, status, message in (
        ({"site": "news"}, 400, "rule: expected the id of the experiment's rule"),
        ({"site": "news", "rule": "nope"}, 404, "rule: site 'news' has no rule 'nope'"),
        ({"site": "shop", "rule": "loyalty-offer"}, 403, "may not act on shop"),
    ):
        response = client.get("/v1/results", params=params, headers=headers)
        assert response.status_code == status and message in response.json()["error"]


def test_repeated_impressions_of_one_decision_count_once(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """One visitor cannot pile up impressions: each page view's decision counts once, however
    often it is reported; made-up decisions and back-dated times are refused outright."""
    headers = {"origin": NEWS}
    for view in ("view-1", "view-2"):
        page = {"site": "news", "page": {"url": f"{NEWS}/news/"}, "view": view}
        answer = client.post("/v1/decide", json=page, headers=headers).json()
        (decision,) = answer["decisions"]
        about = {"decision": decision["id"], "rule": "newsletter", "variant": decision["variant"]}
        for i in range(5):
            body = {"site": "news", "events": [{"type": "impression", "id": f"{view}-{i:04d}",
                                                **about}]}  # fmt: skip
            assert client.post("/v1/events", json=body, headers=headers).status_code == 204
        forged = {**about, "decision": "F" * 24}
        back_dated = {**about, "at": answer["now"] - 7 * 86_400_000}
        for bad in (forged, back_dated):
            body = {"site": "news", "events": [{"type": "impression", **bad}]}
            assert client.post("/v1/events", json=body, headers=headers).status_code == 400
    key = new_key(capsys, "news")
    response = client.get("/v1/results", params={"site": "news", "rule": "newsletter"},
                          headers={"authorization": f"Bearer {key}"})  # fmt: skip
    (counted,) = [v for v in response.json()["variants"] if v["visitors"]]
    assert (counted["visitors"], counted["impressions"]) == (1, 2)


def test_a_goal_reached_before_exposure_is_not_a_conversion(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signed up a minute before the newsletter rule ever decided for them: not a
    conversion of the experiment; signing up after it is."""
    headers = {"origin": NEWS}
    client.cookies.set("sc_vid", "visitor-early-signup-0001", domain="news.example")
    early = {"type": "event", "name": "newsletter_signup", "at": int(time.time() * 1000) - 60_000}
    body: dict[str, Any] = {"site": "news", "events": [early]}
    assert client.post("/v1/events", json=body, headers=headers).status_code == 204
    page = {"site": "news", "page": {"url": f"{NEWS}/news/"}}
    assert client.post("/v1/decide", json=page, headers=headers).json()["decisions"]
    key = new_key(capsys, "news")

    def counted() -> tuple[int, int]:
        response = client.get("/v1/results", params={"site": "news", "rule": "newsletter"},
                              headers={"authorization": f"Bearer {key}"})  # fmt: skip
        (mine,) = [v for v in response.json()["variants"] if v["visitors"]]
        return mine["visitors"], mine["conversions"]

    assert counted() == (1, 0)
    body = {"site": "news", "events": [{"type": "event", "name": "newsletter_signup"}]}
    assert client.post("/v1/events", json=body, headers=headers).status_code == 204
    assert counted() == (1, 1)


def test_a_goal_reported_in_the_deciding_call_does_not_convert_its_exposure(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tag reports the triggers fired since its last call, so a goal in the call that
    first exposes the visitor was reached before that decision: the endpoint stores both at
    the same moment and the goal is not a conversion. The same goal in a later call is."""
    headers = {"origin": NEWS}
    client.cookies.set("sc_vid", "visitor-same-call-signup-01", domain="news.example")
    page = {"site": "news", "page": {"url": f"{NEWS}/news/"}}
    signup = {"events": [{"name": "newsletter_signup", "value": 7}]}
    assert client.post("/v1/decide", json=page | signup, headers=headers).json()["decisions"]
    key = new_key(capsys, "news")

    def counted() -> tuple[int, int, float]:
        response = client.get("/v1/results", params={"site": "news", "rule": "newsletter"},
                              headers={"authorization": f"Bearer {key}"})  # fmt: skip
        (mine,) = [v for v in response.json()["variants"] if v["visitors"]]
        return mine["visitors"], mine["conversions"], mine["revenue"]

    assert counted() == (1, 0, 0.0)
    assert client.post("/v1/decide", json=page | signup, headers=headers).status_code == 200
    assert counted() == (1, 1, 7.0)


# Revenue through the real app on each engine: every reader sees the experiment on a Monday,
# some sign up later in the week paying these amounts (a second payment adds to the first).
PAYMENTS = {"01": [40.0], "02": [10.0, 5.0], "07": [25.0],  # short
            "05": [60.0], "11": [12.5],  # long
            "03": [20.0], "09": [8.0]}  # fmt: skip  # control
BUCKETS = {
    "short": ["01", "02", "04", "07", "08", "13", "14", "17", "20", "24"],
    "long": ["05", "11", "15", "16", "18", "23"],
    "control": ["03", "06", "09", "10", "12", "19", "21", "22"],
}


@pytest.fixture
def news(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[News]:
    with news_app(store_url, tmp_path, monkeypatch) as app:
        yield app


def test_revenue_per_visitor_is_compared_by_welch_s_test(news: News) -> None:
    """The results' revenue figures are SciPy's Welch test on every exposed visitor's revenue
    (zeros included) and the delta method's interval of the ratio of means."""
    for variant, readers in BUCKETS.items():
        for reader in readers:
            assert news.view(reader)["variant"] == variant, reader
    for day, (reader, values) in enumerate(PAYMENTS.items()):
        news.clock[0] = at(day % 4, 15)
        for value in values:
            news.view(reader, "/news/articles/1.html", name="newsletter_signup", value=value)
    response = news.get("/v1/results", site="news", rule="newsletter")
    assert response.status_code == 200, response.text
    by = {v["variant"]: v for v in response.json()["variants"]}
    spent = {
        variant: [sum(PAYMENTS.get(r, [0.0])) for r in readers]
        for variant, readers in BUCKETS.items()
    }
    control = spent["control"]
    assert by["control"]["revenue"] == 28.0 and by["control"]["revenue_per_visitor"] == 3.5
    assert by["control"]["revenue_uplift"] is None and by["control"]["revenue_p_value"] is None
    for name in ("short", "long"):
        mine, result = spent[name], by[name]
        assert (result["visitors"], result["conversions"]) == (len(mine), sum(map(bool, mine)))
        assert result["revenue"] == pytest.approx(sum(mine))
        assert result["revenue_per_visitor"] == pytest.approx(np.mean(mine))
        assert result["revenue_uplift"] == pytest.approx(np.mean(mine) - np.mean(control))
        welch = sp.ttest_ind(mine, control, equal_var=False)
        assert result["revenue_p_value"] == pytest.approx(welch.pvalue, rel=1e-9)
        ci = welch.confidence_interval(0.95)
        assert result["revenue_uplift_ci"] == pytest.approx([ci.low, ci.high], rel=1e-9)
        ratio = np.mean(mine) / np.mean(control)
        se_log = math.sqrt(
            np.var(mine, ddof=1) / len(mine) / np.mean(mine) ** 2
            + np.var(control, ddof=1) / len(control) / np.mean(control) ** 2
        )
        z = sp.norm.ppf(0.975)
        assert result["relative_revenue_uplift"] == pytest.approx(ratio - 1)
        assert result["relative_revenue_uplift_ci"] == pytest.approx(
            [ratio * math.exp(-z * se_log) - 1, ratio * math.exp(z * se_log) - 1], rel=1e-9
        )
    # The conversion figures are still those of the conversions.
    assert by["short"]["rate"] == pytest.approx(3 / 10)
