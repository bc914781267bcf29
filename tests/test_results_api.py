"""DESIGN scenario 5 through the real HTTP API: an experiment with two variants and a
control, traffic with known conversion rates, and results that recover them."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import new_key
from sitecue.app import build_app
from sitecue.settings import Settings

AB = "https://ab.example"
TRUE_RATES = {"bold": 0.15, "calm": 0.10, "control": 0.08}
EXPERIMENT = {
    "site": "ab",
    "origins": [AB],
    "widgets": {
        name: {"template": "widgets/offer.html", "data": {"title": name, "text": "t", "code": "C"}}
        for name in ("bold", "calm")
    },
    "rules": [
        {
            "id": "headline",
            "placement": {"type": "inline", "selector": "#hero"},
            "when": {},
            "variants": [
                {"id": "bold", "weight": 34, "widget": "bold"},
                {"id": "calm", "weight": 33, "widget": "calm"},
                {"id": "control", "weight": 33, "widget": None},
            ],
            "goal": "signup",
        }
    ],
}


@pytest.fixture
def ab(env: dict[str, str]) -> Iterator[TestClient]:
    sites = Path(env["SITECUE_CONFIG_DIR"]) / "sites"
    (sites / "ab.json").write_text(json.dumps(EXPERIMENT))
    with TestClient(build_app(Settings.load(env=env)), base_url=AB) as client:
        yield client


def simulate(client: TestClient, visitors: int, seed: int) -> dict[str, int]:
    """Each visitor: one page view, the impression the tag reports, and with the variant's
    true rate, a signup."""
    rng = random.Random(seed)
    assigned = dict.fromkeys(TRUE_RATES, 0)
    headers = {"origin": AB}
    for _ in range(visitors):
        client.cookies.clear()
        page = {"site": "ab", "page": {"url": f"{AB}/"}}
        (decision,) = client.post("/v1/decide", json=page, headers=headers).json()["decisions"]
        variant = decision["variant"]
        assigned[variant] += 1
        seen = {"type": "impression", "decision": decision["id"], "rule": "headline"}
        events: list[dict[str, Any]] = [{**seen, "variant": variant}]
        if rng.random() < TRUE_RATES[variant]:
            events.append({"type": "event", "name": "signup"})
        assert client.post("/v1/events", json={"site": "ab", "events": events},
                           headers=headers).status_code == 204  # fmt: skip
    return assigned


def test_scenario_5_results_recover_the_true_rates(
    ab: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assigned = simulate(ab, 2400, seed=5)
    key = new_key(capsys, "ab")
    response = ab.get("/v1/results", params={"site": "ab", "rule": "headline"},
                      headers={"authorization": f"Bearer {key}"})  # fmt: skip
    assert response.status_code == 200, response.text
    results = response.json()
    by = {v["variant"]: v for v in results["variants"]}
    assert {v: by[v]["visitors"] for v in by} == assigned and sum(assigned.values()) == 2400
    assert all(by[v]["impressions"] == by[v]["visitors"] for v in by)
    assert by["control"]["control"] and by["control"]["uplift"] is None
    for name in ("bold", "calm"):
        low, high = by[name]["uplift_ci"]
        assert low <= TRUE_RATES[name] - TRUE_RATES["control"] <= high, (name, by[name])
        rel_low, rel_high = by[name]["relative_uplift_ci"]
        assert rel_low <= TRUE_RATES[name] / TRUE_RATES["control"] - 1 <= rel_high
        rate = by[name]["conversions"] / by[name]["visitors"]
        assert by[name]["rate"] == pytest.approx(rate)
    assert by["bold"]["p_value"] < 0.05  # 15% against 8% is found
    assert results["sample_ratio"]["mismatch"] is False


def test_results_name_what_is_wrong(ab: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    key = new_key(capsys, "ab")
    headers = {"authorization": f"Bearer {key}"}
    for params, status, message in (
        ({"site": "ab"}, 400, "rule: expected the id of the experiment's rule"),
        ({"site": "ab", "rule": "nope"}, 404, "rule: site 'ab' has no rule 'nope'"),
        ({"site": "news", "rule": "paywall-faq"}, 403, "may not act on news"),
    ):
        response = ab.get("/v1/results", params=params, headers=headers)
        assert response.status_code == status and message in response.json()["error"]
