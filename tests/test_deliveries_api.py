"""GET /v1/deliveries, POST /v1/deliveries/{id}/retry, the dashboard's panel and /metrics,
through the real app on both engines: a form submitted on a site with a webhook reaches a
local receiver (signed) by the app's own delivery task, and operators see every attempt."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import new_key
from forms_site import FORMS, FORMS_SITE, write_config
from receiver import Receiver, receiver
from sitecue.app import build_app
from sitecue.ids import record_id
from sitecue.settings import Settings
from sitecue.store import Message
from sitecue.webhooks.signing import verify
from webhook_sites import SECRET, SECRET_ENV, webhook


@pytest.fixture
def got() -> Iterator[Receiver]:
    with receiver([500, 500]) as r:  # two failures, then 200
        yield r


EVERY = ["form.submitted", "contact.identified", "goal.converted", "contact.erased"]


@pytest.fixture
def client(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, got: Receiver
) -> Iterator[TestClient]:
    rules = [{**FORMS_SITE["rules"][0], "goal": "subscribe"}, *FORMS_SITE["rules"][1:]]
    site = {**FORMS_SITE, "rules": rules, "webhooks": [webhook(got.url, events=EVERY)]}
    env = {
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "deliveries-test-secret-0000",
        "SITECUE_CONFIG_DIR": str(write_config(tmp_path, site)),
        "SITECUE_DB": store_url,
        SECRET_ENV: SECRET,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with TestClient(build_app(Settings.load(env=env)), base_url=FORMS) as client:
        yield client


def submit(client: TestClient, email: str) -> None:
    """A form submitted by a new browser (one that submitted is not offered the form again)."""
    client.cookies.clear()
    decided = client.post(
        "/v1/decide", json={"site": "forms", "page": {"url": FORMS + "/signup"}},
        headers={"origin": FORMS},
    ).json()  # fmt: skip
    (d,) = [d for d in decided["decisions"] if d["rule"] == "newsletter"]
    fields = {"email": email, "consent": True}
    body = {"site": "forms", "decision": d["id"], "rule": "newsletter", "variant": d["variant"]}
    response = client.post("/v1/forms", json={**body, "fields": fields}, headers={"origin": FORMS})
    assert response.status_code == 200, response.text


def listed(client: TestClient, key: str, **params: Any) -> Any:
    response = client.get(
        "/v1/deliveries",
        params={"site": "forms", **params},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def until(check: Any, seconds: float = 20) -> None:
    """Until the app's delivery task has done it (a real clock: the backoff's 1-4 s)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not delivered in time"
        time.sleep(0.05)


def test_a_submitted_form_reaches_the_receiver_signed_and_operators_see_the_attempts(
    client: TestClient, got: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "forms")
    submit(client, "Reader@Example.com")
    until(lambda: got.delivered())
    (request,) = got.messages().values()
    assert verify(
        SECRET.encode(), request.body, request.headers["sitecue-signature"], int(time.time())
    )
    page = listed(client, key)
    (item,) = page["items"]
    assert item["status"] == "delivered" and item["attempts"] == 3
    assert item["event"] == "form.submitted" and item["webhook"] == "esp"
    assert item["last_status"] == 200 and item["next_try"] is None
    assert "fields" not in item and "payload" not in item  # operators see no personal data
    assert page["disabled"] == [] and page["next"] is None
    metrics = client.get("/metrics", headers={"authorization": f"Bearer {key}"}).text
    labels = 'site="forms",webhook="esp"'
    assert f'sitecue_webhook_deliveries_total{{{labels},outcome="failed"}} 2' in metrics
    assert f'sitecue_webhook_deliveries_total{{{labels},outcome="delivered"}} 1' in metrics


def test_pages_filters_and_a_retry(
    client: TestClient, got: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "forms")
    got.answers[:] = [500] * 1000  # down for the whole test
    for n in range(3):
        submit(client, f"r{n}@example.com")
    until(lambda: len(got.requests) >= 3)
    first = listed(client, key, limit=2)
    second = listed(client, key, limit=2, cursor=first["next"])
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert len(set(ids)) == 3 and ids == sorted(ids, reverse=True) and second["next"] is None
    assert {i["status"] for i in listed(client, key, status="pending")["items"]} == {"pending"}
    assert listed(client, key, status="delivered")["items"] == []
    # A webhook since taken out of the config: its messages are not counted as waiting.
    gone = Message(record_id(1), "forms", "old-crm", "form.submitted", 1, {})
    client.portal.call(client.app.state.runtime.store.write, [], [], [gone])  # type: ignore
    metrics = client.get("/metrics", headers={"authorization": f"Bearer {key}"}).text
    assert 'sitecue_outbox_pending{site="forms",webhook="esp"} 3' in metrics
    assert "old-crm" not in metrics
    got.answers[:] = []  # back up: a retry sends it now, not at its next try
    auth = {"authorization": f"Bearer {key}"}
    retried = client.post(f"/v1/deliveries/{ids[0]}/retry", params={"site": "forms"}, headers=auth)
    assert retried.status_code == 200 and retried.json() == {"id": ids[0], "status": "pending"}
    until(lambda: ids[0] in got.delivered())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"site": "forms", "status": "lost"}, "status: expected one of pending, delivered"),
        ({"site": "forms", "webhook": "crm"}, "webhook: expected a webhook of site 'forms' (esp)"),
        ({"site": "forms", "cursor": "x"}, "cursor: expected the 'next' value"),
        ({"site": "forms", "limit": "0"}, "limit: expected a whole number from 1 to 1000"),
        ({}, "site: expected the site whose webhook deliveries to list"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    client: TestClient, capsys: pytest.CaptureFixture[str], params: dict[str, str], expected: str
) -> None:
    key = new_key(capsys, "forms")
    response = client.get(
        "/v1/deliveries", params=params, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 400 and response.json()["error"].startswith(expected)


def test_another_sites_key_sees_and_retries_nothing(
    client: TestClient, capsys: pytest.CaptureFixture[str], got: Receiver
) -> None:
    other = {"authorization": f"Bearer {new_key(capsys, 'news')}"}
    assert client.get("/v1/deliveries", params={"site": "forms"}, headers=other).status_code == 403
    assert client.get("/v1/deliveries", params={"site": "forms"}).status_code == 401
    mine = {"authorization": f"Bearer {new_key(capsys, 'forms')}"}
    path = "/v1/deliveries/19ab697e804-6220f2b3-14/retry"
    assert client.post(path, params={"site": "forms"}, headers=other).status_code == 403
    assert client.post(path, params={"site": "forms"}, headers=mine).status_code == 404
    bad = client.post("/v1/deliveries/nope/retry", params={"site": "forms"}, headers=mine)
    assert bad.status_code == 400


def test_the_dashboard_shows_deliveries_and_retries_from_its_own_origin_only(
    client: TestClient, got: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "forms")
    got.answers[:] = [500] * 1000
    submit(client, "reader@example.com")
    until(lambda: got.requests)
    (item,) = listed(client, key)["items"]
    own = {"origin": FORMS}
    client.cookies.clear()
    assert client.post("/dashboard/login", data={"key": key}, headers=own).status_code == 200
    page = client.get("/dashboard").text
    assert "Webhook deliveries" in page and "form.submitted" in page
    assert f'action="/dashboard/deliveries/{item["id"]}/retry"' in page
    path = f"/dashboard/deliveries/{item['id']}/retry"
    forged = client.post(path, data={"site": "forms"}, headers={"origin": "https://evil.example"})
    assert forged.status_code == 403
    got.answers[:] = []
    done = client.post(path, data={"site": "forms"}, headers=own, follow_redirects=False)
    assert done.status_code == 303
    until(lambda: got.delivered())


def test_an_email_link_a_goal_and_an_erasure_each_send_their_message(
    client: TestClient, got: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "forms")
    auth = {"authorization": f"Bearer {key}"}
    got.answers[:] = []
    body = {"site": "forms", "contacts": ["c-7"], "ttl": "7d"}
    (minted,) = client.post("/v1/tokens", json=body, headers=auth).json()["tokens"]
    client.cookies.clear()
    page = {"url": FORMS + "/next"}
    decided = client.post(
        "/v1/decide", json={"site": "forms", "page": page, "token": minted["token"]},
        headers={"origin": FORMS},
    )  # fmt: skip
    assert decided.json()["identified"] is True
    goal = {"site": "forms", "events": [{"type": "event", "name": "subscribe", "id": "goal-0001"}]}
    for _ in range(2):  # a retried beacon: one message
        sent = client.post("/v1/events", json=goal, headers={"origin": FORMS})
        assert sent.status_code == 204
    until(lambda: len(got.delivered()) == 2)  # before the erasure, which would drop them
    erased = client.delete("/v1/contacts/c-7", params={"site": "forms"}, headers=auth)
    assert erased.status_code == 204
    until(lambda: len(got.delivered()) == 3)
    sent = {m["event"]: m for m in (json.loads(r.body) for r in got.messages().values())}
    assert set(sent) == {"contact.identified", "goal.converted", "contact.erased"}
    assert sent["contact.identified"]["contact"] == "c-7"
    goal_sent = sent["goal.converted"]
    assert goal_sent["goal"] == "subscribe" and goal_sent["contact"] == "c-7"
    assert goal_sent["verified"] is True
    assert {k: v for k, v in sent["contact.erased"].items() if k not in ("id", "at")} == {
        "event": "contact.erased", "site": "forms", "contact": "c-7"
    }  # fmt: skip
