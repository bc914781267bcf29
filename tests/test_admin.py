"""Admin keys and POST /v1/reload: hashed at rest, scoped to sites, reload swaps or refuses."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.api import keys
from sitecue.app import build_app
from sitecue.cli import main
from sitecue.settings import Settings


def reload(client: TestClient, key: str | None) -> tuple[int, dict[str, object]]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = client.post("/v1/reload", headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "key",
    [None, "sck_nope", "sck_000000000000_" + "a" * 32],
)
def test_reload_needs_a_valid_key(client: TestClient, key: str | None) -> None:
    status, body = reload(client, key)
    assert status == 401 and str(body["error"]).startswith("authorization:")


def test_a_wrong_secret_is_refused(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    key = new_key(capsys, "news", "shop")
    assert reload(client, key[:-1] + ("A" if key[-1] != "A" else "B"))[0] == 401


def test_a_key_for_one_site_may_not_reload_them_all(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    status, body = reload(client, new_key(capsys, "news"))
    assert status == 403 and body["error"] == "this API key is for news; it may not act on shop"


def test_reload_swaps_in_the_new_config(
    client: TestClient, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news", "shop")
    site_file = Path(env["SITECUE_CONFIG_DIR"]) / "sites" / "news.json"
    news = json.loads(site_file.read_text())
    welcome = {"id": "welcome", "placement": {"type": "bar"}, "when": {"page.path": "/"},
               "variants": [{"id": "on", "weight": 100, "widget": "subscription-faq"}]}  # fmt: skip
    site_file.write_text(json.dumps({**news, "rules": [welcome]}))
    assert reload(client, key) == (200, {"reloaded": ["news", "shop"], "version": 2})
    answer = client.post("/v1/decide", json={"site": "news", "page": {"url": f"{ORIGIN}/"}}).json()
    assert [d["rule"] for d in answer["decisions"]] == ["welcome"]


def test_a_bad_config_is_refused_and_the_old_keeps_serving(
    client: TestClient, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news", "shop")
    site_file = Path(env["SITECUE_CONFIG_DIR"]) / "sites" / "news.json"
    news = json.loads(site_file.read_text())
    site_file.write_text(json.dumps({**news, "rules": [{**news["rules"][0], "priority": "high"}]}))
    status, body = reload(client, key)
    assert status == 422
    assert body["problems"] == [
        {
            "file": str(site_file),
            "path": "$.rules[0].priority",
            "expected": "expected `int`, got `str`",
        }
    ]
    answer = client.post(
        "/v1/decide",
        json={"site": "news", "page": {"url": f"{ORIGIN}/"}, "events": [{"name": "paywall_view"}]},
    )
    assert answer.status_code == 200 and answer.json()["triggers"][0]["name"] == "paywall_view"


def test_only_a_hash_of_the_key_is_stored(
    client: TestClient, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news")
    secret = key.split("_", 2)[2]  # sck_<id>_<secret>; the secret may hold underscores
    dump = "\n".join(sqlite3.connect(Path(env["SITECUE_DATA_DIR"]) / "sitecue.db").iterdump())
    assert "api_keys" in dump and secret not in dump


def test_apikey_create_refuses_unknown_sites(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apikey", "create", "--site", "blog"]) == 2
    assert "--site: no site named blog" in capsys.readouterr().err


# Every admin endpoint, asked about the shop: (method, path, JSON body).
ADMIN_ON_SHOP: list[tuple[str, str, object]] = [
    ("GET", "/v1/decisions?site=shop", None),
    ("POST", "/v1/reload", None),
    ("GET", "/metrics?site=shop", None),
    ("GET", "/v1/results?site=shop&rule=loyalty-offer", None),
    ("POST", "/v1/tokens", {"site": "shop", "contacts": ["c-1"]}),
    ("GET", "/v1/contacts/c-1?site=shop", None),
    ("PUT", "/v1/contacts/c-1?site=shop", {"attributes": {"customer": True}}),
    ("PATCH", "/v1/contacts/c-1?site=shop", {"attributes": {"customer": True}}),
    ("DELETE", "/v1/contacts/c-1?site=shop", None),
    ("GET", "/v1/contacts/c-1/export?site=shop", None),
    ("POST", "/v1/contacts/import?site=shop", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ON_SHOP)
def test_a_news_key_gets_403_for_the_shop(
    client: TestClient, capsys: pytest.CaptureFixture[str], method: str, path: str, body: object
) -> None:
    key = new_key(capsys, "news")
    headers = {"authorization": f"Bearer {key}"}
    response = client.request(method, path, headers=headers, json=body)
    assert response.status_code == 403
    assert "may not act on shop" in response.json()["error"]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ON_SHOP)
@pytest.mark.parametrize("key", [None, "sck_000000000000_" + "a" * 32])
def test_every_admin_endpoint_needs_a_valid_key(
    client: TestClient, method: str, path: str, body: object, key: str | None
) -> None:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = client.request(method, path, headers=headers, json=body)
    assert response.status_code == 401
    assert response.json()["error"].startswith("authorization:")


def test_a_revoked_key_is_refused_by_every_app_on_the_store_at_once(
    env: dict[str, str],
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two app instances (two workers, or two nodes) on one store: a key revoked with the CLI
    is refused by both on the very next request, API and dashboard alike."""
    monkeypatch.setenv("SITECUE_DB", store_url)
    settings = Settings.load(env={**env, "SITECUE_DB": store_url})
    key = new_key(capsys, "news")
    kept = new_key(capsys, "news")
    bearer = {"authorization": f"Bearer {key}"}
    with (
        TestClient(build_app(settings), base_url=ORIGIN) as one,
        TestClient(build_app(settings), base_url=ORIGIN) as two,
    ):
        for app in (one, two):
            assert app.get("/v1/decisions?site=news", headers=bearer).status_code == 200
            signed_in = app.post("/dashboard/login", data={"key": key}, headers={"origin": ORIGIN})
            assert "paywall-faq" in signed_in.text
        assert main(["apikey", "revoke", key.split("_")[1]]) == 0
        assert "revoked admin key" in capsys.readouterr().out
        for app in (one, two):
            refused = app.get("/v1/decisions?site=news", headers=bearer)
            assert refused.status_code == 401
            assert refused.json()["error"] == "authorization: this API key was revoked"
            page = app.get("/dashboard")  # the session started with it is over too
            assert 'name="key"' in page.text and "paywall-faq" not in page.text
            again = app.post("/dashboard/login", data={"key": key}, headers={"origin": ORIGIN})
            assert "This admin key was revoked" in again.text and "set-cookie" not in again.headers
            other = {"authorization": f"Bearer {kept}"}
            assert app.get("/v1/decisions?site=news", headers=other).status_code == 200


def test_apikey_revoke_takes_the_id_or_the_whole_key(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news")
    assert main(["apikey", "revoke", key]) == 0  # a leaked key, pasted whole
    assert capsys.readouterr().out.startswith(f"revoked admin key {key.split('_')[1]}")
    assert main(["apikey", "revoke", key.split("_")[1]]) == 0
    assert "was already revoked" in capsys.readouterr().out
    assert main(["apikey", "revoke", "0123456789ab"]) == 1
    assert "ID: no admin key 0123456789ab" in capsys.readouterr().err
    assert main(["apikey", "revoke", "news"]) == 2
    assert "ID: expected a key id" in capsys.readouterr().err
    status, body = reload(client, key)
    assert status == 401 and body["error"] == "authorization: this API key was revoked"


def test_apikey_list_shows_when_each_key_was_last_used(
    client: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    used, unused = new_key(capsys, "news"), new_key(capsys, "news")
    clock = [1_790_000_000]
    monkeypatch.setattr(keys, "_now", lambda: clock[0])
    bearer = {"authorization": f"Bearer {used}"}

    def last_used() -> dict[str, str]:
        assert main(["apikey", "list"]) == 0
        rows = capsys.readouterr().out.splitlines()[1:]
        return {row.split()[0]: " ".join(row.split()[3:5]) for row in rows}

    assert client.get("/v1/decisions?site=news", headers=bearer).status_code == 200
    clock[0] += 59  # kept to the minute: no write for every request
    assert client.get("/v1/decisions?site=news", headers=bearer).status_code == 200
    seen = last_used()
    assert seen[used.split("_")[1]] == "2026-09-21 14:13:20Z"
    assert seen[unused.split("_")[1]].startswith("never")
    clock[0] += 1
    signed_in = client.post("/dashboard/login", data={"key": used}, headers={"origin": ORIGIN})
    assert "paywall-faq" in signed_in.text  # the dashboard counts as a use too
    assert last_used()[used.split("_")[1]] == "2026-09-21 14:14:20Z"
