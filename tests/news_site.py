"""The example news site on the real app, on either engine, with a clock the test sets: for
the report and results tests, which write through the real endpoints at fixed times."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from httpx2 import Response
from starlette.testclient import TestClient

from sitecue.api import reports as reports_api
from sitecue.api import tag as tag_api
from sitecue.api.keys import mint_key
from sitecue.app import build_app
from sitecue.settings import Settings
from sitecue.store import DAY_MS
from sites import CONFIG_DIR

NEWS = "https://news.example"
DAY_A = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
HOUR = 3_600_000


def at(day: int, hour: int) -> int:
    """Epoch ms of ``hour`` o'clock (UTC) ``day`` days after DAY_A."""
    return int(DAY_A.timestamp() * 1000) + day * DAY_MS + hour * HOUR


class News:
    """The real app on one engine with the example config, its clock, and a news key."""

    def __init__(self, client: TestClient, key: str, clock: list[int]) -> None:
        self.client, self.key, self.clock = client, key, clock

    def view(self, reader: str, path: str = "/news/", **event: Any) -> dict[str, Any]:
        """A page view by reader ``reader`` (a fresh browser with their id), with a page
        event if given; the newsletter rule's decision (empty if it did not match)."""
        self._as(reader)
        body = {"site": "news", "page": {"url": f"{NEWS}{path}"}}
        if event:
            body["events"] = [event]
        response = self.client.post("/v1/decide", json=body, headers={"origin": NEWS})
        assert response.status_code == 200, response.text
        decisions: list[dict[str, Any]] = response.json()["decisions"]
        return next((d for d in decisions if d["rule"] == "newsletter"), {})

    def feedback(self, reader: str, decision: dict[str, Any], *types: str) -> None:
        """What the tag reports about ``decision``, from ``reader``'s browser."""
        self._as(reader)
        about = {"decision": decision["id"], "rule": "newsletter", "variant": decision["variant"]}
        body = {"site": "news", "events": [{"type": t, **about} for t in types]}
        response = self.client.post("/v1/events", json=body, headers={"origin": NEWS})
        assert response.status_code == 204, response.text

    def _as(self, reader: str) -> None:
        self.client.cookies.clear()
        self.client.cookies.set("sc_vid", f"reader-{reader}-0000000000", domain="news.example")

    def get(self, path: str, accept: str = "", **params: str) -> Response:
        headers = {"authorization": f"Bearer {self.key}"}
        if accept:
            headers["accept"] = accept
        return self.client.get(path, params=params, headers=headers)


@contextmanager
def news_app(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[News]:
    """The app on ``store_url``, its clock at DAY_A 10:00 (``News.clock``)."""
    shutil.copytree(CONFIG_DIR, tmp_path / "config", ignore=shutil.ignore_patterns("demo"))
    env = {
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "reports-test-secret-000",
        "SITECUE_CONFIG_DIR": str(tmp_path / "config"),
        "SITECUE_DB": store_url,
    }
    clock = [at(0, 10)]
    monkeypatch.setattr(tag_api, "_now_ms", lambda: clock[0])
    monkeypatch.setattr(reports_api, "_now_ms", lambda: clock[0])
    with TestClient(build_app(Settings.load(env=env)), base_url=NEWS) as client:
        text, record = mint_key(["news"])
        client.portal.call(client.app.state.runtime.store.add_api_key, record)  # type: ignore[attr-defined]
        yield News(client, text, clock)
