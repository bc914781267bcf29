"""The dashboard's sign-in and its defences: the cookie holds a server-side session (never the
key) on the dashboard's path; sign-out ends it on the server; forms take posts from the
dashboard's own origin only; and every response carries strict security headers."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from forms_site import FORMS, write_config
from sitecue import dashboard, panels, sessions
from sitecue.app import build_app
from sitecue.cli import main
from sitecue.decide import Verdict
from sitecue.settings import Settings
from sitecue.store import DecisionRecord, EventRecord

OWN = {"origin": ORIGIN}


def sign_in(client: TestClient, key: str, base: str = "/dashboard") -> str:
    response = client.post(f"{base}/login", data={"key": key}, headers=OWN, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == base
    cookie = response.headers["set-cookie"]
    assert f"Path={base};" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" in cookie  # the test client speaks https
    return cookie.split(";")[0].split("=", 1)[1]


def replay(client: TestClient, session: str, path: str = "/dashboard") -> str:
    """The dashboard as a browser holding ``session`` (only) sees it."""
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, session, domain="news.example", path=path)
    return client.get(path).text


def test_a_key_shows_its_sites_only(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    session = sign_in(client, new_key(capsys, "news"))
    assert session
    page = client.get("/dashboard")  # the client keeps the cookie, as a browser would
    assert page.status_code == 200 and 'id="site-news"' in page.text
    assert 'id="site-shop"' not in page.text and "paywall-faq" in page.text


def test_recent_decisions_read_a_rule_without_a_verdict_as_not_matched(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The log keeps no verdict for a rule whose conditions failed (store.verdicts); the
    dashboard says so for each such rule of the site."""
    page = {"url": f"{ORIGIN}/news/articles/1.html"}
    answer = client.post("/v1/decide", json={"site": "news", "page": page}, headers=OWN)
    assert answer.status_code == 200
    sign_in(client, new_key(capsys, "news"))
    text = client.get("/dashboard").text
    assert '<div class="why">paywall-faq: not matched: conditions</div>' in text
    assert '<div class="why">newsletter: not matched: conditions</div>' in text


def test_the_cookie_holds_a_random_session_id_and_the_store_only_its_hash(
    client: TestClient, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news")
    session = sign_in(client, key)
    _, key_id, secret = key.split("_", 2)
    assert key_id not in session and secret not in session and len(session) >= 43

    def dump() -> str:
        db = sqlite3.connect(Path(env["SITECUE_DATA_DIR"]) / "sitecue.db")
        return "\n".join(db.iterdump())

    def hashed(session: str) -> str:
        return hashlib.sha256(session.encode()).hexdigest()

    assert session not in dump() and hashed(session) in dump()
    again = sign_in(client, key)  # a new session each time; this browser's old one ends
    assert again != session and hashed(again) in dump() and hashed(session) not in dump()


def test_a_tampered_session_shows_the_sign_in_form(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    session = sign_in(client, new_key(capsys, "news"))
    forged = session[:-2] + ("AA" if not session.endswith("AA") else "BB")
    page = replay(client, forged)
    assert 'name="key"' in page and "paywall-faq" not in page


def test_a_wrong_key_is_told_so_in_plain_words(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sign-in form speaks to a person: no HTTP header names or API error prefixes."""
    key = new_key(capsys, "news")
    assert main(["apikey", "revoke", key]) == 0
    unknown = "sck_0123456789ab_" + "x" * 32
    for typed, said in (
        ("sck_nope", "That is not an admin key. Paste the whole key that sitecue apikey create"),
        (unknown, "This admin key is not known here. Check that you pasted all of it"),
        (key, "This admin key was revoked. Ask whoever runs sitecue for a new one"),
    ):
        page = client.post("/dashboard/login", data={"key": typed}, headers=OWN)
        assert page.status_code == 200 and said in page.text
        assert "authorization" not in page.text.lower() and "Bearer" not in page.text
        assert "set-cookie" not in page.headers


def test_sign_out_ends_the_session_on_the_server(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    session = sign_in(client, new_key(capsys, "news"))
    response = client.post("/dashboard/logout", headers=OWN, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cleared = response.headers["set-cookie"]
    assert cleared.startswith("sc_admin=; Max-Age=0; Path=/dashboard;") and "HttpOnly" in cleared
    page = replay(client, session)  # the old cookie, kept and sent again
    assert 'name="key"' in page and "paywall-faq" not in page


def test_a_session_expires_after_twelve_hours(
    client: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = 1_790_000_000
    monkeypatch.setattr(sessions, "_now", lambda: now)
    session = sign_in(client, new_key(capsys, "news"))
    monkeypatch.setattr(sessions, "_now", lambda: now + sessions.LIFETIME_S - 1)
    assert "paywall-faq" in replay(client, session)
    monkeypatch.setattr(sessions, "_now", lambda: now + sessions.LIFETIME_S)
    assert "paywall-faq" not in replay(client, session)


# Headers a cross-site form post (or a forged one) might carry; none may sign in or out.
FOREIGN = [
    {"origin": "https://evil.example"},
    {"origin": "null"},  # a sandboxed frame, or a redirect that hid where it came from
    {"origin": "http://news.example"},  # the same host over plain http
    {"origin": "https://news.example.evil.example"},
    {"origin": "https://news.example:8443"},
    {"origin": "https://evil.example", "sec-fetch-site": "same-origin"},  # Origin decides
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},  # a sibling subdomain may be someone else's
    {"referer": "https://evil.example/dashboard"},
    {"referer": "not a url"},
    {},  # nothing says where it came from
]
# What the dashboard's own pages send, in every form browsers use.
OWN_FORMS = [
    {"origin": ORIGIN},
    {"origin": "HTTPS://News.Example:443"},
    {"sec-fetch-site": "same-origin"},
    {"referer": f"{ORIGIN}/dashboard"},
]


@pytest.mark.parametrize("headers", FOREIGN)
def test_sign_in_refuses_a_post_from_another_origin(
    client: TestClient, capsys: pytest.CaptureFixture[str], headers: dict[str, str]
) -> None:
    key = new_key(capsys, "news")
    response = client.post("/dashboard/login", data={"key": key}, headers=headers)
    assert response.status_code == 403 and "set-cookie" not in response.headers
    assert re.match(r"(origin|referer|sec-fetch-site): ", response.json()["error"])
    assert "paywall-faq" not in client.get("/dashboard").text


@pytest.mark.parametrize("headers", FOREIGN)
def test_sign_out_refuses_a_post_from_another_origin(
    client: TestClient, capsys: pytest.CaptureFixture[str], headers: dict[str, str]
) -> None:
    session = sign_in(client, new_key(capsys, "news"))
    response = client.post("/dashboard/logout", headers=headers, follow_redirects=False)
    assert response.status_code == 403 and "set-cookie" not in response.headers
    assert "paywall-faq" in replay(client, session)  # still signed in


@pytest.mark.parametrize("headers", OWN_FORMS)
def test_the_dashboards_own_forms_are_accepted(
    client: TestClient, capsys: pytest.CaptureFixture[str], headers: dict[str, str]
) -> None:
    key = new_key(capsys, "news")
    response = client.post(
        "/dashboard/login", data={"key": key}, headers=headers, follow_redirects=False
    )
    assert response.status_code == 303
    assert client.post("/dashboard/logout", headers=headers).status_code == 200  # the form


@pytest.fixture
def mounted(env: dict[str, str]) -> Iterator[TestClient]:
    """sitecue behind a path prefix, as the demo (and a site's reverse proxy) puts it."""
    sitecue = build_app(Settings.load(env=env))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with sitecue.router.lifespan_context(sitecue):
            yield

    site = Starlette(routes=[Mount("/sc", app=sitecue)], lifespan=lifespan)
    with TestClient(site, base_url=ORIGIN) as client:
        yield client


def test_under_a_path_prefix_the_origin_is_the_sites_and_the_cookie_the_prefixs(
    mounted: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    session = sign_in(mounted, new_key(capsys, "news"), base="/sc/dashboard")
    assert "paywall-faq" in replay(mounted, session, "/sc/dashboard")
    page = mounted.get("/sc/dashboard")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    refused = mounted.post("/sc/dashboard/logout", headers={"referer": "https://evil.example/sc"})
    assert refused.status_code == 403


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}


def assert_locked_down(headers: httpx.Headers) -> None:
    assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    directives = headers["content-security-policy"].split("; ")
    policy = dict(directive.partition(" ")[::2] for directive in directives)
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'" and policy["base-uri"] == "'none'"
    assert "unsafe-inline" not in policy["style-src"] and "script-src" not in policy


def test_every_dashboard_response_carries_the_security_headers(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news")
    answers = [
        client.get("/dashboard"),  # the sign-in form
        client.post("/dashboard/login", data={"key": "sck_nope"}, headers=OWN),  # told so
        client.post("/dashboard/login", data={"key": key}, headers={}),  # 403
        client.post("/dashboard/login", content=b"k" * 5000, headers=OWN),  # 413
        client.get("/dashboard/login"),  # 405
        client.get("/dashboard/nothing-here"),  # 404
        client.post(
            "/dashboard/login", data={"key": key}, headers=OWN, follow_redirects=False
        ),  # 303 with the cookie
        client.get("/dashboard"),  # the data
        client.post("/dashboard/logout", headers=OWN, follow_redirects=False),  # 303
    ]
    assert [a.status_code for a in answers] == [200, 200, 403, 413, 405, 404, 303, 200, 303]
    assert "paywall-faq" in answers[7].text
    for answer in answers:
        assert_locked_down(answer.headers)
    assert "content-security-policy" not in client.get("/healthz").headers  # the dashboard's


def test_the_policy_lets_the_pages_own_css_apply_and_nothing_else(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_in_page = client.get("/dashboard")
    sign_in(client, new_key(capsys, "news"))
    page = client.get("/dashboard")
    assert '<svg class="chart"' in page.text
    for answer in (sign_in_page, page):
        styles = re.findall(r"<style>(.*?)</style>", answer.text, re.DOTALL)
        assert styles
        policy = answer.headers["content-security-policy"]
        for css in styles:
            digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy
        # Nothing the policy would block: no script, no style attribute, no other <style>.
        assert "<script" not in answer.text and not re.search(r"\sstyle=", answer.text)
        assert answer.text.count("<style") == len(styles)


def test_a_rule_with_a_form_shows_its_submission_count_and_the_latest_ten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "dashboard-forms-secret-0000",
        "SITECUE_CONFIG_DIR": str(write_config(tmp_path)),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    key = new_key(capsys, "forms")
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        for i in range(12):
            client.cookies.clear()  # a browser each, as the per-browser rate limit expects
            decided = client.post(
                "/v1/decide",
                json={"site": "forms", "page": {"url": f"{FORMS}/signup"}},
                headers={"origin": FORMS},
            ).json()["decisions"]
            [d] = [d for d in decided if d["rule"] == "newsletter"]
            body = {"site": "forms", "decision": d["id"], "rule": "newsletter",
                    "variant": "short", "fields": {"email": f"reader{i:02d}@example.com",
                                                   "interests": ["sport", "culture"],
                                                   "consent": True}}  # fmt: skip
            assert client.post("/v1/forms", json=body, headers={"origin": FORMS}).status_code == 200
        client.cookies.clear()
        sign_in(client, key)
        page = client.get("/dashboard").text
    assert "Submissions: newsletter" in page and "12 submissions; the latest 10" in page
    assert "Submissions: plain" not in page  # no form, no submissions table
    assert "reader11@example.com" in page and "reader02@example.com" in page
    assert "reader01@example.com" not in page  # the eleventh newest: not among the latest ten
    assert "interests: sport, culture" in page


def test_a_rule_has_a_preview_button_making_a_link_the_server_accepts(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    form = {"site": "shop", "rule": "free-express", "variant": "slide-in",
            "url": "https://shop.example/shop/cart.html"}  # fmt: skip
    assert client.post("/dashboard/preview", data=form, headers=OWN).status_code == 401
    sign_in(client, new_key(capsys, "shop"))
    page = client.get("/dashboard").text
    assert 'action="/dashboard/preview"' in page and 'value="free-express"' in page
    made = client.post("/dashboard/preview", data=form, headers=OWN)
    assert made.status_code == 200, made.text
    found = re.search(r'class="preview-link" href="([^"]+)"', made.text)
    assert found is not None
    link = found[1].replace("&amp;", "&")
    assert link.startswith("https://shop.example/shop/cart.html?sc_preview=")
    body = {"site": "shop", "page": {"url": link}}
    answer = client.post("/v1/decide", json=body, headers={"origin": "https://shop.example"})
    assert answer.json()["preview"]["rule"] == "free-express"
    # CSRF: only from the dashboard's own pages; and only what the key and the site allow.
    evil = {"origin": "https://evil.example"}
    assert client.post("/dashboard/preview", data=form, headers=evil).status_code == 403
    for change, status, says in (
        ({"site": "news", "rule": "paywall-faq", "variant": "faq"}, 403, "site:"),
        ({"rule": "nope"}, 400, "rule:"),
        ({"variant": "nope"}, 400, "variant:"),
        ({"url": "https://evil.example/"}, 400, "url:"),
    ):
        refused = client.post("/dashboard/preview", data={**form, **change}, headers=OWN)
        assert refused.status_code == status and refused.json()["error"].startswith(says)


# Reports: fixed records over several days, written through the store's writer (which keeps
# the rollups the panels read), at fixed times, with fixed ids.
OCT_1 = (date(2026, 10, 1) - date(1970, 1, 1)).days  # as a UTC day number
DAY = 86_400_000
PERIOD = "from=2026-10-01&to=2026-10-30"


def _news_and_shop_history() -> tuple[list[EventRecord], list[DecisionRecord]]:
    """news/paywall-faq, an experiment: 5 days of 8 visitors shown faq and 2 the control;
    the first faq visitor of each day clicks, the first two subscribe (9.50 each), and one
    control visitor subscribes on the first day. news/newsletter: nothing. shop/free-express
    (one variant): 3 days of 100 visitors, one purchase (50.00) a day: 1%."""
    events: list[EventRecord] = []
    decisions: list[DecisionRecord] = []
    for day in range(5):
        for j in range(10):
            at = (OCT_1 + day) * DAY + 3_600_000 + j * 60_000
            visitor, decision = f"news-{day}-{j}", f"{at:011x}-0000000a-{j:x}"
            variant = "faq" if j < 8 else "control"
            verdicts = [
                Verdict("paywall-faq", True, variant=variant),
                Verdict("newsletter", False, reason="condition: page.path"),
            ]
            decisions.append(
                DecisionRecord(decision, "news", visitor, at, "https://news.example/", verdicts)
            )
            about = {"site": "news", "visitor": visitor, "rule": "paywall-faq",
                     "variant": variant, "decision": decision}  # fmt: skip
            if variant == "faq":
                events.append(EventRecord(type="impression", at=at + 1000, **about))
            if j == 0:
                events.append(EventRecord(type="click", at=at + 2000, **about))
            if j in (0, 1) or (j == 8 and day == 0):
                events.append(
                    EventRecord("news", visitor, "event", at + 60_000, name="subscribe", value=9.5)
                )
    for day in range(3):
        for j in range(100):
            at = (OCT_1 + day) * DAY + 7_200_000 + j * 1000
            visitor, decision = f"shop-{day}-{j}", f"{at:011x}-0000000b-{j:x}"
            verdicts = [Verdict("free-express", True, variant="slide-in")]
            decisions.append(
                DecisionRecord(decision, "shop", visitor, at, "https://shop.example/", verdicts)
            )
            about = {"site": "shop", "visitor": visitor, "rule": "free-express",
                     "variant": "slide-in", "decision": decision}  # fmt: skip
            events.append(EventRecord(type="impression", at=at + 1000, **about))
            if j == 0:
                events.append(
                    EventRecord("shop", visitor, "event", at + 60_000, name="purchase", value=50.0)
                )
    return events, decisions


@pytest.fixture
def reported(client: TestClient) -> TestClient:
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    client.portal.call(store.write, *_news_and_shop_history())  # type: ignore[union-attr]
    return client


def _panel(page: str, site: str, rule: str) -> str:
    start = page.index(f'aria-labelledby="report-{site}-{rule}-heading"')
    return page[start : page.index('<p class="csv">', start)]


def _cells(panel: str, row: str) -> list[str]:
    found = re.search(rf"<tr[^>]*><td>{row}</td>(.*?)</tr>", panel, re.DOTALL)
    assert found is not None, row
    return re.findall(r'<td class="num">([^<]*)</td>', found[1])


def test_every_rule_of_every_site_has_a_report_panel_with_its_totals(
    reported: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_in(reported, new_key(capsys, "news", "shop"))
    page = reported.get(f"/dashboard?{PERIOD}").text
    assert "Reports, 2026-10-01 to 2026-10-30 (UTC)" in page
    for site, rules in (
        ("news", ["paywall-faq", "newsletter"]),
        ("shop", ["loyalty-offer", "first-purchase", "free-express", "exit-discount"]),
    ):
        for rule in rules:
            panel = _panel(page, site, rule)
            assert '<svg class="report-chart" role="img"' in panel
            assert f'<title id="report-{site}-{rule}-title">Report of {rule}' in panel
            assert f'aria-label="Totals of {rule}"' in panel
    faq = _panel(page, "news", "paywall-faq")
    # Decisions, visitors, impressions, clicks, CTR, conversions, rate, revenue, per visitor.
    assert _cells(faq, "faq") == ["40", "40", "40", "5", "12.50%", "10", "25.00%", "95.00", "2.38"]
    assert _cells(faq, "control") == ["10", "10", "0", "0", "–", "1", "10.00%", "9.50", "0.95"]
    assert _cells(faq, "All variants") == [
        "50",
        "50",
        "40",
        "5",
        "12.50%",
        "11",
        "22.00%",
        "104.50",
        "2.09",
    ]
    # An experiment: a line and an interval band per variant, the control in grey.
    assert faq.count('class="band"') == 2 and faq.count('class="rate"') == 2
    assert 'stroke="#555555"' in faq and ">95% interval</text>" in faq
    assert "conversion rate to date" in faq
    assert "2026-10-01: 8 impressions" in faq and "faq, 2026-10-05: 25.00%" in faq
    # 30 days, 5 with data: a bar each; the rates to date hold from the first day on.
    assert faq.count('<rect class="bar"') == 5 and faq.count("<circle") == 2 * 30
    assert "control, 2026-10-01: 50.00%" in faq and "control, 2026-10-30: 10.00%" in faq
    assert "No data in this period" not in faq


def test_a_one_variant_rule_charts_its_daily_rate_on_an_axis_scaled_to_it(
    reported: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_in(reported, new_key(capsys, "shop"))
    express = _panel(reported.get(f"/dashboard?{PERIOD}").text, "shop", "free-express")
    rate_labels = re.findall(
        r'<text x="662[.0]*" y="[\d.]+" fill="#555" font-size="11">([^<]+)</text>', express
    )
    assert rate_labels == ["0%", "0.2%", "0.4%", "0.6%", "0.8%", "1.0%", "1.2%"]  # not 0–100%
    assert 'class="band"' not in express and express.count('class="rate"') == 1
    assert "conversion rate of the day&#39;s new visitors" in express
    assert ">120</text>" in express  # 100 impressions a day on a 0–120 axis
    assert _cells(express, "slide-in") == [
        "300",
        "300",
        "300",
        "0",
        "0.00%",
        "3",
        "1.00%",
        "150.00",
        "0.50",
    ]
    assert "All variants" not in express  # one variant, one row


def test_a_rule_without_data_says_so(
    reported: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(reported, new_key(capsys, "news"))
    newsletter = _panel(reported.get(f"/dashboard?{PERIOD}").text, "news", "newsletter")
    assert "No data in this period" in newsletter and '<rect class="bar"' not in newsletter
    assert "<circle" not in newsletter
    assert _cells(newsletter, "short") == ["0", "0", "0", "0", "–", "0", "–", "0.00", "–"]
    # The default period: the 30 days up to today (frozen: no race with midnight).
    monkeypatch.setattr(panels, "today", lambda: date(2026, 10, 30))
    page = reported.get("/dashboard").text
    assert "Reports, 2026-10-01 to 2026-10-30 (UTC)" in page
    assert _cells(_panel(page, "news", "paywall-faq"), "All variants")[0] == "50"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("from=2026-13-01", "from: expected a date as YYYY-MM-DD"),
        ("to=20261001", "to: expected a date as YYYY-MM-DD"),
        ("from=2026-10-02&to=2026-10-01", "from: expected a date on or before to"),
        ("from=2025-01-01&to=2026-10-01", "to: expected at most 400 days"),
    ],
)
def test_a_bad_period_is_refused_naming_the_parameter(
    reported: TestClient, capsys: pytest.CaptureFixture[str], query: str, says: str
) -> None:
    sign_in(reported, new_key(capsys, "news"))
    answer = reported.get(f"/dashboard?{query}")
    assert answer.status_code == 400 and answer.json()["error"].startswith(says)


def test_the_report_csv_link_works_from_the_signed_in_dashboard_only(
    reported: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = f"/dashboard/report.csv?site=news&rule=paywall-faq&{PERIOD}"
    refused = reported.get(csv_path)
    assert refused.status_code == 401 and "text/csv" not in refused.headers["content-type"]
    key = new_key(capsys, "news")
    sign_in(reported, key)
    page = reported.get(f"/dashboard?{PERIOD}").text
    link = re.search(r'<a href="([^"]+)" download>CSV of the paywall-faq report</a>', page)
    assert link is not None and link[1].replace("&amp;", "&") == csv_path
    answer = reported.get(csv_path)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == (
        'attachment; filename="news-paywall-faq-2026-10-01-2026-10-30.csv"'
    )
    assert_locked_down(answer.headers)
    # The same bytes as the API gives a bearer of the key.
    api = reported.get(
        f"/v1/reports?site=news&rule=paywall-faq&{PERIOD}&format=csv",
        headers={"authorization": f"Bearer {key}"},
    )
    assert api.status_code == 200 and answer.content == api.content
    lines = answer.text.splitlines()
    assert len(lines) == 1 + 30 * 2  # a header, then every day of the period per variant
    assert any(line.startswith("2026-10-01,faq,8,8,8,1,") for line in lines)
    for query, status, says in (
        ("site=shop&rule=free-express", 403, "site:"),  # not this key's
        ("site=nowhere&rule=x", 403, "site:"),  # no telling which sites exist
        ("site=news&rule=nope", 404, "rule:"),
        ("site=news&rule=paywall-faq&from=yesterday", 400, "from:"),
    ):
        refused = reported.get(f"/dashboard/report.csv?{query}")
        assert refused.status_code == status and refused.json()["error"].startswith(says)


def test_a_cleared_date_in_the_period_form_means_the_default(
    reported: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser sends a cleared date field as ``from=``: the default, not a 400."""
    sign_in(reported, new_key(capsys, "news"))
    monkeypatch.setattr(panels, "today", lambda: date(2026, 10, 30))
    for query in ("from=&to=2026-10-30", "from=&to=", "from=2026-10-01&to="):
        answer = reported.get(f"/dashboard?{query}")
        assert answer.status_code == 200, query
        assert "Reports, 2026-10-01 to 2026-10-30 (UTC)" in answer.text, query


def test_an_experiment_whose_statistics_fail_does_not_take_the_page_down(
    reported: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dashboard.experiment_results

    async def failing(runtime: Any, site: Any, rule: Any) -> Any:
        if rule.id == "paywall-faq":
            raise ZeroDivisionError("float division by zero")
        return await real(runtime, site, rule)

    monkeypatch.setattr(dashboard, "experiment_results", failing)
    sign_in(reported, new_key(capsys, "news"))
    answer = reported.get(f"/dashboard?{PERIOD}")
    assert answer.status_code == 200
    page = answer.text
    assert "<h3>Experiment: paywall-faq</h3>" in page and "Results unavailable" in page
    assert 'aria-label="Results of newsletter"' in page  # the other experiment is shown
    assert _cells(_panel(page, "news", "paywall-faq"), "faq")[0] == "40"  # and the reports
