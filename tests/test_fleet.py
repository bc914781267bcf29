"""One config for the fleet, end to end: two real ``sitecue serve --workers 2`` nodes on one
real PostgreSQL, one ``sitecue config push``, and every one of the four workers on the new
version within 5 s. The propagation time (publication to the last worker's swap, both
stamped on this machine's clock) is printed: ``pytest -s tests/test_fleet.py``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from servers import free_port, sitecue_process
from sitecue.store import open_store
from sites import CONFIG_DIR

ORIGIN = "https://news.example"
WORKERS = 2
LIMIT_MS = 5_000


def health(url: str) -> dict[str, Any]:
    """One /healthz on a new connection (so any worker of the node may answer)."""
    request = urllib.request.Request(f"{url}/healthz", headers={"connection": "close"})
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def decide(url: str) -> list[str]:
    body = json.dumps({"site": "news", "page": {"url": f"{ORIGIN}/"}}).encode()
    request = urllib.request.Request(f"{url}/v1/decide", body, {"origin": ORIGIN})
    with urllib.request.urlopen(request, timeout=5) as response:
        return [d["rule"] for d in json.load(response)["decisions"]]


def workers_of(url: str) -> set[int]:
    """The process ids of a node's workers, learnt from /healthz (the kernel hands each new
    connection to one of them); the deadline only stops a broken node hanging the run."""
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while len(seen) < WORKERS and time.monotonic() < deadline:
        seen.add(health(url)["worker"])
    assert len(seen) == WORKERS, f"{url}: saw workers {seen}"
    return seen


@pytest.fixture
def fleet(tmp_path: Path, postgres_server: str) -> Iterator[tuple[list[str], str, dict[str, str]]]:
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    database = postgres_server.replace("@/postgres?", f"@/{name}?")

    async def create() -> None:
        db = await asyncpg.connect(postgres_server)
        try:
            await db.execute(f"CREATE DATABASE {name}")
        finally:
            await db.close()

    asyncio.run(create())
    env = {**os.environ, "SITECUE_SECRETS": "fleet-test-secret-0000", "SITECUE_DB": database}
    urls = []
    with ExitStack() as nodes:
        for n in range(2):
            config = tmp_path / f"node{n}" / "config"
            shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns("demo"))
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            node_env = {**env, "SITECUE_DATA_DIR": str(tmp_path / f"node{n}" / "data")}
            args = ["serve", "--config", str(config), "--port", str(port)]
            args += ["--workers", str(WORKERS)]
            log = tmp_path / f"node{n}.log"
            nodes.enter_context(sitecue_process(args, node_env, log, f"{url}/healthz"))
            urls.append(url)
        yield urls, database, env


def test_one_push_reaches_every_worker_of_every_node_within_5_s(
    fleet: tuple[list[str], str, dict[str, str]], tmp_path: Path
) -> None:
    urls, database, env = fleet
    workers = {url: workers_of(url) for url in urls}
    assert len(set.union(*workers.values())) == 2 * WORKERS
    assert {health(url)["config"]["version"] for url in urls} == {1}  # the first node's dir
    assert decide(urls[0]) == decide(urls[1]) == []

    config = tmp_path / "pushed"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns("demo"))
    site_file = config / "sites" / "news.json"
    news = json.loads(site_file.read_text())
    welcome = {"id": "welcome", "placement": {"type": "bar"}, "when": {"page.path": "/"},
               "variants": [{"id": "on", "weight": 100, "widget": "subscription-faq"}]}  # fmt: skip
    site_file.write_text(json.dumps({**news, "rules": [*news["rules"], welcome]}))
    push = [sys.executable, "-m", "sitecue.cli", "config", "push", "--config", str(config)]
    done = subprocess.run([*push, "-m", "welcome bar"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "as config version 2" in done.stdout

    # Each worker says which version it serves and since when; wait until all four say 2.
    applied: dict[int, int] = {}
    deadline = time.monotonic() + 60
    while len(applied) < 2 * WORKERS and time.monotonic() < deadline:
        for url in urls:
            answer = health(url)
            if answer["config"]["version"] == 2:
                applied[answer["worker"]] = answer["config"]["applied"]
        time.sleep(0.02)
    assert set(applied) == set.union(*workers.values()), f"on version 2: {sorted(applied)}"

    async def published() -> int:
        store = await open_store(database)
        try:
            return (await store.config_history(1))[0].created
        finally:
            await store.close()

    created = asyncio.run(published())
    propagation = max(applied.values()) - created
    print(
        f"\nconfig push -> all {2 * WORKERS} workers on version 2: {propagation} ms "
        f"(each: {sorted(a - created for a in applied.values())} ms)"
    )
    assert 0 <= propagation <= LIMIT_MS
    assert decide(urls[0]) == decide(urls[1]) == ["welcome"]
