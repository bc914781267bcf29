"""The demo's made-up history: the same records on every run, something for every rule of
every demo site, written once into a fresh demo so its dashboard shows a report per rule."""

from __future__ import annotations

import json
import shutil
import time
from datetime import date
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.app import build_app
from sitecue.decide import Verdict
from sitecue.demo import build_demo_app
from sitecue.demo_history import DAYS, MARKER, history, seed_history
from sitecue.keyring import Keyring
from sitecue.rules import load_sites
from sitecue.settings import Settings
from sitecue.store import DAY_MS, DecisionQuery, DecisionRecord, EventRecord
from sites import CONFIG_DIR
from test_dashboard import OWN

UNTIL_DAY = (date(2026, 10, 31) - date(1970, 1, 1)).days  # history: 2026-10-03 to 2026-10-30


def test_the_history_is_fixed_and_every_rule_has_visitors_and_conversions() -> None:
    sites = load_sites(CONFIG_DIR, frozenset(), Keyring(["history-test-secret-000000"]))
    for site in sites.values():
        days = history(site, UNTIL_DAY)
        assert days == history(site, UNTIL_DAY)  # the same records every run
        assert len(days) == DAYS
        decisions = [d for _, batch in days for d in batch]
        events = [e for batch, _ in days for e in batch]
        assert len({d.id for d in decisions}) == len(decisions) > 50 * DAYS
        assert all((UNTIL_DAY - DAYS) * DAY_MS <= r.at < UNTIL_DAY * DAY_MS for r in decisions)
        for rule in site.rules:
            shown = {
                v.variant for d in decisions for v in d.verdicts if v.rule == rule.id and v.matched
            }
            assert shown == {v.id for v in rule.variants}, rule.id  # the control too
            exposed = {
                d.visitor for d in decisions for v in d.verdicts if v.rule == rule.id and v.matched
            }
            goal = rule.rule.goal
            assert any(e.visitor in exposed and e.name == goal for e in events), rule.id
        assert any(e.type == "click" for e in events) and any(e.type == "dismiss" for e in events)
    purchases = [e for e in history(sites["shop"], UNTIL_DAY)[0][0] if e.name == "purchase"]
    assert purchases and all(e.value is not None and e.value > 0 for e in purchases)


def test_a_fresh_demo_shows_a_report_with_data_for_every_rule_and_is_seeded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(CONFIG_DIR)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load(env=env, demo=True)
    key = new_key(capsys, "news", "shop")
    with TestClient(build_demo_app(settings), base_url=ORIGIN) as client:
        answer = client.post("/sc/dashboard/login", data={"key": key}, headers=OWN)
        page = answer.text
    for site in ("news", "shop"):
        rules = load_sites(CONFIG_DIR, frozenset(), Keyring(settings.secrets))[site].rules
        for rule in rules:
            start = page.index(f'aria-labelledby="report-{site}-{rule.id}-heading"')
            panel = page[start : page.index('<p class="csv">', start)]
            assert '<rect class="bar"' in panel and "No data in this period" not in panel
            assert '<path class="rate"' in panel, rule.id
    # Started again on the same data: nothing more is written.
    with TestClient(build_demo_app(settings), base_url=ORIGIN) as client:
        sitecue = client.app.routes[0].app  # type: ignore[attr-defined]
        store, sites = sitecue.state.runtime.store, sitecue.state.runtime.sites
        now = int(time.time() * 1000)
        assert client.portal.call(seed_history, store, sites, now) == []  # type: ignore[union-attr]


def test_an_operators_config_run_as_a_demo_gets_no_made_up_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the bundled config (it holds the marker file) asks for history: a copy of it
    without the marker stands for an operator's own config directory."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns(MARKER))
    env = {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(config)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load(env=env, demo=True)
    with TestClient(build_demo_app(settings), base_url=ORIGIN) as client:
        sitecue = client.app.routes[0].app  # type: ignore[attr-defined]
        store = sitecue.state.runtime.store
        for site in ("news", "shop"):
            query = DecisionQuery(site=site, limit=1)
            assert client.portal.call(store.decisions, query) == []  # type: ignore[union-attr]


def test_a_store_with_traffic_of_any_site_is_not_seeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention emptied the shop's decisions (the news site still has one): the shop gets
    no second history; nor does a store whose decisions all expired but rollups remain."""
    env = {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(CONFIG_DIR)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load(env=env, demo=True)
    app = build_app(settings)
    now = UNTIL_DAY * DAY_MS
    with TestClient(app, base_url=ORIGIN) as client:
        store, sites = app.state.runtime.store, app.state.runtime.sites
        kept = DecisionRecord("kept-decision", "news", "reader", now - DAY_MS, "https://n/", [])
        client.portal.call(store.write, [], [kept])  # type: ignore[union-attr]
        assert client.portal.call(seed_history, store, sites, now) == []  # type: ignore[union-attr]
        shop = DecisionQuery(site="shop", limit=1)
        assert client.portal.call(store.decisions, shop) == []  # type: ignore[union-attr]
        only_rollups = {"shop": sites["shop"]}  # no decision of the shop, but its rollups
        decision = f"{now - DAY_MS:011x}-0000000c-0"  # as ids.record_id makes them
        about = {"site": "shop", "visitor": "buyer", "decision": decision}
        rule, variant = sites["shop"].rules[0].id, sites["shop"].rules[0].variants[0].id
        shown = DecisionRecord(
            decision,
            "shop",
            "buyer",
            now - DAY_MS,
            "https://s/",
            [Verdict(rule, True, variant=variant)],
        )
        seen = EventRecord(type="impression", at=now - DAY_MS, rule=rule, variant=variant, **about)
        client.portal.call(store.write, [seen], [shown])  # type: ignore[union-attr]
        client.portal.call(store.expire, "decisions", "shop", now, 1000)  # type: ignore[union-attr]
        assert client.portal.call(store.decisions, shop) == []  # type: ignore[union-attr]
        assert client.portal.call(seed_history, store, only_rollups, now) == []  # type: ignore[union-attr]


def test_a_site_listing_no_origins_of_its_own_has_a_history(tmp_path: Path) -> None:
    """A site may list no origins when the demo adds its own (SITECUE_ALLOW_ORIGINS)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    news = config / "sites" / "news.json"
    news.write_text(json.dumps({**json.loads(news.read_text()), "origins": []}))
    demo = frozenset({"http://localhost:8000"})
    sites = load_sites(config, demo, Keyring(["history-test-secret-000000"]))
    days = history(sites["news"], UNTIL_DAY, 1)
    assert {d.url for _, batch in days for d in batch} == {"http://localhost:8000/"}
