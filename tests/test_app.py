"""The HTTP surface the tag talks to, through the real ASGI app and a real SQLite file."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sitecue.app import build_app
from sitecue.bucketing import bucket_ranges, choose_variation, fnv_hash
from sitecue.settings import Settings
from sitecue.state import MAX_COOKIE_BYTES
from sitecue.store import DecisionQuery, open_store
from sites import CONFIG_DIR

NEWS = "https://news.example"
SHOP = "https://shop.example"
# The shop's rows of recommended products (product and cart pages): not its offers, which
# these tests follow.
RECOMMENDATIONS = {"recently-viewed", "bought-together"}
SECRET = "api-test-secret-0123456789"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    env = {
        "SITECUE_DATA_DIR": str(tmp_path),
        "SITECUE_SECRETS": SECRET,
        "SITECUE_CONFIG_DIR": str(CONFIG_DIR),
    }
    return Settings.load(env=env)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), base_url=NEWS) as client:
        yield client


def in_variant(rule: str, weights: list[float], wanted: int) -> str:
    ranges = bucket_ranges(len(weights), 1.0, weights)
    return next(
        v
        for i in range(10_000)
        if choose_variation(fnv_hash(rule, v := f"api-visitor-{i:05d}", 2) or 0, ranges) == wanted
    )


def decide(client: TestClient, site: str = "news", origin: str = NEWS, **body: Any) -> Any:
    payload = {"site": site, "page": {"url": f"{origin}/news/articles/1"}, **body}
    response = client.post(
        "/v1/decide",
        content=json.dumps(payload),
        headers={"origin": origin, "content-type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def send(client: TestClient, site: str, origin: str, *events: dict[str, Any]) -> None:
    response = client.post(
        "/v1/events", json={"site": site, "events": list(events)}, headers={"origin": origin}
    )
    assert response.status_code == 204, response.text


def test_decide_sets_first_party_cookies(client: TestClient) -> None:
    response = client.post(
        "/v1/decide", json={"site": "news", "page": {"url": NEWS + "/"}}, headers={"origin": NEWS}
    )
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    for cookie in cookies:
        assert (
            "HttpOnly" in cookie
            and "SameSite=Lax" in cookie
            and "Path=/" in cookie
            and "Secure" in cookie
        )
        assert "Max-Age=34560000" in cookie  # 400 days, the most browsers keep
    assert response.json()["visitor"] == client.cookies["sc_vid"]
    assert response.headers["access-control-allow-origin"] == NEWS
    assert response.headers["access-control-allow-credentials"] == "true"


def test_no_secure_flag_over_plain_http(settings: Settings) -> None:
    with TestClient(build_app(settings), base_url="http://news.example") as client:
        response = client.post(
            "/v1/decide", json={"site": "news", "page": {"url": "x"}}, headers={"origin": NEWS}
        )
        assert all("Secure" not in c for c in response.headers.get_list("set-cookie"))


def test_scenario_1_paywall_faq_then_dismiss(client: TestClient) -> None:
    client.cookies.set("sc_vid", in_variant("paywall-faq", [0.9, 0.1], 0), domain="news.example")
    for _ in range(2):
        assert decide(client, events=[{"name": "paywall_view"}])["decisions"] == []
    answer = decide(client, events=[{"name": "paywall_view"}])
    (d,) = answer["decisions"]
    assert d["rule"] == "paywall-faq" and d["variant"] == "faq" and "7 days" in d["html"]
    assert d["placement"] == {"type": "replace", "selector": "#paywall"}
    assert d["show"] == {"after": "now"}
    assert answer["triggers"] == [{"name": "paywall_view", "on": "visible", "selector": "#paywall"}]
    assert answer["goals"] == ["newsletter_signup", "subscribe"]
    send(
        client,
        "news",
        NEWS,
        {"type": "impression", "decision": d["id"], "rule": d["rule"], "variant": d["variant"]},
    )
    send(
        client,
        "news",
        NEWS,
        {"type": "dismiss", "decision": d["id"], "rule": d["rule"], "variant": d["variant"]},
    )
    for _ in range(3):
        assert decide(client, events=[{"name": "paywall_view"}])["decisions"] == []


def offers(answer: Any) -> list[str]:
    """The rules of the shop's offers a decision shows."""
    return [d["rule"] for d in answer["decisions"] if d["rule"] not in RECOMMENDATIONS]


def test_scenario_3_free_express_once_a_day_never_after_convert(client: TestClient) -> None:
    cart = {"url": f"{SHOP}/shop/cart.html"}
    assert offers(decide(client, "shop", SHOP, page=cart)) == ["first-purchase"]
    answer = decide(
        client, "shop", SHOP, page={"url": f"{SHOP}/shop/"}, events=[{"name": "add_to_cart"}]
    )
    assert "free-express" not in [d["rule"] for d in answer["decisions"]]  # not the cart page
    (slide,) = [
        d
        for d in decide(client, "shop", SHOP, page=cart)["decisions"]
        if d["rule"] == "free-express"
    ]
    assert slide["placement"] == {"type": "slide-in", "selector": None}
    assert slide["show"] == {"after": "now"}  # defaults are spelled out: the tag relies on them
    send(
        client,
        "shop",
        SHOP,
        {
            "type": "impression",
            "decision": slide["id"],
            "rule": "free-express",
            "variant": slide["variant"],
        },
    )
    again = decide(client, "shop", SHOP, page=cart, events=[{"name": "add_to_cart"}])
    assert "free-express" not in [d["rule"] for d in again["decisions"]]  # once a day
    send(client, "shop", SHOP, {"type": "event", "name": "purchase"})
    assert "free-express" not in [
        d["rule"] for d in decide(client, "shop", SHOP, page=cart)["decisions"]
    ]


def test_the_shop_s_offers_stop_after_a_purchase_made_without_them(
    client: TestClient, settings: Settings
) -> None:
    """A visitor who ordered first, never having seen an offer, gets no first-order offer
    and no free-shipping slide-in after it (stop_after: goal)."""
    cart = {"url": f"{SHOP}/shop/cart.html"}
    decide(client, "shop", SHOP, page={"url": f"{SHOP}/shop/checkout.html"})
    send(client, "shop", SHOP, {"type": "event", "name": "purchase"})
    answer = decide(client, "shop", SHOP, page=cart, events=[{"name": "add_to_cart"}])
    assert offers(answer) == []
    db = sqlite3.connect(settings.data_dir / "sitecue.db")
    (verdicts,) = db.execute("SELECT verdicts FROM decisions ORDER BY id DESC LIMIT 1").fetchone()
    reasons = {v["rule"]: v.get("reason") for v in json.loads(verdicts)}
    assert reasons["free-express"] == reasons["first-purchase"] == "cap: goal reached"


def test_records_are_committed_before_the_answer(client: TestClient, settings: Settings) -> None:
    decide(client, events=[{"name": "paywall_view"}])
    decide(client, pageview=False, events=[{"name": "paywall_view"}])
    db = sqlite3.connect(settings.data_dir / "sitecue.db")
    rows = db.execute("SELECT verdicts, pageview FROM decisions ORDER BY id").fetchall()
    # The verdicts that say why (store.verdicts): no rule met its conditions, so none.
    assert json.loads(rows[0][0]) == []
    assert [r[1] for r in rows] == [1, 0]  # a page view, then a re-decision after a trigger
    events = db.execute("SELECT type, name FROM events").fetchall()
    assert events == [("trigger", "paywall_view"), ("trigger", "paywall_view")]


def test_a_tampered_state_cookie_is_ignored(client: TestClient) -> None:
    for _ in range(2):
        decide(client, events=[{"name": "paywall_view"}])
    client.cookies.set("sc_s", client.cookies["sc_s"][:-3] + "AAA", domain="news.example")
    visitor = client.cookies["sc_vid"]
    answer = decide(client, events=[{"name": "paywall_view"}])  # would be the third
    assert answer["decisions"] == [] and answer["visitor"] == visitor


def test_consent_required_means_no_cookies(settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "sites").mkdir(parents=True)
    shutil.copytree(CONFIG_DIR / "widgets", config / "widgets")  # a link out is not published
    raw = json.loads((CONFIG_DIR / "sites" / "news.json").read_text())
    (config / "sites" / "news.json").write_text(json.dumps({**raw, "consent": "required"}))
    strict = Settings(config, settings.data_dir, settings.db, settings.secrets)
    with TestClient(build_app(strict), base_url=NEWS) as client:
        without = client.post(
            "/v1/decide", json={"site": "news", "page": {"url": "x"}}, headers={"origin": NEWS}
        )
        assert without.status_code == 200 and "set-cookie" not in without.headers
        with_consent = client.post(
            "/v1/decide", json={"site": "news", "page": {"url": "x"}, "consent": True}
        )
        assert len(with_consent.headers.get_list("set-cookie")) == 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{", 400, "body: expected a JSON object"),
        (b"[]", 400, "body: Expected `object`, got `array`"),
        (b'{"site": "news"}', 400, "Object missing required field `page`"),
        (
            b'{"site": "news", "page": {"url": 5}}',
            400,
            "Expected `str`, got `int` - at `$.page.url`",
        ),
        (
            b'{"site": "news", "page": {"url": "x", "viewport": "watch"}}',
            400,
            "Expected one of mobile, tablet, desktop, got 'watch' - at `$.page.viewport`",
        ),
        (b'{"site": "news", "page": {"url": "x"}, "call": "' + b"c" * 65 + b'"}', 400, "$.call"),
        (b'{"site": "nope", "page": {"url": "x"}}', 404, "site: no site named 'nope'"),
        (b'{"site": "news", "page": {"url": "' + b"x" * 17000 + b'"}}', 413, "at most 16384 bytes"),
        (b'{"site": "news", "page": {"url": "https://[::1/x"}}', 400, "$.page.url: expected a URL"),
        # PostgreSQL refuses NUL: stored, it would fail every record of its group.
        (b'{"site": "news", "page": {"url": "https://x/\\u0000"}}', 400, "$.page.url"),
        (b'{"site": "news", "page": {"url": "x"}, "identify": "a\\u0000"}', 400, "$.identify"),
        (
            b'{"site": "news", "page": {"url": "x"}, "events": [{"name": "\\u0000"}]}',
            400,
            "$.events[0].name",
        ),
    ],
)
def test_bad_decide_bodies_get_a_4xx_that_names_the_field(
    client: TestClient, body: bytes, status: int, message: str
) -> None:
    response = client.post("/v1/decide", content=body, headers={"origin": NEWS})
    assert response.status_code == status
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"site": "news", "events": []}, "Expected `array` of length >= 1 - at `$.events`"),
        (
            {"site": "news", "events": [{"type": "explode"}]},
            "Expected one of impression, click, dismiss, convert, event, got 'explode'"
            " - at `$.events[0].type`",
        ),
        ({"site": "news", "events": [{"type": "click", "at": -1}]}, "$.events[0].at"),
        ({"site": "news", "events": [{"type": "event", "id": "short"}]}, "$.events[0].id"),
        ({"site": "news", "events": [{"type": "event", "id": "not/url-safe"}]}, "$.events[0].id"),
    ],
)
def test_bad_event_bodies(client: TestClient, body: dict[str, Any], message: str) -> None:
    response = client.post("/v1/events", json=body, headers={"origin": NEWS})
    assert response.status_code == 400 and message in response.json()["error"]


def test_other_origins_are_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/decide", json={"site": "news", "page": {"url": "x"}}, headers={"origin": SHOP}
    )
    assert response.status_code == 403
    assert (
        response.json()["error"]
        == "origin: 'https://shop.example' is not one of the origins of site 'news'"
    )
    assert "access-control-allow-origin" not in response.headers


def test_preflight_only_for_known_origins(client: TestClient) -> None:
    ok = client.options(
        "/v1/decide", headers={"origin": NEWS, "access-control-request-method": "POST"}
    )
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == NEWS
    assert (
        client.options("/v1/events", headers={"origin": "https://evil.example"}).status_code == 403
    )


def test_the_tag_is_served_cached_and_compressed(client: TestClient) -> None:
    plain = client.get("/cue.js", headers={"accept-encoding": "identity"})
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/javascript")
    assert "v1/decide" in plain.text  # beside the script, wherever it is served
    zipped = client.get("/cue.js", headers={"accept-encoding": "gzip"})
    assert (
        zipped.headers["content-encoding"] == "gzip" and zipped.content == plain.content
    )  # httpx inflates
    assert int(zipped.headers["content-length"]) == len(gzip.compress(plain.content, 9, mtime=0))
    again = client.get("/cue.js", headers={"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert plain.headers["cache-control"] == "public, max-age=300"  # an upgrade arrives soon


def test_the_tag_in_brotli_and_under_its_versioned_name(client: TestClient) -> None:
    plain = client.get("/cue.js", headers={"accept-encoding": "identity"})
    raw = client.get("/cue.js", headers={"accept-encoding": "gzip, deflate, br"}, extensions={})
    assert raw.headers["content-encoding"] == "br"
    assert int(raw.headers["content-length"]) < len(gzip.compress(plain.content, 9))
    version = plain.headers["etag"].strip('"')
    pinned = client.get(f"/cue.{version}.js", headers={"accept-encoding": "identity"})
    assert pinned.content == plain.content
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    old = client.get("/cue.0000000000000000.js")
    assert (
        old.status_code == 404
        and old.json()["error"] == f"version: this server serves cue.{version}.js"
    )


def test_healthz(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert {k: health[k] for k in ("status", "sites", "spool")} == {
        "status": "ok",
        "sites": ["news", "shop"],
        "spool": 0,
    }
    assert health["config"]["version"] == 1 and health["worker"] == os.getpid()


def test_decision_records_sort_by_time(client: TestClient, settings: Settings) -> None:
    for _ in range(3):
        decide(client)
    db = sqlite3.connect(settings.data_dir / "sitecue.db")
    rows = db.execute("SELECT id, at FROM decisions ORDER BY id").fetchall()
    assert len(rows) == 3 and len({r[0] for r in rows}) == 3
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)


def test_an_oversized_body_without_a_length_is_cut_off(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"site": "news", "events": [' + b'{"type": "click"},' * 1000
        yield b'{"type": "click"}]}'

    response = client.post("/v1/events", content=chunks(), headers={"origin": NEWS})
    assert response.status_code == 413 and "at most 16384 bytes" in response.json()["error"]


def test_events_for_an_unknown_site(client: TestClient) -> None:
    body = {"site": "nope", "events": [{"type": "event", "name": "subscribe"}]}
    response = client.post("/v1/events", json=body, headers={"origin": NEWS})
    assert response.status_code == 404 and "site: no site named 'nope'" in response.json()["error"]


def test_unknown_paths_and_methods_answer_in_json(client: TestClient) -> None:
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "GET /v1/nothing: Not Found"
    wrong = client.put("/v1/decide")
    assert wrong.status_code == 405 and "this path takes POST" in wrong.json()["error"]
    assert wrong.headers["allow"] == "POST"


FRONT = {"url": f"{NEWS}/news/"}  # the newsletter experiment decides for every visitor here


def feedback(client: TestClient, *events: dict[str, Any], site: str = "news") -> Any:
    origin = NEWS if site == "news" else SHOP
    return client.post(
        "/v1/events", json={"site": site, "events": list(events)}, headers={"origin": origin}
    )


def stored_events(settings: Settings, kind: str) -> int:
    db = sqlite3.connect(settings.data_dir / "sitecue.db")
    return int(db.execute("SELECT COUNT(*) FROM events WHERE type = ?", (kind,)).fetchone()[0])


def test_feedback_only_on_decisions_the_server_made(client: TestClient, settings: Settings) -> None:
    (d,) = decide(client, page=FRONT, view="page-1")["decisions"]
    about = {"decision": d["id"], "rule": d["rule"], "variant": d["variant"]}
    other = next(v for v in ("short", "long", "control") if v != d["variant"])
    forged = [
        {**about, "decision": "A" * 24},  # made up
        {**about, "decision": d["id"][:-1] + ("B" if d["id"][-1] != "B" else "C")},  # altered
        {**about, "variant": other},  # the id, claimed for another variant
        {**about, "rule": "paywall-faq"},  # ... or another rule
    ]
    for bad in forged:
        response = feedback(client, {"type": "impression", **bad})
        assert response.status_code == 400, bad
        assert "$.events[0].decision" in response.json()["error"]
    assert feedback(client, {"type": "impression", **{**about, "variant": None}}).json() == {
        "error": "$.events[0].variant: expected the variant an impression is about;"
        " nothing in this batch was stored"
    }
    # Another visitor (another browser) cannot report on this one's decision.
    cookies = dict(client.cookies)
    client.cookies.clear()
    assert feedback(client, {"type": "click", **about}).status_code == 400
    client.cookies.update(cookies)
    # Nor can another site take it: its keys are its own.
    assert feedback(client, {"type": "click", **about}, site="shop").status_code == 400
    # A batch is all or nothing: one bad event refuses it, and its good ones are not stored.
    mixed = feedback(client, {"type": "impression", **about}, {"type": "dismiss", **forged[0]})
    assert mixed.status_code == 400 and "$.events[1].decision" in mixed.json()["error"]
    assert stored_events(settings, "impression") == 0
    assert feedback(client, {"type": "impression", **about}).status_code == 204
    assert feedback(client, {"type": "event", "name": "newsletter_signup"}).status_code == 204
    assert stored_events(settings, "impression") == stored_events(settings, "event") == 1


def test_a_re_decision_in_the_same_view_repeats_the_signed_id(client: TestClient) -> None:
    first = decide(client, page=FRONT, view="page-1")["decisions"][0]["id"]
    again = decide(client, page=FRONT, view="page-1", pageview=False)["decisions"][0]["id"]
    other = decide(client, page=FRONT, view="page-2")["decisions"][0]["id"]
    assert first == again != other and len(first) == 24


def test_event_times_more_than_a_day_back_or_a_minute_ahead_are_refused(
    client: TestClient, settings: Settings
) -> None:
    answer = decide(client, page=FRONT, view="page-1")
    (d,) = answer["decisions"]
    about = {"decision": d["id"], "rule": d["rule"], "variant": d["variant"]}
    now = answer["now"]  # the server's clock: the tag dates its events by it
    assert abs(now - time.time() * 1000) < 60_000
    for at in (now - 2 * 86_400_000, now - 86_400_000 - 60_000, now + 10 * 60_000):
        for event in ({"type": "impression", **about}, {"type": "event", "name": "subscribe"}):
            response = feedback(client, {**event, "at": at})
            assert response.status_code == 400, at
            assert response.json()["error"].startswith("$.events[0].at: expected a time")
    assert stored_events(settings, "impression") == stored_events(settings, "event") == 0
    assert (
        feedback(client, {"type": "impression", **about, "at": now - 3_600_000}).status_code == 204
    )
    db = sqlite3.connect(settings.data_dir / "sitecue.db")
    assert db.execute("SELECT at FROM events WHERE type = 'impression'").fetchall() == [
        (now - 3_600_000,)
    ]


def count_records(url: str) -> dict[str, int]:
    """How many decisions, and events of each type, the store holds for the news site."""

    async def main() -> dict[str, int]:
        store = await open_store(url)
        try:
            decisions = await store.decisions(DecisionQuery(site="news", limit=1000))
            visitors = sorted({d.visitor for d in decisions})
            counts = Counter(e.type for e in await store.events("news", visitors))
            return {"decisions": len(decisions), **counts}
        finally:
            await store.close()

    return asyncio.run(main())


def test_retried_requests_are_answered_again_and_stored_once(
    store_url: str, tmp_path: Path
) -> None:
    env = {
        "SITECUE_DATA_DIR": str(tmp_path),
        "SITECUE_SECRETS": SECRET,
        "SITECUE_CONFIG_DIR": str(CONFIG_DIR),
        "SITECUE_DB": store_url,
    }
    with TestClient(build_app(Settings.load(env=env)), base_url=NEWS) as client:

        def call(call_id: str, view: str) -> Any:
            answer = decide(
                client, page=FRONT, view=view, call=call_id, events=[{"name": "paywall_view"}]
            )
            return {k: v for k, v in answer.items() if k != "now"}

        # A browser's first call is retried (no cookie either time): the same visitor and
        # the same answer, stored once.
        first = call("first-call-0001", "page-1")
        client.cookies.clear()
        assert call("first-call-0001", "page-1") == first
        before = dict(client.cookies)
        second = call("second-call-0002", "page-2")
        after = dict(client.cookies)
        # A load balancer retries it with the cookie the browser had ...
        client.cookies.clear()
        client.cookies.update(before)
        assert call("second-call-0002", "page-2") == second
        # ... or the client does, with the cookie the first attempt set: nothing counts twice.
        client.cookies.clear()
        client.cookies.update(after)
        assert call("second-call-0002", "page-2") == second
        (d,) = second["decisions"]
        about = {"decision": d["id"], "rule": d["rule"], "variant": d["variant"]}
        for _ in range(2):  # a beacon sent twice
            feedback(
                client,
                {"type": "impression", "id": "impression-0001", **about},
                {"type": "event", "id": "goal-event-0001", "name": "newsletter_signup"},
            )
        # Two paywall views in the cookie, not three or four: the FAQ (three) is not due yet.
        third = decide(client, page={"url": f"{NEWS}/news/articles/1"}, view="page-3")
        assert [x["rule"] for x in third["decisions"]] == []
    counts = count_records(store_url)
    assert counts == {"decisions": 3, "trigger": 2, "impression": 1, "event": 1}


def test_two_sites_on_one_cookie_path_do_not_read_each_other(client: TestClient) -> None:
    shop = decide(client, "shop", SHOP, page={"url": f"{SHOP}/shop/"}, identify="customer-77")
    assert shop["identified"] is True
    news = decide(client)  # the same cookies, on the same path: the shop's state
    assert news["identified"] is False and news["visitor"] == shop["visitor"]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.codec.rejected == {"other site": 1}
    assert decide(client)["identified"] is False  # news now has a state of its own


def state_cookie(response: Any) -> str:
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith("sc_s=")]
    return str(cookie.split(";")[0])


def test_a_campaign_dismissed_at_the_cookie_cap_stays_dismissed(
    settings: Settings, tmp_path: Path
) -> None:
    """Twenty campaigns with long ids, each dismissed in turn: their dismissals do not all
    fit the cookie. The latest always stays; the oldest give way, counted."""
    config = tmp_path / "config"
    (config / "sites").mkdir(parents=True)
    ids = [f"campaign-{i:02d}-" + "x" * 50 for i in range(20)]
    site = {
        "site": "campaigns",
        "origins": [NEWS],
        "rules": [
            {
                "id": rule_id,
                "placement": {"type": "inline", "selector": f"#slot-{i}"},
                "when": {"page.path": {"$regex": f"^/r{i}$"}},
                "limit": {"stop_after": ["dismiss"]},
                "variants": [{"id": "a", "weight": 100, "widget": None}],
            }
            for i, rule_id in enumerate(ids)
        ],
    }
    (config / "sites" / "campaigns.json").write_text(json.dumps(site))
    with TestClient(
        build_app(Settings(config, settings.data_dir, settings.db, settings.secrets)),
        base_url=NEWS,
    ) as client:

        def shown(i: int) -> list[Any]:
            body = {"site": "campaigns", "page": {"url": f"{NEWS}/r{i}"}}
            response = client.post("/v1/decide", json=body, headers={"origin": NEWS})
            assert len(state_cookie(response)) <= MAX_COOKIE_BYTES
            return list(response.json()["decisions"])

        start = time.time_ns() // 1_000_000 - 60_000  # in order, within the accepted window
        for i, rule_id in enumerate(ids):
            (d,) = shown(i)
            dismiss = {"type": "dismiss", "decision": d["id"], "rule": rule_id, "variant": "a"}
            response = client.post(
                "/v1/events",
                json={"site": "campaigns", "events": [{**dismiss, "at": start + i}]},
                headers={"origin": NEWS},
            )
            assert len(state_cookie(response)) <= MAX_COOKIE_BYTES
            assert shown(i) == [], f"{rule_id} shows again right after its dismissal"
        assert shown(19) == [] and shown(18) == []  # the latest stay dismissed
        assert [d["rule"] for d in shown(0)] == [ids[0]]  # the oldest gave way
        evictions = client.app.state.runtime.metrics.evictions  # type: ignore[attr-defined]
        assert evictions[("campaigns", "dismissal")] > 0


# --- event values and page data ------------------------------------------------------------

VALUES = "https://values.example"
LAB = Path(__file__).parent / "browser" / "lab"


@pytest.fixture
def values_client(tmp_path: Path) -> Iterator[TestClient]:
    """The app with the lab's "values" site: a purchase that carries a value, summed by one
    rule, and page data read by another."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    shutil.copy(LAB / "sites" / "values.json", config / "sites")
    shutil.copy(LAB / "widgets" / "note.html", config / "widgets")
    env = {"SITECUE_DATA_DIR": str(tmp_path), "SITECUE_SECRETS": SECRET,
           "SITECUE_CONFIG_DIR": str(config)}  # fmt: skip
    with TestClient(build_app(Settings.load(env=env)), base_url=VALUES) as client:
        yield client


def values_decide(client: TestClient, **body: Any) -> Any:
    return decide(client, "values", VALUES, **body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"events": [{"name": "purchase", "value": "59.9"}]}, "- at `$.events[0].value`"),
        ({"events": [{"name": "purchase", "value": 1e10}]}, "- at `$.events[0].value`"),
        ({"events": [{"name": "purchase", "value": "__inf__"}]}, "- at `$.events[0].value`"),
        ({"events": [{"name": "purchase", "value": [1]}]}, "- at `$.events[0].value`"),
        ({"page": {"url": VALUES, "data": {"cart_value": "520"}}}, "$.page.data.cart_value:"),
        ({"page": {"url": VALUES, "data": {"cart_value": "__inf__"}}}, "$.page.data.cart_value:"),
        ({"page": {"url": VALUES, "data": {"cart_value": "__huge__"}}}, "$.page.data.cart_value:"),
        ({"page": {"url": VALUES, "data": {"logged_in": "yes"}}}, "$.page.data.logged_in:"),
        ({"page": {"url": VALUES, "data": {"category": "x" * 300}}}, "$.page.data.category:"),
        ({"page": {"url": VALUES, "data": {f"k{i}": 1 for i in range(101)}}}, "`$.page.data`"),
        ({"page": {"url": VALUES, "data": {"k" * 129: 1}}}, "at `key` in `$.page.data`"),
        ({"page": {"url": VALUES, "data": []}}, "`$.page.data`"),
    ],
)
def test_bad_values_and_page_data_get_a_400_naming_the_field(
    values_client: TestClient, body: dict[str, Any], message: str
) -> None:
    payload = {"site": "values", "page": {"url": VALUES}, **body}
    text = json.dumps(payload).replace('"__inf__"', "1e400").replace('"__huge__"', "9" * 400)
    content = text.encode()
    response = values_client.post("/v1/decide", content=content, headers={"origin": VALUES})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert "set-cookie" not in response.headers  # nothing was counted


def test_purchases_add_up_and_page_data_decides_and_the_tag_is_told_what_is_read(
    values_client: TestClient, tmp_path: Path
) -> None:
    first = values_decide(values_client, page={"url": VALUES, "data": {"unread": {"a": [1]}}})
    assert first["data"] == ["cart_value"] and first["decisions"] == []
    assert [t["name"] for t in first["triggers"]] == ["purchase"]
    bought = values_decide(values_client, events=[{"name": "purchase", "value": 59.9}])
    assert bought["decisions"] == []
    more = values_decide(values_client, events=[{"name": "purchase", "value": 40.2}])
    assert [d["rule"] for d in more["decisions"]] == ["big-spender"]
    cart = values_decide(
        values_client, page={"url": VALUES, "data": {"cart_value": 520, "logged_in": True}}
    )
    assert sorted(d["rule"] for d in cart["decisions"]) == ["big-cart", "big-spender"]
    assert [d["rule"] for d in values_decide(values_client)["decisions"]] == ["big-spender"]
    db = sqlite3.connect(tmp_path / "sitecue.db")  # stored for a rebuild on another device
    stored = "SELECT name, value FROM events WHERE type = 'trigger' ORDER BY id"
    assert db.execute(stored).fetchall() == [("purchase", 59.9), ("purchase", 40.2)]
