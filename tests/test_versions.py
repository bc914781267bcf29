"""Each worker serves the store's live config version: a fresh store gets the config
directory as version 1, a reload on one app reaches another on the next poll, a version
that does not compile on a node is skipped there, and a restart publishes a directory
only when it was edited on that node. Real apps (in process) on real stores."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.app import build_app
from sitecue.runtime import Runtime
from sitecue.settings import Settings
from sitecue.snapshots import read_dir
from sitecue.store import Store, open_store
from stores import with_store

WELCOME = {"id": "welcome", "placement": {"type": "bar"}, "when": {"page.path": "/"},
           "variants": [{"id": "on", "weight": 100, "widget": "subscription-faq"}]}  # fmt: skip


def add_welcome(config: Path) -> None:
    site_file = config / "sites" / "news.json"
    news = json.loads(site_file.read_text())
    site_file.write_text(json.dumps({**news, "rules": [*news["rules"], WELCOME]}))


def rules(client: TestClient) -> list[str]:
    answer = client.post("/v1/decide", json={"site": "news", "page": {"url": f"{ORIGIN}/"}})
    assert answer.status_code == 200, answer.text
    return [d["rule"] for d in answer.json()["decisions"]]


def served(client: TestClient) -> int | None:
    config: dict[str, Any] | None = client.get("/healthz").json()["config"]
    return None if config is None else int(config["version"])


def runtime_of(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def poll(client: TestClient) -> None:
    """One poll of the watcher, now (it runs every POLL_S seconds by itself)."""
    versions = runtime_of(client).versions
    assert versions is not None and client.portal is not None
    client.portal.call(versions.check)


@pytest.fixture
def settings(env: dict[str, str], store_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SITECUE_DB", store_url)
    return Settings.load(env={**env, "SITECUE_DB": store_url})


def node(settings: Settings, data: Path, config: Path | None = None) -> Settings:
    """Another node on the same store: its own data directory (and config directory)."""
    return Settings(config or settings.config_dir, data, settings.db, settings.secrets)


def test_a_fresh_store_gets_the_config_directory_as_version_1(settings: Settings) -> None:
    with TestClient(build_app(settings), base_url=ORIGIN) as client:
        health = client.get("/healthz").json()
        assert health["config"]["version"] == 1 and health["worker"] == os.getpid()
        assert health["config"]["hash"] == read_dir(settings.config_dir).hash
    (first,) = with_store(settings.db, lambda s: s.config_history())
    assert first.author == socket.gethostname() and "first start" in first.message
    with TestClient(build_app(settings), base_url=ORIGIN) as client:  # a restart: the same
        assert served(client) == 1
    assert len(with_store(settings.db, lambda s: s.config_history())) == 1


def test_a_reload_on_one_app_reaches_the_other_on_its_next_poll(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news", "shop")
    with (
        TestClient(build_app(settings), base_url=ORIGIN) as one,
        TestClient(build_app(node(settings, tmp_path / "two")), base_url=ORIGIN) as two,
    ):
        assert served(one) == served(two) == 1
        add_welcome(settings.config_dir)
        reloaded = one.post("/v1/reload", headers={"authorization": f"Bearer {key}"})
        assert reloaded.json() == {"reloaded": ["news", "shop"], "version": 2}
        assert served(one) == 2 and rules(one) == ["welcome"]  # at once where it was asked
        poll(two)  # (PostgreSQL's NOTIFY may have woken it already: then nothing to do)
        assert served(two) == 2 and rules(two) == ["welcome"]
        assert runtime_of(two).store.goals == runtime_of(one).store.goals
        poll(two)  # nothing newer: nothing changes
        assert served(two) == 2
    history = with_store(settings.db, lambda s: s.config_history())
    assert history[0].author == f"POST /v1/reload, key {key.split('_')[1]}"


def test_a_version_that_does_not_compile_on_a_node_is_skipped_there(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Published from a machine that has a webhook's secret in its environment, a version
    does not compile on a node without it: that node logs it once and keeps serving the
    version before, and takes the next good one."""
    pushed = tmp_path / "pushed"
    shutil.copytree(settings.config_dir, pushed)
    site_file = pushed / "sites" / "news.json"
    news = json.loads(site_file.read_text())
    hook = {"id": "crm", "url": "https://crm.example/hook", "events": ["form.submitted"],
            "secret_env": "SITECUE_WEBHOOK_NOT_HERE_SECRET"}  # fmt: skip
    site_file.write_text(json.dumps({**news, "webhooks": [hook]}))
    with TestClient(build_app(settings), base_url=ORIGIN) as client:
        with_store(settings.db, lambda s: s.publish_config(read_dir(pushed).files, "ci", "", 1))
        with caplog.at_level(logging.ERROR, "sitecue"):
            poll(client)
            poll(client)
        refused = [r.getMessage() for r in caplog.records if "does not compile" in r.getMessage()]
        assert len(refused) == 1 and "version 1 keeps serving" in refused[0]
        assert "config version 2: sites/news.json: $.webhooks[0].secret_env" in refused[0]
        assert served(client) == 1 and client.get("/healthz").status_code == 200
        add_welcome(pushed)
        site_file.write_text(json.dumps({**json.loads(site_file.read_text()), "webhooks": []}))
        with_store(settings.db, lambda s: s.publish_config(read_dir(pushed).files, "ci", "", 2))
        poll(client)
        assert served(client) == 3 and rules(client) == ["welcome"]


def test_a_restart_publishes_the_directory_only_when_it_was_edited_on_that_node(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(build_app(settings), base_url=ORIGIN) as client:
        assert served(client) == 1
    pushed = tmp_path / "pushed"
    shutil.copytree(settings.config_dir, pushed)
    add_welcome(pushed)
    with_store(settings.db, lambda s: s.publish_config(read_dir(pushed).files, "ops", "", 1))
    # Its directory unchanged since it last read it: the node serves the live version 2.
    with (
        caplog.at_level(logging.WARNING, "sitecue"),
        TestClient(build_app(settings), base_url=ORIGIN) as client,
    ):
        assert served(client) == 2 and rules(client) == ["welcome"]
    assert f"sitecue config push --config {settings.config_dir}" in caplog.text
    # A new node (no record of ever reading its directory) does not roll the fleet back.
    fresh = node(settings, tmp_path / "new-node")
    with TestClient(build_app(fresh), base_url=ORIGIN) as client:
        assert served(client) == 2
    # Edited on this node, then restarted (as uvicorn's workers restart on SIGHUP): published.
    site_file = settings.config_dir / "sites" / "news.json"
    news = json.loads(site_file.read_text())
    site_file.write_text(json.dumps({**news, "rules": [{**WELCOME, "id": "edited"}]}))
    with TestClient(build_app(settings), base_url=ORIGIN) as client:
        assert served(client) == 3 and rules(client) == ["edited"]
    assert with_store(settings.db, lambda s: s.config_history())[0].message.endswith(
        "edited, at start"
    )


def test_the_demo_publishes_its_directory_at_start_when_it_differs(
    settings: Settings, tmp_path: Path
) -> None:
    fresh = node(settings, tmp_path / "another")  # no record: a plain node would not publish
    with TestClient(build_app(settings), base_url=ORIGIN):
        pass
    add_welcome(settings.config_dir)
    with TestClient(build_app(fresh, publish=True), base_url=ORIGIN) as client:
        assert served(client) == 2 and rules(client) == ["welcome"]


def test_the_dashboard_shows_the_live_version(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news")
    digest = read_dir(settings.config_dir).hash
    with TestClient(build_app(settings), base_url=ORIGIN) as client:
        page = client.post("/dashboard/login", data={"key": key}, headers={"origin": ORIGIN})
        assert f"config version 1 <code>{digest[:12]}</code>" in page.text


def test_two_workers_starting_on_a_fresh_store_make_one_version(settings: Settings) -> None:
    """Workers of one node start together: one publishes version 1, the other serves it."""

    async def race() -> list[int]:
        snapshot = read_dir(settings.config_dir)
        stores: list[Store] = [await open_store(settings.db) for _ in range(2)]
        try:
            made = await asyncio.gather(
                *(s.publish_config(snapshot.files, "w", "", 1, only_if_empty=True) for s in stores)
            )
            return sorted(h.version for h, _ in made)
        finally:
            for s in stores:
                await s.close()

    assert asyncio.run(race()) == [1, 1]
