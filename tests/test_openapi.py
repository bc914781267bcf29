"""/openapi.json describes every endpoint, and schemathesis holds the real app to it: for
generated requests, valid and not, no 5xx, answers that match the document, and every 4xx
saying what was wrong."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.testclient import TestClient

from admin_keys import ORIGIN
from sitecue.api.keys import mint_key
from sitecue.api.openapi import openapi
from sitecue.app import build_app
from sitecue.settings import Settings
from sites import CONFIG_DIR

schema = schemathesis.openapi.from_dict(openapi())


@schemathesis.serializer("application/x-ndjson")
def ndjson(context: object, value: object) -> dict[str, bytes]:
    """Customer and campaign lists: any text, as the API must cope with what it is sent."""
    return {"data": value if isinstance(value, bytes) else str(value).encode()}


EXCLUDED = [
    # Valid by the schema is not enough for a 2xx: the site must exist, the origin match.
    schemathesis.checks.positive_data_acceptance,
    # Every request here carries a valid key; refusals without one are tested in test_admin.
    schemathesis.checks.ignored_auth,
    # Extra query parameters are ignored, as HTTP APIs commonly do; malformed, oversized and
    # wrongly typed bodies are refused in test_app, each with the field named.
    schemathesis.checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    """The real app on a copy of the example config, and a key for every site."""
    root = tmp_path_factory.mktemp("openapi")
    shutil.copytree(CONFIG_DIR, root / "config", ignore=shutil.ignore_patterns("demo"))
    # The shop keeps a catalogue, so that the catalogue's endpoints are exercised too.
    shop = root / "config" / "sites" / "shop.json"
    shop.write_text(json.dumps({"catalog": {}, **json.loads(shop.read_text())}))
    env = {
        "SITECUE_DATA_DIR": str(root / "data"),
        "SITECUE_SECRETS": "openapi-test-secret-000",
        "SITECUE_CONFIG_DIR": str(root / "config"),
    }
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        text, record = mint_key(["news", "shop"])
        client.portal.call(client.app.state.runtime.store.add_api_key, record)  # type: ignore[attr-defined]
        yield client, text


def test_every_route_is_described(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    document = client.get("/openapi.json").json()
    # A path parameter that may hold a / (a product id) is ``{product:path}`` to Starlette.
    app_routes = client.app.routes  # type: ignore[attr-defined]
    routes = {(r.path.replace(":path}", "}"), m) for r in app_routes for m in r.methods or ()}
    described = {(p, m.upper()) for p, ops in document["paths"].items() for m in ops}
    described.discard(("/v1/contacts/{contact}", "PARAMETERS"))  # shared, not a method
    assert {(p, m) for p, m in routes if m not in ("HEAD", "OPTIONS")} == described


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_app_keeps_to_its_document(
    case: schemathesis.Case, admin: tuple[TestClient, str]
) -> None:
    client, key = admin
    request = case.as_transport_kwargs(base_url=ORIGIN, headers={"authorization": f"Bearer {key}"})
    response = client.request(**_httpx(request), follow_redirects=False)
    assert response.status_code < 500, response.text
    case.validate_response(response, excluded_checks=EXCLUDED)
    if 400 <= response.status_code < 500:
        assert response.json()["error"], response.text


def _httpx(request: dict[str, object]) -> dict[str, object]:
    """schemathesis speaks requests; the test client speaks httpx."""
    out = {k: v for k, v in request.items() if k in ("method", "url", "headers", "params")}
    if "json" in request:
        out["json"] = request["json"]
    if "data" in request:
        data = request["data"]
        out["content" if isinstance(data, (bytes, str)) else "data"] = data
    return out
