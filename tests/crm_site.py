"""A site whose rules read what the site's own systems report: a contact's attribute and
server-side events (a purchase in a store, an email opened) and their values (what a person
spent). Written next to a copy of the shipped config, for the tests of inbound events and
refreshes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.api import contact_events
from sitecue.api import tag as tag_api
from sitecue.app import build_app
from sitecue.settings import Settings


def _rule(rule_id: str, placement: str, when: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": rule_id,
        "placement": {"type": placement},
        "when": when,
        "variants": [{"id": "on", "weight": 100, "widget": None}],
    }


CRM_SITE: dict[str, Any] = {
    "site": "crm",
    "origins": [ORIGIN],
    "timezone": "UTC",
    "max_per_view": 4,
    "attributes": {"tier": "string"},
    "identify": {"refresh": "15m"},
    "triggers": {
        "store_purchase": {"on": "custom", "value": "number"},
        "email_open": {"on": "custom"},
    },
    "rules": [
        _rule("gold", "bar", {"attributes.tier": "gold"}),
        _rule("buyer", "modal", {"triggers.store_purchase.30d": {"$gte": 1}}),
        _rule("reader", "slide-in", {"triggers.email_open.total": {"$gte": 2}}),
        {
            **_rule("spender", "inline", {"sums.store_purchase.90d": {"$gt": 1000}}),
            "placement": {"type": "inline", "selector": "#spender"},
        },
    ],
}
MINUTE_MS = 60_000


class Clock:
    """The server's clock, moved by the test (the app's and the events endpoint's)."""

    def __init__(self) -> None:
        self.now = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.now


class Crm:
    """The real app on the CRM site, an admin key for it, and the clock it runs on."""

    def __init__(self, client: TestClient, key: str, clock: Clock) -> None:
        self.client, self.key, self.clock = client, key, clock
        self.jars: dict[str, dict[str, str]] = {}  # browser -> its cookies

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"authorization": f"Bearer {self.key}", **kw.pop("headers", {})}
        return self.client.request(method, path, params={"site": "crm"}, headers=headers, **kw)

    def attributes(self, method: str, contact: str, attributes: dict[str, Any]) -> None:
        answer = self.admin(method, f"/v1/contacts/{contact}", json={"attributes": attributes})
        assert answer.status_code == 200, answer.text

    def send(self, contact: str, events: list[dict[str, Any]]) -> dict[str, int]:
        answer = self.admin("POST", f"/v1/contacts/{contact}/events", json=events)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def token(self, contact: str) -> str:
        body = {"site": "crm", "contacts": [contact], "ttl": "7d"}
        answer = self.admin("POST", "/v1/tokens", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["tokens"][0]["token"]  # type: ignore[no-any-return]

    def visit(self, browser: str, **extra: Any) -> dict[str, Any]:
        """A page view from ``browser``, with the cookies it was last given (each browser
        keeps its own)."""
        self.client.cookies.clear()
        for name, value in self.jars.get(browser, {"sc_vid": browser}).items():
            self.client.cookies.set(name, value, domain="news.example")
        body = {"site": "crm", "page": {"url": f"{ORIGIN}/"}, **extra}
        answer = self.client.post("/v1/decide", json=body, headers={"origin": ORIGIN})
        assert answer.status_code == 200, answer.text
        self.jars[browser] = dict(self.client.cookies.items())
        return answer.json()  # type: ignore[no-any-return]

    def shown(self, browser: str, **extra: Any) -> list[str]:
        return sorted(d["rule"] for d in self.visit(browser, **extra)["decisions"])


def crm_app(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Crm]:
    """The app on the shipped config and the CRM site, its clock in the test's hands."""
    config = Path(env["SITECUE_CONFIG_DIR"])
    (config / "sites" / "crm.json").write_text(json.dumps(CRM_SITE))
    clock = Clock()
    monkeypatch.setattr(tag_api, "_now_ms", clock)
    monkeypatch.setattr(contact_events, "_now_ms", clock)
    key = new_key(capsys, "crm")
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        yield Crm(client, key, clock)
