"""Visitors identified by email tokens through the real app: attributes unlock rules, a
person's browsers share their history, and a bad token identifies nobody."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, NamedTuple

import httpx2
import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.app import build_app
from sitecue.decide import Verdict
from sitecue.ids import record_id
from sitecue.settings import Settings
from sitecue.store import DecisionRecord, EventRecord
from sitecue.store.base import HISTORY_BROWSERS, HISTORY_RECORDS
from sitecue.tokens import TokenCodec

SHOP = "https://shop.example"


def admin(client: TestClient, key: str, method: str, path: str, **kw: Any) -> Any:
    headers = {"authorization": f"Bearer {key}", **kw.pop("headers", {})}
    response = client.request(method, path, headers=headers, **kw)
    assert response.status_code < 300, response.text
    return response


def tokens(client: TestClient, key: str, site: str, *contacts: str) -> list[str]:
    body = {"site": site, "contacts": list(contacts), "ttl": "7d"}
    answer = admin(client, key, "POST", "/v1/tokens", json=body).json()
    assert answer["expires"] > time.time() + 6 * 86_400
    return [t["token"] for t in answer["tokens"]]


def visit(
    client: TestClient, browser: str, site: str, path: str, events: list[str] = (), **extra: Any
) -> dict[str, Any]:  # type: ignore[assignment]
    """A page view from ``browser``, which keeps its cookies from one view to the next."""
    if client.cookies.get("sc_vid") != browser:
        client.cookies.clear()
        client.cookies.set("sc_vid", browser, domain="news.example")
    origin = SHOP if site == "shop" else ORIGIN
    body = {"site": site, "page": {"url": f"{origin}{path}"}, **extra}
    body["events"] = [{"name": e} for e in events]
    response = client.post("/v1/decide", json=body, headers={"origin": origin})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def put_contact(client: TestClient, key: str, contact: str, attributes: dict[str, Any]) -> None:
    body = {"attributes": attributes}
    admin(client, key, "PUT", f"/v1/contacts/{contact}", params={"site": "shop"}, json=body)


def offers(answer: dict[str, Any]) -> list[str]:
    return [d["rule"] for d in answer["decisions"]]


@pytest.fixture
def shop_key(capsys: pytest.CaptureFixture[str]) -> str:
    return new_key(capsys, "shop", "news")


def test_scenario_2_customers_get_the_loyalty_offer_everyone_else_the_first_purchase(
    client: TestClient, shop_key: str
) -> None:
    put_contact(client, shop_key, "c-1", {"customer": True, "loyalty_tier": "gold"})
    put_contact(client, shop_key, "c-2", {"customer": False})
    customer, prospect = tokens(client, shop_key, "shop", "c-1", "c-2")

    stranger = visit(client, "stranger-00000000001", "shop", "/shop/")
    assert offers(stranger) == ["first-purchase"] and not stranger["identified"]
    known = visit(client, "customer-browser-001", "shop", "/shop/", token=customer)
    assert offers(known) == ["loyalty-offer"] and known["identified"]
    # The attributes travel in the cookie: the next page view reads no token and no database.
    assert offers(visit(client, "customer-browser-001", "shop", "/shop/")) == ["loyalty-offer"]
    assert offers(visit(client, "prospect-browser-001", "shop", "/shop/", token=prospect)) == [
        "first-purchase"
    ]


def test_page_javascript_links_but_never_unlocks_attributes(
    client: TestClient, shop_key: str
) -> None:
    put_contact(client, shop_key, "c-1", {"customer": True})
    claimed = visit(client, "claimer-000000000001", "shop", "/shop/", identify="c-1")
    assert claimed["identified"] and offers(claimed) == ["first-purchase"]
    linked = admin(client, shop_key, "GET", "/v1/contacts/c-1", params={"site": "shop"}).json()
    assert linked["visitors"] == [] and linked["unverified"] == 1  # a claim, not a browser


def test_the_person_s_browsers_share_their_history(client: TestClient, shop_key: str) -> None:
    """Two paywall views on the laptop, then the email link opened on the phone: one more
    paywall there is the third, and the FAQ shows."""
    (token,) = tokens(client, shop_key, "news", "reader-7")
    article = "/news/articles/1.html"
    visit(client, "laptop-0000000000007", "news", article, ["paywall_view"])
    visit(client, "laptop-0000000000007", "news", article, ["paywall_view"], token=token)
    phone = visit(client, "phone-00000000000007", "news", article, token=token)
    assert phone["identified"] and offers(phone) == []
    third = visit(client, "phone-00000000000007", "news", article, ["paywall_view"])
    assert offers(third) == ["paywall-faq"]
    history = admin(
        client, shop_key, "GET", "/v1/decisions", params={"site": "news", "contact": "reader-7"}
    ).json()["items"]
    assert {d["visitor"] for d in history} == {"laptop-0000000000007", "phone-00000000000007"}
    assert len(history) == 4  # the laptop's anonymous page view counts in the profile


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda t, c: t[:20] + ("A" if t[20] != "A" else "B") + t[21:], "bad signature"),
        (lambda t, c: c.mint("shop", "c-1", int(time.time()) + 60), "bad signature"),  # shop's
        (lambda t, c: c.mint("news", "c-1", int(time.time()) - 1), "expired"),
        (lambda t, c: t[: len(t) // 8 * 4], "bad signature"),  # whole base64 groups
        (lambda t, c: t + "=", "malformed"),
        (lambda t, c: "YzE.ta7mdc." + t, "bad signature"),  # a forged token of the old form
    ],
)
def test_a_bad_token_identifies_nobody_and_is_recorded(
    client: TestClient, shop_key: str, env: dict[str, str], tamper: Any, reason: str
) -> None:
    (good,) = tokens(client, shop_key, "news", "c-1")
    codec = TokenCodec(env["SITECUE_SECRETS"].split(","))
    answer = visit(client, "visitor-bad-token-01", "news", "/news/", token=tamper(good, codec))
    assert answer["identified"] is False
    metrics = admin(client, shop_key, "GET", "/metrics").text
    assert f'sitecue_rejected_total{{kind="token",reason="{reason}"}} 1' in metrics
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    events = client.portal.call(store.events, "news", ["visitor-bad-token-01"])
    assert [(e.type, e.name) for e in events] == [("token rejected", reason)]


def test_tokens_for_a_campaign_list_come_back_as_csv(client: TestClient, shop_key: str) -> None:
    ids = "\n".join(f"customer-{i}" for i in range(2000))
    response = admin(
        client,
        shop_key,
        "POST",
        "/v1/tokens",
        params={"site": "news", "ttl": "30d"},
        content="id\n" + ids,
        headers={"content-type": "text/csv"},
    )
    rows = response.text.splitlines()
    assert rows[0] == "contact,token" and len(rows) == 2001
    contact, token = rows[1].split(",")
    assert contact == "customer-0"
    assert visit(client, "csv-visitor-00000001", "news", "/news/", token=token)["identified"]


def test_bad_token_requests_are_named(client: TestClient, shop_key: str) -> None:
    headers = {"authorization": f"Bearer {shop_key}"}
    for body, message in (
        ({"site": "news", "contacts": []}, "Expected `array` of length >= 1 - at `$.contacts`"),
        ({"site": "news", "contacts": ["c"], "ttl": "forever"}, "ttl: expected a lifetime"),
        ({"site": "nope", "contacts": ["c"]}, "may not act on nope"),
    ):
        response = client.post("/v1/tokens", json=body, headers=headers)
        assert 400 <= response.status_code < 500 and message in response.json()["error"]


def dismiss(client: TestClient, answer: dict[str, Any], rule: str) -> None:
    (shown,) = [d for d in answer["decisions"] if d["rule"] == rule]
    feedback = {"type": "dismiss", "decision": shown["id"], "rule": rule}
    body = {"site": "shop", "events": [{**feedback, "variant": shown["variant"]}]}
    assert client.post("/v1/events", json=body, headers={"origin": SHOP}).status_code == 204


def test_a_claim_never_changes_what_the_person_sees_or_what_is_held_about_them(
    client: TestClient, shop_key: str
) -> None:
    """A browser that claims to be alice and dismisses the free-shipping offer does not
    dismiss it for alice, who arrives by her email link, nor appear in her export."""
    (link,) = tokens(client, shop_key, "shop", "alice")
    claimer = "claimer-000000000002"
    visit(client, claimer, "shop", "/shop/", identify="alice")
    cart = visit(client, claimer, "shop", "/shop/cart.html", ["add_to_cart"])
    dismiss(client, cart, "free-express")
    assert "free-express" not in offers(visit(client, claimer, "shop", "/shop/cart.html"))

    alice = visit(
        client, "alice-phone-00000001", "shop", "/shop/cart.html", ["add_to_cart"], token=link
    )
    assert alice["identified"] and "free-express" in offers(alice)
    export = admin(client, shop_key, "GET", "/v1/contacts/alice/export", params={"site": "shop"})
    held = export.json()
    assert held["contact"]["visitors"] == ["alice-phone-00000001"]
    assert {d["visitor"] for d in held["decisions"]} == {"alice-phone-00000001"}
    assert {e["visitor"] for e in held["events"]} == {"alice-phone-00000001"}
    assert claimer not in export.text


def test_claims_from_many_browsers_are_not_the_person_s_history(
    client: TestClient, shop_key: str
) -> None:
    """Page JavaScript anywhere can claim any id, with 50 events a call: none of it is read
    when the person is identified."""
    (link,) = tokens(client, shop_key, "news", "reader-9")
    article = "/news/articles/1.html"
    for i in range(30):
        visit(
            client, f"claimer-{i:012d}", "news", article, ["paywall_view"] * 50, identify="reader-9"
        )
    reader = visit(client, "reader-9-phone-00001", "news", article, ["paywall_view"], token=link)
    assert reader["identified"] and offers(reader) == []  # one paywall view, not 1,501
    held = admin(client, shop_key, "GET", "/v1/contacts/reader-9", params={"site": "news"}).json()
    assert held["visitors"] == ["reader-9-phone-00001"] and held["unverified"] == 30


def test_a_forwarded_link_identifies_three_browsers_then_nobody(
    client: TestClient, shop_key: str
) -> None:
    put_contact(client, shop_key, "c-1", {"customer": True})
    (link,) = tokens(client, shop_key, "shop", "c-1")
    browsers = [f"forwarded-{i:010d}" for i in range(4)]
    answers = [visit(client, b, "shop", "/shop/", token=link) for b in browsers]
    assert [a["identified"] for a in answers] == [True, True, True, False]
    assert offers(answers[3]) == ["first-purchase"]  # anonymous: no attribute unlocked
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    events = client.portal.call(store.events, "shop", [browsers[3]])
    assert [(e.type, e.name) for e in events if e.type != "trigger"] == [
        ("token rejected", "too many browsers")
    ]
    metrics = admin(client, shop_key, "GET", "/metrics").text
    assert 'sitecue_rejected_total{kind="token",reason="too many browsers"} 1' in metrics
    # The first browser clicking the link again (its state cookie gone) is not a new one.
    assert visit(client, browsers[0], "shop", "/shop/", token=link)["identified"]
    assert not visit(client, "forwarded-again-0001", "shop", "/shop/", token=link)["identified"]


def test_the_number_of_browsers_per_token_is_a_site_setting(
    client: TestClient, shop_key: str, env: dict[str, str]
) -> None:
    path = Path(env["SITECUE_CONFIG_DIR"]) / "sites" / "shop.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "identify": {"browsers_per_token": 1}}))
    admin(client, shop_key, "POST", "/v1/reload")
    (link,) = tokens(client, shop_key, "shop", "c-1")
    assert visit(client, "only-browser-0000001", "shop", "/shop/", token=link)["identified"]
    assert not visit(client, "second-browser-00001", "shop", "/shop/", token=link)["identified"]


def _checkpoint(path: Path) -> None:
    """Copy the setup's writes into the database now, not in the middle of the measurement."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        db.close()


class Polled(NamedTuple):
    """One round of asking /healthz while the email link is opened: how long the answer
    took, and how much CPU time the event loop's own thread spent in that round."""

    latency: float
    loop_cpu: float


async def _rebuild_beside_healthz(env: dict[str, str]) -> tuple[float, list[Polled], bool]:
    """The largest history identification reads (HISTORY_BROWSERS verified browsers with
    HISTORY_RECORDS events and page views each, and more beyond that it leaves unread), then
    one email link opened while /healthz is asked again and again."""
    app = build_app(Settings.load(env=env))
    async with app.router.lifespan_context(app):
        store = app.state.runtime.store
        now = int(time.time() * 1000)
        for b in range(HISTORY_BROWSERS + 2):
            browser = f"heavy-browser-{b:06d}"
            await store.link("news", browser, "reader-h", now - 10_000 + b, verified=True)
            events, views = [], []
            for i in range(HISTORY_RECORDS + 100):
                at = now - (i * 29 * 86_400_000) // HISTORY_RECORDS  # over 29 days
                if i % 10:
                    events.append(EventRecord("news", browser, "trigger", at, "paywall_view"))
                else:
                    events.append(
                        EventRecord("news", browser, "impression", at, None, "paywall-faq", "faq")
                    )
                verdicts = [Verdict("paywall-faq", False, reason="condition")]
                url = f"{ORIGIN}/news/articles/{b}-{i}.html"  # every one a new page
                views.append(DecisionRecord(record_id(at), "news", browser, at, url, verdicts))
            await store.write(events, views)
        await asyncio.to_thread(_checkpoint, Path(env["SITECUE_DATA_DIR"]) / "sitecue.db")
        link = TokenCodec(env["SITECUE_SECRETS"].split(",")).mint(
            "news", "reader-h", now // 1000 + 3_600
        )
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url=ORIGIN) as http:
            await http.get("/healthz")  # warm
            body = {"site": "news", "page": {"url": f"{ORIGIN}/news/"}, "token": link}
            started = time.perf_counter()
            opened = asyncio.create_task(
                http.post(
                    "/v1/decide",
                    json=body,
                    headers={"origin": ORIGIN, "cookie": "sc_vid=reader-h-new-phone-01"},
                )
            )
            polled = []
            while not opened.done():
                asked, cpu = time.perf_counter(), time.thread_time()
                assert (await http.get("/healthz")).status_code == 200
                latency = time.perf_counter() - asked
                await asyncio.sleep(0.001)
                polled.append(Polled(latency, time.thread_time() - cpu))
            took = time.perf_counter() - started
            identified = (await opened).json()["identified"]
    return took, polled, identified


def test_healthz_answers_while_the_largest_history_is_rebuilt(env: dict[str, str]) -> None:
    """The history is read and recounted off the event loop: while it runs, the loop's own
    thread never works 50 ms on end before answering /healthz again (in fact about 4 ms;
    with the recount on the loop, 140 ms and more), and /healthz typically answers in a
    millisecond or two.

    The worst wall-clock answer is printed (``-s``), not asserted: on a machine shared with
    other busy processes the operating system alone delays some answers past 50 ms, rebuild
    or not (an idle sitecue's /healthz, polled the same way at a load of 15 on 2 cores:
    worst 94 to 154 ms). The loop's own CPU time is what the code controls, whatever the
    load."""
    took, polled, identified = asyncio.run(_rebuild_beside_healthz(env))
    latencies = sorted(p.latency for p in polled)
    print(
        f"\n  identification with the largest history: {took * 1000:.0f} ms;"
        f" /healthz meanwhile: {len(polled)} answers,"
        f" median {latencies[len(latencies) // 2] * 1000:.1f} ms,"
        f" 95th percentile {latencies[len(latencies) * 95 // 100] * 1000:.1f} ms,"
        f" worst {latencies[-1] * 1000:.1f} ms; the loop's longest stretch of work"
        f" {max(p.loop_cpu for p in polled) * 1000:.1f} ms"
    )
    assert identified and len(polled) >= 3
    assert max(p.loop_cpu for p in polled) < 0.05
    assert latencies[len(latencies) // 2] < 0.05
