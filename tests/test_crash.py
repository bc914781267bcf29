"""Killed mid-load, nothing acknowledged is lost: a server under load from a second process
is killed with SIGKILL; after a restart, every page view that got a 2xx has its decision and
its event in the database. On both engines."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from admin_keys import ORIGIN
from servers import free_port, sitecue_process
from sitecue.store import DecisionQuery, open_store
from sites import CONFIG_DIR

HERE = Path(__file__).parent


def test_sigkill_under_load_loses_nothing_acknowledged(store_url: str, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "crash-test-secret-0000",
        "SITECUE_ALLOW_ORIGINS": ORIGIN,
    }
    args = ["serve", "--config", str(CONFIG_DIR), "--db", store_url, "--port", str(port)]
    acknowledged = tmp_path / "acknowledged.txt"
    with sitecue_process(args, env, tmp_path / "server.log", f"{url}/healthz") as server:
        load = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "load_client.py"),
                f"{url}/v1/decide",
                ORIGIN,
                str(acknowledged),
            ]
        )
        # Until 300 page views are acknowledged, however slow a busy machine makes that; the
        # deadline only stops a broken server from hanging the run.
        deadline = time.monotonic() + 180
        while (not acknowledged.exists() or len(acknowledged.read_text().split()) < 300) and (
            time.monotonic() < deadline and load.poll() is None
        ):
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        server.wait()
        load.wait(timeout=30)

    visitors = set(acknowledged.read_text().split())
    assert len(visitors) >= 300  # it was really under load when it died

    async def stored() -> tuple[set[str], set[str]]:
        store = await open_store(store_url)  # as the restarted server would
        try:
            records = await store.decisions(DecisionQuery(site="news", limit=10**6))
            events = await store.events("news", sorted(visitors))
        finally:
            await store.close()
        return {r.visitor for r in records}, {e.visitor for e in events}

    decided, evented = asyncio.run(stored())
    lost = visitors - decided
    assert not lost, f"{len(lost)} acknowledged page views lost of {len(visitors)}"
    assert visitors <= evented
    print(
        f"acknowledged {len(visitors)}, stored {len(decided)} (unacknowledged extras: "
        f"{len(decided - visitors)})"
    )
