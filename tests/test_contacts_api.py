"""/v1/contacts: typed attributes, imports that name the bad line, export and erasure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import new_key
from forms_site import FORMS, write_config
from sitecue.app import build_app
from sitecue.settings import Settings

SHOP = "https://shop.example"


@pytest.fixture
def key(capsys: pytest.CaptureFixture[str]) -> str:
    return new_key(capsys, "shop")


def call(client: TestClient, key: str, method: str, path: str, **kw: Any) -> Any:
    params = kw.pop("params", {"site": "shop"})
    headers = {"authorization": f"Bearer {key}", **kw.pop("headers", {})}
    return client.request(method, path, params=params, headers=headers, **kw)


def test_put_get_patch_and_delete(client: TestClient, key: str) -> None:
    path = "/v1/contacts/customer-1"
    assert call(client, key, "GET", path).status_code == 404
    put = call(
        client, key, "PUT", path, json={"attributes": {"customer": True, "loyalty_tier": "gold"}}
    )
    assert put.status_code == 200 and put.json()["attributes"] == {
        "customer": True,
        "loyalty_tier": "gold",
    }
    patch = call(
        client,
        key,
        "PATCH",
        path,
        json={"attributes": {"loyalty_tier": None, "avg_order_value": 87.5}},
    )
    assert patch.json()["attributes"] == {"customer": True, "avg_order_value": 87.5}
    assert call(client, key, "GET", path).json()["attributes"] == patch.json()["attributes"]
    assert call(client, key, "DELETE", path).status_code == 204
    assert call(client, key, "GET", path).status_code == 404
    assert call(client, key, "DELETE", path).status_code == 404


@pytest.mark.parametrize("verb", ["GET", "PUT", "DELETE"])
def test_a_contact_id_with_a_control_character_is_refused_naming_it(
    client: TestClient, key: str, verb: str
) -> None:
    body = {"json": {"attributes": {"customer": True}}} if verb == "PUT" else {}
    answer = call(client, key, verb, "/v1/contacts/c%00x", **body)
    assert answer.status_code == 400 and "contact: expected an id without control" in answer.text


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"tier": "gold"}, "attributes.tier: expected an attribute the site declares"),
        ({"avg_order_value": "lots"}, "attributes.avg_order_value: expected a number, got 'lots'"),
        ({"customer": 1}, "attributes.customer: expected a boolean, got 1"),
    ],
)
def test_undeclared_or_mistyped_attributes_are_refused(
    client: TestClient, key: str, attributes: dict[str, Any], message: str
) -> None:
    response = call(client, key, "PUT", "/v1/contacts/c-1", json={"attributes": attributes})
    assert response.status_code == 400 and response.json()["error"].startswith(message)


def test_import_csv_and_ndjson(client: TestClient, key: str) -> None:
    csv = "id,customer,loyalty_tier,avg_order_value\nc-1,true,gold,87.5\nc-2,false,,\n"
    answer = call(
        client,
        key,
        "POST",
        "/v1/contacts/import",
        content=csv,
        headers={"content-type": "text/csv"},
    )
    assert answer.json() == {"imported": 2}
    ndjson = '{"id": "c-3", "attributes": {"customer": true, "email_engagement": 0.4}}\n'
    answer = call(
        client,
        key,
        "POST",
        "/v1/contacts/import",
        content=ndjson,
        headers={"content-type": "application/x-ndjson"},
    )
    assert answer.json() == {"imported": 1}
    assert call(client, key, "GET", "/v1/contacts/c-1").json()["attributes"] == {
        "customer": True,
        "loyalty_tier": "gold",
        "avg_order_value": 87.5,
    }
    assert call(client, key, "GET", "/v1/contacts/c-2").json()["attributes"] == {"customer": False}
    assert (
        call(client, key, "GET", "/v1/contacts/c-3").json()["attributes"]["email_engagement"] == 0.4
    )


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        (
            "id,customer\nc-1,true\nc-2,maybe\n",
            "text/csv",
            "line 3: customer: expected true or false",
        ),
        ("id,tier\nc-1,gold\n", "text/csv", "line 1.tier: expected an attribute the site declares"),
        ("customer\ntrue\n", "text/csv", "line 1: expected a header row starting with id"),
        ('{"id": "c-1"}\n{"id": 5}\n', "application/x-ndjson", "line 2: Expected `str`, got `int`"),
        ('{"id": "c-1"}\nnot json\n', "application/x-ndjson", "line 2: expected one JSON value"),
    ],
)
def test_a_bad_line_is_named_and_nothing_is_imported(
    client: TestClient, key: str, body: str, kind: str, message: str
) -> None:
    response = call(
        client, key, "POST", "/v1/contacts/import", content=body, headers={"content-type": kind}
    )
    assert response.status_code == 400 and response.json()["error"].startswith(message)
    assert call(client, key, "GET", "/v1/contacts/c-1").status_code == 404


def decide(client: TestClient, browser: str, **extra: str) -> None:
    client.cookies.clear()
    client.cookies.set("sc_vid", browser, domain="news.example")
    body = {"site": "shop", "page": {"url": f"{SHOP}/shop/"}, **extra}
    assert client.post("/v1/decide", json=body, headers={"origin": SHOP}).status_code == 200


def test_export_holds_every_browser_and_erasure_forgets_them(client: TestClient, key: str) -> None:
    call(client, key, "PUT", "/v1/contacts/c-9", json={"attributes": {"customer": True}})
    minted = call(client, key, "POST", "/v1/tokens", json={"site": "shop", "contacts": ["c-9"]})
    token = minted.json()["tokens"][0]["token"]
    for browser in ("laptop-0000000000001", "phone-00000000000002"):
        decide(client, browser, token=token)
    export = call(client, key, "GET", "/v1/contacts/c-9/export").json()
    assert export["contact"]["visitors"] == ["laptop-0000000000001", "phone-00000000000002"]
    assert {d["visitor"] for d in export["decisions"]} == set(export["contact"]["visitors"])
    assert call(client, key, "DELETE", "/v1/contacts/c-9").status_code == 204
    assert call(client, key, "GET", "/v1/contacts/c-9/export").status_code == 404
    log = call(client, key, "GET", "/v1/decisions").json()["items"]
    stand_ins = {d["visitor"] for d in log}
    assert len(stand_ins) == 2 and all(v.startswith("erased-") for v in stand_ins)
    assert {d["url"] for d in log} == {""}  # two browsers, still two, neither traceable


def test_a_browser_that_only_claimed_the_person_is_not_theirs(client: TestClient, key: str) -> None:
    """Anyone's page JavaScript can claim any id: the claimer is counted, but its records
    are neither exported as the person's nor erased with them."""
    minted = call(client, key, "POST", "/v1/tokens", json={"site": "shop", "contacts": ["c-7"]})
    decide(client, "person-000000000001", token=minted.json()["tokens"][0]["token"])
    decide(client, "claimer-00000000001", identify="c-7")
    response = call(client, key, "GET", "/v1/contacts/c-7/export")
    export = response.json()
    assert export["contact"]["visitors"] == ["person-000000000001"]
    assert export["contact"]["unverified"] == 1
    assert {d["visitor"] for d in export["decisions"]} == {"person-000000000001"}
    assert "claimer-00000000001" not in response.text
    assert call(client, key, "DELETE", "/v1/contacts/c-7").status_code == 204
    assert call(client, key, "GET", "/v1/contacts/c-7").status_code == 404  # the claim too
    log = call(client, key, "GET", "/v1/decisions").json()["items"]
    visitors = {d["visitor"] for d in log}
    assert "claimer-00000000001" in visitors and "person-000000000001" not in visitors
    assert len(visitors) == 2 and any(v.startswith("erased-") for v in visitors)


def test_a_contact_only_claimed_is_shown_as_such_and_erased(client: TestClient, key: str) -> None:
    decide(client, "claimer-00000000002", identify="c-8")
    held = call(client, key, "GET", "/v1/contacts/c-8").json()
    assert (held["visitors"], held["unverified"], held["attributes"]) == ([], 1, {})
    assert call(client, key, "DELETE", "/v1/contacts/c-8").status_code == 204
    assert call(client, key, "GET", "/v1/contacts/c-8").status_code == 404


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("application/json", '{"id": "c-1"}\n'),
        ("text/plain", "id\nc-1\n"),
        ("text/csv-schema", "id\nc-1\n"),
        (None, '{"id": "c-1"}\n'),
    ],
)
def test_an_import_of_another_content_type_is_refused(
    client: TestClient, key: str, kind: str | None, body: str
) -> None:
    headers = {"content-type": kind} if kind else {}
    response = call(client, key, "POST", "/v1/contacts/import", content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == (
        "content-type: expected one of text/csv, application/x-ndjson, application/ndjson,"
        f" application/jsonl, got '{kind or ''}'"
    )
    assert call(client, key, "GET", "/v1/contacts/c-1").status_code == 404


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        (
            b"id,avg_order_value\nc-1,nan\n",
            "text/csv",
            "line 2: avg_order_value: expected a finite number, got 'nan'",
        ),
        (
            b"id,avg_order_value\nc-1,-inf\n",
            "text/csv",
            "line 2: avg_order_value: expected a finite number, got '-inf'",
        ),
        (
            b'{"id": "c-1", "attributes": {"avg_order_value": NaN}}\n',
            "application/x-ndjson",
            "line 1: expected one JSON value",
        ),
        (
            b"id,loyalty_tier\nc-1,gold\nc-2,g\xf6ld\n",
            "text/csv; charset=utf-8",
            "line 3: expected UTF-8 text, got the byte 0xf6",
        ),
        (
            b'{"id": "c-1"}\n{"id": "c-\xff"}\n',
            "application/x-ndjson",
            "line 2: expected UTF-8 text, got the byte 0xff",
        ),
    ],
)
def test_an_import_refuses_what_it_cannot_store_as_sent(
    client: TestClient, key: str, body: bytes, kind: str, message: str
) -> None:
    response = call(
        client, key, "POST", "/v1/contacts/import", content=body, headers={"content-type": kind}
    )
    assert response.status_code == 400 and response.json()["error"].startswith(message)
    assert call(client, key, "GET", "/v1/contacts/c-1").status_code == 404


def test_an_import_from_a_spreadsheet_may_start_with_a_bom(client: TestClient, key: str) -> None:
    body = "\ufeffid,loyalty_tier\nc-1,gold\n".encode()
    answer = call(
        client,
        key,
        "POST",
        "/v1/contacts/import",
        content=body,
        headers={"content-type": "text/csv"},
    )
    assert answer.json() == {"imported": 1}
    assert call(client, key, "GET", "/v1/contacts/c-1").json()["attributes"] == {
        "loyalty_tier": "gold"
    }


def test_campaign_lists_minted_over_http_refuse_bytes_that_are_not_utf8(
    client: TestClient, key: str
) -> None:
    listed = {"content-type": "application/x-ndjson"}
    response = call(client, key, "POST", "/v1/tokens", content=b'"c-1"\n"c-\xe9"\n', headers=listed)
    assert response.status_code == 400
    assert response.json()["error"] == "line 2: expected UTF-8 text, got the byte 0xe9"
    answer = call(client, key, "POST", "/v1/tokens", content=b'"c-1"\n', headers=listed)
    assert answer.status_code == 200 and answer.text.splitlines()[1].startswith("c-1,")


def test_the_export_holds_the_person_s_submissions_and_erasure_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "contacts-forms-secret-0000",
        "SITECUE_CONFIG_DIR": str(write_config(tmp_path)),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    key = new_key(capsys, "forms")
    auth = {"authorization": f"Bearer {key}"}
    with TestClient(build_app(Settings.load(env=env)), base_url=FORMS) as client:
        decided = client.post(
            "/v1/decide",
            json={"site": "forms", "page": {"url": f"{FORMS}/signup"}},
            headers={"origin": FORMS},
        ).json()["decisions"]
        [d] = [d for d in decided if d["rule"] == "newsletter"]
        body = {"site": "forms", "decision": d["id"], "rule": "newsletter", "variant": "short",
                "fields": {"email": "a@b.se", "city": "Lund", "consent": True}}  # fmt: skip
        assert client.post("/v1/forms", json=body, headers={"origin": FORMS}).status_code == 200
        path, site = "/v1/contacts/a@b.se", {"site": "forms"}
        exported = client.get(f"{path}/export", params=site, headers=auth).json()
        [sent] = exported["submissions"]
        assert sent["fields"]["city"] == "Lund"
        assert sent["consents"] == {"consent": "Send me the newsletter"}
        assert exported["contact"]["answers"] == {"email": "a@b.se", "city": "Lund"}
        assert exported["contact"]["source"] == "form" and exported["contact"]["attributes"] == {}
        assert client.delete(path, params=site, headers=auth).status_code == 204
        left = client.get("/v1/submissions", params=site, headers=auth).json()
        assert left["items"] == []
        assert client.get(f"{path}/export", params=site, headers=auth).status_code == 404
