"""Store faults, end to end: with the disk full (a real server process whose files may not
grow: neither the database nor the spool can take a record), decide answers 503 in JSON
with Retry-After and /healthz says so too; with PostgreSQL stopped (a throwaway cluster of
the test's own) decide answers from the cookie and spools; once the store is back both
answer 200 again, without a restart."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from starlette.testclient import TestClient

from admin_keys import ORIGIN
from postgres_cluster import stoppable_postgres_cluster
from servers import free_port
from sitecue.app import build_app
from sitecue.settings import Settings
from sitecue.tokens import TokenCodec
from sites import CONFIG_DIR

PAGE_VIEW = {"site": "news", "page": {"url": f"{ORIGIN}/news/articles/1.html"}}


def unavailable(status: int, headers: dict[str, str], body: bytes) -> bool:
    """A 503 in the usual JSON error shape, saying when to try again."""
    return (
        status == 503
        and headers.get("content-type") == "application/json"
        and json.loads(body)["error"] == "store: unavailable, nothing was stored; retry later"
        and headers.get("retry-after", "").isdigit()
    )


def test_a_full_disk_answers_503_and_recovers_without_a_restart(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SITECUE_SECRETS": "faults-test-secret-0000",
        "SITECUE_ALLOW_ORIGINS": ORIGIN,
        "SITECUE_DATA_DIR": str(tmp_path / "data"),  # the spool's too: it may not grow either
    }
    db = tmp_path / "data" / "sitecue.db"
    args = ["serve", "--config", str(CONFIG_DIR), "--db", f"sqlite:///{db}", "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "sitecue.cli", *args],
        env=env,
        stdout=subprocess.PIPE,  # a pipe, not a file: the server's files may not grow
        stderr=subprocess.STDOUT,
    )
    log: list[bytes] = []
    drain = threading.Thread(target=lambda: log.extend(server.stdout or []))
    drain.start()

    def call(method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            body = json.dumps(PAGE_VIEW) if method == "POST" else None
            conn.request(method, path, body, {"content-type": "application/json"})
            response = conn.getresponse()
            return response.status, dict(response.headers.items()), response.read()
        finally:
            conn.close()

    def page_view() -> tuple[int, dict[str, str], bytes]:
        return call("POST", "/v1/decide")

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert call("GET", "/healthz")[0] == 200
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log
                time.sleep(0.1)
        assert page_view()[0] == 200
        # The disk fills up: no file of the server's may grow by a byte.
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (0, hard))
        refused = [page_view() for _ in range(3)]
        assert all(unavailable(*answer) for answer in refused), refused
        assert [call("GET", "/healthz")[0] for _ in range(2)] == [503, 503]
        # Space again: health proves it with a commit of its own, and decide works.
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (hard, hard))
        assert call("GET", "/healthz")[0] == 200
        assert page_view()[0] == 200
        assert server.poll() is None  # the same process throughout
    finally:
        server.terminate()
        server.wait(timeout=10)
        drain.join()
        if server.stdout is not None:
            server.stdout.close()
    assert b"Traceback" not in b"".join(log), b"".join(log).decode()


def test_a_stopped_postgresql_spools_and_recovers_without_a_restart(tmp_path: Path) -> None:
    """Decide keeps answering 200 from the cookie; /healthz says degraded with the spool's
    depth (200: a load balancer keeps the node); once PostgreSQL is back the spooled
    decisions reach it, once each, and /healthz says ok again, without a restart."""
    settings = {
        "SITECUE_SECRETS": "faults-test-secret-0000",
        "SITECUE_CONFIG_DIR": str(CONFIG_DIR),
        "SITECUE_ALLOW_ORIGINS": ORIGIN,
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
    }
    with stoppable_postgres_cluster() as cluster, serving(cluster.url, settings) as client:

        def page_view(n: int) -> int:
            body = {**PAGE_VIEW, "call": f"faults-call-{n}"}
            return client.post("/v1/decide", json=body, headers={"origin": ORIGIN}).status_code

        assert page_view(0) == 200
        cluster.stop()
        assert [page_view(n) for n in range(1, 4)] == [200, 200, 200]
        health = client.get("/healthz")
        assert health.status_code == 200
        assert (health.json()["status"], health.json()["spool"]) == ("degraded", 3)
        # An email link's visitor is decided from the cookie too, identification skipped.
        token = TokenCodec([settings["SITECUE_SECRETS"]]).mint("news", "c-1", int(time.time()) + 60)
        identified = client.post(
            "/v1/decide", json={**PAGE_VIEW, "token": token}, headers={"origin": ORIGIN}
        )
        assert (identified.status_code, identified.json()["identified"]) == (200, False)
        counted = client.app.state.runtime.metrics.requests  # type: ignore[attr-defined]
        assert counted[("POST", "/v1/decide", 200)] == 5
        cluster.start()
        deadline = time.monotonic() + 30
        while client.get("/healthz").json()["status"] != "ok":
            assert time.monotonic() < deadline, client.get("/healthz").json()
            time.sleep(0.1)
        assert page_view(4) == 200
        assert scalar(cluster.url, "SELECT COUNT(*) FROM decisions") == 6
    assert not list((tmp_path / "data" / "spool").iterdir())  # forwarded, then removed


def scalar(url: str, sql: str) -> object:
    async def main() -> object:
        db = await asyncpg.connect(url)
        try:
            return await db.fetchval(sql)
        finally:
            await db.close()

    return asyncio.run(main())


@contextmanager
def serving(url: str, settings: dict[str, str]) -> Iterator[TestClient]:
    app = build_app(Settings.load(env={**settings, "SITECUE_DB": url}))
    with TestClient(app, base_url=ORIGIN) as client:
        yield client
