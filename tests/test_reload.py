"""Reloading the config on SIGHUP, in a real ``sitecue serve`` process: a good config is
swapped in at once; a bad one is refused with check's messages and the old one keeps serving."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import free_port, sitecue_process
from sites import CONFIG_DIR

ORIGIN = "https://news.example"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes], Path]]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns("demo"))
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "reload-test-secret-000",
    }
    url = f"http://127.0.0.1:{port}"
    args = ["serve", "--config", str(config), "--port", str(port)]
    with sitecue_process(args, env, log, f"{url}/healthz") as proc:
        yield url, config, proc, log


def decide(url: str) -> Any:
    body = json.dumps({"site": "news", "page": {"url": f"{ORIGIN}/"}}).encode()
    request = urllib.request.Request(f"{url}/v1/decide", body, {"origin": ORIGIN})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def rules_after_reload(url: str, proc: subprocess.Popen[bytes], expected: list[str]) -> list[str]:
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while (
        rules := [d["rule"] for d in decide(url)["decisions"]]
    ) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return rules


def test_sighup_swaps_in_a_good_config_and_refuses_a_bad_one(
    server: tuple[str, Path, Any, Path],
) -> None:
    url, config, proc, log = server
    site_file = config / "sites" / "news.json"
    news = json.loads(site_file.read_text())
    assert decide(url)["decisions"] == []

    welcome = {"id": "welcome", "placement": {"type": "bar"}, "when": {"page.path": "/"},
               "variants": [{"id": "on", "weight": 100, "widget": "subscription-faq"}]}  # fmt: skip
    site_file.write_text(json.dumps({**news, "rules": [*news["rules"], welcome]}))
    assert rules_after_reload(url, proc, ["welcome"]) == ["welcome"]
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
        assert json.load(response)["config"]["version"] == 2  # published, as every node sees

    broken = {**welcome, "id": "broken", "when": {"page.path": {"$regx": "/"}}}
    site_file.write_text(json.dumps({**news, "rules": [broken]}))
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload refused" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    output = log.read_text()
    assert "reload refused, the old config keeps serving" in output
    assert f'{site_file}: $.rules[0].when["page.path"].$regx: expected a known operator' in output
    assert [d["rule"] for d in decide(url)["decisions"]] == ["welcome"]  # still the old config
    assert proc.poll() is None
