"""``sitecue recommend run`` and the app's side: the job and the index refresher run in the
lifespan of every worker, so a site's index is loaded without a request doing anything."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN
from recommend_shop import NOW, products, put_products, view
from sitecue.app import build_app
from sitecue.cli import main
from sitecue.runtime import Runtime
from sitecue.settings import Settings
from sitecue.store import open_store


def with_catalog(env: dict[str, str]) -> str:
    """Give the copied shop config a catalog section; the database's URL."""
    path = Path(env["SITECUE_CONFIG_DIR"]) / "sites" / "shop.json"
    raw = json.loads(path.read_text())
    raw["catalog"] = {"min_support": 1}
    path.write_text(json.dumps(raw))
    return f"sqlite:///{Path(env['SITECUE_DATA_DIR']) / 'sitecue.db'}"


def seeded(url: str) -> None:
    async def write() -> None:
        store = await open_store(url)
        try:
            events = [view(f"v{i}", p, NOW) for i in range(3) for p in ("p001", "p002")]
            await store.write(events, [])
        finally:
            await store.close()

    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(write())
    put_products(url, "shop", products(5))


def test_recommend_run_counts_and_says_what_it_did(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    seeded(with_catalog(env))
    assert main(["recommend", "run", "--site", "shop"]) == 0
    assert capsys.readouterr().out.startswith(
        "shop: 6 events counted in 1 batches; lists changed (version 1);"
    )
    assert main(["recommend", "run"]) == 0  # every site with a catalog: shop only
    assert capsys.readouterr().out.startswith("shop: 0 events counted in 0 batches;")


def test_recommend_run_refuses_a_site_it_cannot_run(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with_catalog(env)
    assert main(["recommend", "run", "--site", "nope"]) == 2
    assert "--site: no site named 'nope' is configured" in capsys.readouterr().err
    assert main(["recommend", "run", "--site", "news"]) == 2
    assert "site 'news' has no catalog section" in capsys.readouterr().err


def test_every_worker_loads_the_index_in_the_background(env: dict[str, str]) -> None:
    seeded(with_catalog(env))
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        # The job runs at start and wakes the refresher when it has published the lists.
        while time.monotonic() < deadline:
            index = runtime.recommendations.get("shop")
            if index is not None and index.neighbours["viewed_together"].get("p001"):
                break
            time.sleep(0.05)
        assert index is not None and "news" not in runtime.recommendations
        assert index.neighbours["viewed_together"]["p001"] == ("p002",)
