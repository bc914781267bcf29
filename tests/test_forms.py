"""POST /v1/forms and GET /v1/submissions through the real ASGI app, on both engines: a form
of a decided widget is checked again by the config, stored with its conversion, its consent
text and the contact's answers, and links the browser unverified; every bad input is a 4xx
that names the field."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import new_key
from forms_site import FORMS, FORMS_SITE, write_config
from sitecue import decision_ids
from sitecue.api import tag as tag_api
from sitecue.app import build_app
from sitecue.keyring import Keyring
from sitecue.settings import Settings

SECRET = "forms-test-secret-0123456789"
GOOD = {"email": " Reader@Example.COM ", "interests": ["sport"], "consent": True}


@pytest.fixture
def settings(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    env = {
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": SECRET,
        "SITECUE_CONFIG_DIR": str(write_config(tmp_path)),
        "SITECUE_DB": store_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # for the CLI that makes admin keys
    return Settings.load(env=env)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), base_url=FORMS) as client:
        yield client


@pytest.fixture
def key(settings: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    return new_key(capsys, "forms")


def decide(client: TestClient, path: str = "/signup") -> dict[str, Any]:
    """The decisions of one page view, by rule."""
    response = client.post(
        "/v1/decide",
        json={"site": "forms", "page": {"url": FORMS + path}},
        headers={"origin": FORMS},
    )
    assert response.status_code == 200, response.text
    return {d["rule"]: d for d in response.json()["decisions"]}


def submit(
    client: TestClient,
    fields: dict[str, Any],
    decision: dict[str, Any] | None = None,
    **extra: Any,
) -> Any:
    decision = decision or decide(client)["newsletter"]
    body = {
        "site": "forms",
        "decision": decision["id"],
        "rule": decision["rule"],
        "variant": decision["variant"],
        "fields": fields,
        **extra,
    }
    return client.post("/v1/forms", json=body, headers={"origin": FORMS})


def listed(client: TestClient, key: str, **params: Any) -> Any:
    response = client.get(
        "/v1/submissions",
        params={"site": "forms", **params},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_submission_is_stored_with_its_consent_and_converts_the_rule(
    client: TestClient, key: str
) -> None:
    answer = submit(client, GOOD)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ok": True, "identified": False}
    assert answer.headers["access-control-allow-origin"] == FORMS
    assert "sc_s=" in answer.headers["set-cookie"]
    [stored] = listed(client, key)["items"]
    assert stored["contact"] == "reader@example.com"
    assert stored["fields"] == {
        "email": "reader@example.com",
        "interests": ["sport"],
        "consent": True,
        "source": "popup",
    }
    assert stored["consents"] == {"consent": "Send me the newsletter"}
    assert (stored["rule"], stored["variant"]) == ("newsletter", "short")
    # stop_after convert: the campaign stops for this browser at once.
    assert "newsletter" not in decide(client)
    # The conversion is in the log, as the rule's.
    history = client.get(
        "/v1/decisions",
        params={"site": "forms", "rule": "newsletter"},
        headers={"authorization": f"Bearer {key}"},
    )
    assert history.status_code == 200


def test_the_contact_is_created_from_the_form_and_linked_unverified(
    client: TestClient, key: str
) -> None:
    assert submit(client, {**GOOD, "city": "Malmö"}).status_code == 200
    contact = client.get(
        "/v1/contacts/reader@example.com",
        params={"site": "forms"},
        headers={"authorization": f"Bearer {key}"},
    ).json()
    assert contact["source"] == "form" and contact["attributes"] == {}
    assert contact["answers"] == {
        "email": "reader@example.com",
        "interests": ["sport"],
        "city": "Malmö",
    }
    # Linked, but only as a claim: not one of the person's verified browsers.
    assert contact["visitors"] == [] and contact["unverified"] == 1


def test_answers_are_usable_in_this_browsers_rules_at_once(client: TestClient) -> None:
    assert "sport" not in decide(client, "/next")
    assert submit(client, GOOD).status_code == 200
    assert "sport" in decide(client, "/next")


def test_typing_an_address_unlocks_no_verified_attribute(client: TestClient, key: str) -> None:
    auth = {"authorization": f"Bearer {key}"}
    put = client.put(
        "/v1/contacts/reader@example.com",
        params={"site": "forms"},
        json={"attributes": {"loyalty_tier": "gold"}},
        headers=auth,
    )
    assert put.status_code == 200
    assert submit(client, GOOD).status_code == 200
    # This browser claimed the address, but the gold offer needs the verified attribute.
    assert "gold" not in decide(client, "/next")
    held = client.get("/v1/contacts/reader@example.com", params={"site": "forms"}, headers=auth)
    assert held.json()["attributes"] == {"loyalty_tier": "gold"}  # never changed by a form
    assert held.json()["source"] == "site"


def test_a_retried_submission_is_stored_once(client: TestClient, key: str) -> None:
    decision = decide(client)["newsletter"]
    first = submit(client, GOOD, decision, id="retry-0001")
    again = submit(client, GOOD, decision, id="retry-0001")
    assert (first.status_code, again.status_code) == (200, 200)
    assert len(listed(client, key)["items"]) == 1


def test_a_text_plain_body_is_read_as_json(client: TestClient, key: str) -> None:
    decision = decide(client)["newsletter"]
    body = {"site": "forms", "decision": decision["id"], "rule": "newsletter",
            "variant": "short", "fields": GOOD}  # fmt: skip
    response = client.post(
        "/v1/forms",
        content=json.dumps(body),
        headers={"origin": FORMS, "content-type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 200, response.text
    assert len(listed(client, key)["items"]) == 1


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({}, {"email": "required", "consent": "required"}),
        ({**GOOD, "email": "not-an-address"}, {"email": "expected an email address"}),
        ({**GOOD, "email": "a@b"}, {"email": "expected an email address"}),
        ({**GOOD, "email": "a b@c.se"}, {"email": "expected an email address"}),
        ({**GOOD, "email": "a@" + "b" * 250 + ".se"}, {"email": "expected an email address"}),
        ({**GOOD, "email": 5}, {"email": "expected text"}),
        ({**GOOD, "consent": False}, {"consent": "required"}),
        ({**GOOD, "consent": "yes"}, {"consent": "expected true or false"}),
        (
            {**GOOD, "phone": "0701234567"},
            {"phone": "expected a phone number in international form, such as +46701234567"},
        ),
        (
            {**GOOD, "phone": "+0701234567"},
            {"phone": "expected a phone number in international form, such as +46701234567"},
        ),
        ({**GOOD, "age": 12}, {"age": "expected at least 16"}),
        ({**GOOD, "age": 121}, {"age": "expected at most 120"}),
        ({**GOOD, "age": "20"}, {"age": "expected a number"}),
        ({**GOOD, "age": True}, {"age": "expected a number"}),
        ({**GOOD, "city": "x" * 41}, {"city": "expected at most 40 characters"}),
        ({**GOOD, "city": "a\x00b"}, {"city": "expected text without control characters"}),
        (
            {**GOOD, "interests": ["chess"]},
            {"interests": "expected options among politics, sport, culture, got 'chess'"},
        ),
        (
            {**GOOD, "interests": ["sport", "sport"]},
            {"interests": "expected each option at most once"},
        ),
        ({**GOOD, "interests": "sport"}, {"interests": "expected a list of options"}),
        ({**GOOD, "edition": "noon"}, {"edition": "expected one of am, pm"}),
        ({**GOOD, "edition": ["am"]}, {"edition": "expected text"}),
        ({**GOOD, "daily": "on"}, {"daily": "expected true or false"}),
        ({**GOOD, "source": "forged"}, {"source": "expected the form's own value"}),
        ({**GOOD, "loyalty_tier": "gold"}, {"loyalty_tier": "not a field of this form"}),
        (
            {"email": "bad", "consent": False, "age": 3},
            {
                "email": "expected an email address",
                "consent": "required",
                "age": "expected at least 16",
            },
        ),
    ],
)
def test_a_wrong_field_answers_422_with_every_problem_and_stores_nothing(
    client: TestClient, key: str, fields: dict[str, Any], problems: dict[str, str]
) -> None:
    response = submit(client, fields)
    assert response.status_code == 422, response.text
    assert response.json() == {"error": f"fields: {len(problems)} problem(s)", "fields": problems}
    assert response.headers["access-control-allow-origin"] == FORMS
    assert listed(client, key)["items"] == []
    assert "newsletter" in decide(client)  # not converted


def forged(rule: str = "newsletter", variant: str = "short", visitor: str = "someone") -> str:
    key = Keyring([SECRET]).mac_key(decision_ids.PURPOSE, "forms")
    return decision_ids.issue(key, visitor, "view-1", rule, variant, int(time.time() * 1000))


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"decision": "x" * 24}, 400, "decision: expected the id of a decision this visitor"),
        ({"decision": "forged"}, 400, "decision: expected the id of a decision this visitor"),
        ({"rule": "nope"}, 400, "rule: expected a rule of site 'forms', got 'nope'"),
        ({"rule": "plain", "variant": "only"}, 400, "variant: expected a variant of rule 'plain'"),
        ({"variant": "long"}, 400, "variant: expected a variant of rule 'newsletter'"),
        ({"site": "elsewhere"}, 404, "site: no site named 'elsewhere'"),
        ({"fields": {"email": {"a": 1}}}, 400, "body: Expected `bool | int | float | str |"),
        ({"fields": {"interests": [["x"]]}}, 400, "body: Expected `str`, got `array`"),
        ({"fields": "email"}, 400, "body: Expected `object`, got `str` - at `$.fields`"),
        ({"fields": None}, 400, "body: Expected `object`, got `null` - at `$.fields`"),
        ({"id": "short"}, 400, "body: Expected `str` of length >= 8 - at `$.id`"),
        ({"decision": None}, 400, "body: Expected `str`, got `null` - at `$.decision`"),
        ({"fields": {"email": "x" * 3000}}, 400, "body: Expected `str` of length <= 2048"),
        ({"fields": {f"f{i}": "" for i in range(51)}}, 400, "body: Expected `object` of length"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(
    client: TestClient, key: str, change: dict[str, Any], status: int, message: str
) -> None:
    decision = decide(client)["newsletter"]
    body = {"site": "forms", "decision": decision["id"], "rule": "newsletter",
            "variant": "short", "fields": GOOD, **change}  # fmt: skip
    if body["decision"] == "forged":
        body["decision"] = forged()  # a real MAC, issued to another visitor
    response = client.post("/v1/forms", json=body, headers={"origin": FORMS})
    assert response.status_code == status, response.text
    assert response.json()["error"].startswith(message), response.json()
    assert listed(client, key)["items"] == []


def test_a_decision_for_another_rule_does_not_unlock_this_one(client: TestClient) -> None:
    plain = decide(client)["plain"]
    response = submit(client, GOOD, {**plain, "rule": "newsletter", "variant": "short"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("decision:")


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b"\xff\xfe", b'{"site": "forms"}', b"[" * 10_000, b"null"],
)
def test_malformed_bodies_are_a_400(client: TestClient, body: bytes) -> None:
    response = client.post("/v1/forms", content=body, headers={"origin": FORMS})
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("body:")


def test_a_body_over_the_cap_is_a_413(client: TestClient) -> None:
    big = json.dumps({"site": "forms", "fields": {"a": "x" * 17_000}})
    response = client.post("/v1/forms", content=big, headers={"origin": FORMS})
    assert response.status_code == 413


def test_another_origin_is_refused(client: TestClient, key: str) -> None:
    decision = decide(client)["newsletter"]
    body = {"site": "forms", "decision": decision["id"], "rule": "newsletter",
            "variant": "short", "fields": GOOD}  # fmt: skip
    response = client.post("/v1/forms", json=body, headers={"origin": "https://evil.example"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert listed(client, key)["items"] == []


def test_the_preflight_is_answered_for_the_site_s_origin(client: TestClient) -> None:
    response = client.options(
        "/v1/forms", headers={"origin": FORMS, "access-control-request-method": "POST"}
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == FORMS


def test_a_filled_honeypot_is_answered_as_success_but_stores_nothing(
    client: TestClient, key: str
) -> None:
    response = submit(client, {**GOOD, "sc_hp": "http://spam.example"})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "identified": False}
    assert listed(client, key)["items"] == []
    assert "newsletter" in decide(client)  # nothing converted either
    metrics = client.get("/metrics", headers={"authorization": f"Bearer {key}"}).text
    assert 'sitecue_form_submissions_total{site="forms",outcome="honeypot"} 1' in metrics


def test_a_browser_is_limited_to_five_submissions_a_minute(client: TestClient, key: str) -> None:
    decision = decide(client)["newsletter"]
    for i in range(5):
        ok = submit(client, {**GOOD, "email": f"reader{i}@example.com"}, decision)
        assert ok.status_code == 200, ok.text
    refused = submit(client, {**GOOD, "email": "reader9@example.com"}, decision)
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("visitor: at most 5 submissions a minute")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["access-control-allow-origin"] == FORMS
    assert refused.headers["access-control-expose-headers"] == "Retry-After"
    assert len(listed(client, key)["items"]) == 5


def test_an_address_is_submitted_at_most_three_times_an_hour(settings: Settings, key: str) -> None:
    answers = []
    for _ in range(4):  # four browsers, one address
        with TestClient(build_app(settings), base_url=FORMS) as browser:
            answers.append(submit(browser, GOOD))
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["error"].startswith("fields.email: at most 3 submissions an hour")
    assert 3000 < int(answers[3].headers["retry-after"]) <= 3600


def test_the_form_markup_is_what_the_tag_relies_on(client: TestClient) -> None:
    html = decide(client)["newsletter"]["html"]
    assert '<form class="sc-form" data-sc-form novalidate>' in html
    assert '<fieldset class="sc-step" data-sc-step="1">' in html
    assert '<fieldset class="sc-step" data-sc-step="2" hidden>' in html
    assert '<button type="button" data-sc-next>Next</button>' in html
    assert '<button type="submit">Sign me up</button>' in html
    assert '<div class="sc-field sc-field-email" data-sc-field="email">' in html
    assert re.search(
        r'<input type="email" id="sc-newsletter-short-email" name="email" maxlength="254"'
        r' autocomplete="email" aria-describedby="sc-err-newsletter-short-email" required>',
        html,
    )
    assert (
        '<p class="sc-error" id="sc-err-newsletter-short-email" data-sc-error="email"'
        ' aria-live="polite"></p>'
    ) in html
    assert 'pattern="^\\+[1-9][0-9]{6,14}$"' in html
    assert 'type="number" id="sc-newsletter-short-age" name="age" step="any" min="16.0"' in html
    assert "<legend>What do you read most?</legend>" in html
    assert 'type="checkbox" name="interests" value="sport"' in html
    assert 'type="radio" name="edition" value="am"' in html
    assert '<label for="sc-newsletter-short-consent">Send me the newsletter</label>' in html
    assert '<input type="hidden" name="source" value="popup">' in html
    assert (
        '<div class="sc-hp" aria-hidden="true"><label>Leave empty<input name="sc_hp"'
        ' tabindex="-1" autocomplete="off"></label></div>'
    ) in html
    assert '<p class="sc-form-error" data-sc-form-error role="alert"></p>' in html
    assert '<div class="sc-success" data-sc-success hidden>Thanks!</div>' in html


def test_submissions_are_listed_in_pages_and_exported(client: TestClient, key: str) -> None:
    decision = decide(client)["newsletter"]
    for i in range(3):
        email = f"=cmd{i}@example.com" if i == 0 else f"reader{i}@example.com"
        assert submit(client, {**GOOD, "email": email}, decision).status_code == 200
    first = listed(client, key, limit=2)
    assert len(first["items"]) == 2 and first["next"]
    second = listed(client, key, limit=2, cursor=first["next"])
    assert len(second["items"]) == 1 and second["next"] is None
    ids = [s["id"] for s in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    auth = {"authorization": f"Bearer {key}"}
    ndjson = client.get(
        "/v1/submissions",
        params={"site": "forms"},
        headers={**auth, "accept": "application/x-ndjson"},
    )
    assert [json.loads(line)["id"] for line in ndjson.text.splitlines()] == ids
    exported = client.get(
        "/v1/submissions", params={"site": "forms"}, headers={**auth, "accept": "text/csv"}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["id"] for r in rows] == ids
    assert rows[0]["interests"] == "sport" and rows[0]["consents"] == "Send me the newsletter"
    # A typed formula is exported as text, never run by a spreadsheet.
    assert rows[-1]["email"] == "'=cmd0@example.com"
    at = first["items"][0]["at"]
    assert listed(client, key, rule="newsletter", **{"from": at + 1})["items"] == []
    assert len(listed(client, key, to=at + 1)["items"]) == 3


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, "site: expected the site whose submissions to list"),
        ({"site": "forms", "rule": "nope"}, 400, "rule: expected a rule of site 'forms'"),
        ({"site": "forms", "cursor": "x"}, 400, "cursor: expected the 'next' value"),
        ({"site": "forms", "limit": "0"}, 400, "limit: expected a whole number from 1 to 1000"),
        ({"site": "forms", "from": "-1"}, 400, "from: expected a whole number"),
        ({"site": "forms", "to": "soon"}, 400, "to: expected a whole number"),
        ({"site": "news"}, 403, ""),
    ],
)
def test_bad_submission_queries(
    client: TestClient, key: str, params: dict[str, str], status: int, message: str
) -> None:
    response = client.get(
        "/v1/submissions", params=params, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == status, response.text
    assert response.json()["error"].startswith(message)


def test_submissions_need_an_admin_key(client: TestClient) -> None:
    assert client.get("/v1/submissions", params={"site": "forms"}).status_code == 401


def test_a_site_without_consent_stores_the_submission_but_keeps_no_state(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Without consent only rules that need no state show: no convert cap here.
    rules = [{**FORMS_SITE["rules"][0], "limit": {}}, *FORMS_SITE["rules"][1:]]
    site = {**FORMS_SITE, "consent": "required", "rules": rules}
    env = {
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": SECRET,
        "SITECUE_CONFIG_DIR": str(write_config(tmp_path, site)),
        "SITECUE_DB": store_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    key = new_key(capsys, "forms")
    with TestClient(build_app(Settings.load(env=env)), base_url=FORMS) as client:
        decision = decide(client)["newsletter"]
        response = submit(client, GOOD, decision)
        assert response.status_code == 200, response.text
        assert "set-cookie" not in response.headers
        [stored] = listed(client, key)["items"]
        assert stored["visitor"] == "-" and stored["contact"] == "reader@example.com"
        contact = client.get(
            "/v1/contacts/reader@example.com",
            params={"site": "forms"},
            headers={"authorization": f"Bearer {key}"},
        ).json()
        assert contact["unverified"] == 0  # no browser to link


def test_the_submit_latency(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    """Not an assertion on speed (the machine is shared): the figures, printed."""
    decision = decide(client)["newsletter"]
    took = []
    for i in range(5):
        start = time.perf_counter()
        response = submit(client, {**GOOD, "email": f"r{i}@example.com"}, decision)
        took.append(time.perf_counter() - start)
        assert response.status_code == 200
    with capsys.disabled():
        print(f"\nPOST /v1/forms: median {statistics.median(took) * 1000:.1f} ms over 5")


def test_a_browser_verified_by_an_email_link_stays_that_person_whatever_it_types(
    client: TestClient, key: str
) -> None:
    auth = {"authorization": f"Bearer {key}"}
    client.put(
        "/v1/contacts/gold@example.com",
        params={"site": "forms"},
        json={"attributes": {"loyalty_tier": "gold"}},
        headers=auth,
    )
    minted = client.post(
        "/v1/tokens", json={"site": "forms", "contacts": ["gold@example.com"]}, headers=auth
    ).json()["tokens"][0]["token"]
    opened = client.post(
        "/v1/decide",
        json={"site": "forms", "page": {"url": f"{FORMS}/next"}, "token": minted},
        headers={"origin": FORMS},
    )
    assert opened.json()["identified"] is True
    assert "gold" in {d["rule"] for d in opened.json()["decisions"]}
    answer = submit(client, {**GOOD, "email": "someone.else@example.com"})
    assert answer.status_code == 200 and answer.json()["identified"] is True
    # Still the verified person: their attributes apply, and the typed address got no link.
    assert "gold" in decide(client, "/next")
    typed = client.get(
        "/v1/contacts/someone.else@example.com", params={"site": "forms"}, headers=auth
    ).json()
    assert typed["visitors"] == [] and typed["unverified"] == 0


def test_a_form_sent_from_a_page_open_for_days_is_kept_but_credits_no_conversion(
    client: TestClient, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision was made three days ago: its "convert <decision>" key is pruned by now,
    so crediting it would let a replay count again. The person's submission still counts."""
    clock = [1_790_000_000_000]
    monkeypatch.setattr(tag_api, "_now_ms", lambda: clock[0])
    decision = decide(client)["newsletter"]
    clock[0] += 3 * 86_400_000
    answer = submit(client, GOOD, decision)
    assert answer.status_code == 200, answer.text
    [stored] = listed(client, key)["items"]
    assert stored["decision"] == decision["id"] and stored["contact"] == "reader@example.com"
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    [counts] = client.portal.call(store.results, "forms", "newsletter")  # type: ignore[union-attr]
    assert (counts.submissions, counts.conversions) == (1, 0)
