"""The dashboard's report panels in a real browser: four weeks of the demo's made-up
traffic for fixed days (October 2026) written through the store's writer, ``sitecue demo``
started on that store, and the dashboard opened on those days. Every rule's chart shows,
with its axes, labels and legend, and its CSV downloads from the signed-in session. A
screenshot of two panels is kept in test-artifacts/ for people to look at (copies in
tests/browser/screenshots/)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from conftest import CHECKOUT
from servers import free_port, sitecue_process
from sitecue.demo_history import history
from sitecue.keyring import Keyring
from sitecue.rules import load_sites
from sitecue.runtime import goals_of
from sitecue.settings import Settings
from sitecue.store import open_store

ARTIFACTS = CHECKOUT / "test-artifacts"
UNTIL_DAY = (date(2026, 10, 31) - date(1970, 1, 1)).days  # history: 2026-10-03 to 2026-10-30
PERIOD = "from=2026-10-03&to=2026-10-30"
RULES = {
    "news": ["paywall-faq", "newsletter"],
    "shop": [
        "loyalty-offer",
        "first-purchase",
        "free-express",
        "exit-discount",
        "recently-viewed",
        "bought-together",
    ],
}


def _fill(env: dict[str, str]) -> None:
    """The history of every demo site, through the writer, as the demo would seed it."""
    settings = Settings.load(env=env, demo=True)
    sites = load_sites(settings.config_dir, frozenset(), Keyring(settings.secrets))

    async def fill() -> None:
        store = await open_store(settings.db, goals_of(sites))
        try:
            for site in sites.values():
                for events, decisions in history(site, UNTIL_DAY):
                    await store.write(events, decisions)
        finally:
            await store.close()

    # A thread of its own: Playwright's sync API may be running an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, fill()).result()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The demo on a store holding October's history; its URL and an admin key."""
    data = tmp_path_factory.mktemp("reports-data")
    env = {
        **os.environ,
        "SITECUE_DATA_DIR": str(data),
        "SITECUE_CONFIG_DIR": str(CHECKOUT / "config"),
    }
    _fill(env)
    key = (
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sitecue.cli",
                "apikey",
                "create",
                "--site",
                "news",
                "--site",
                "shop",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with sitecue_process(
        ["demo", "--port", str(port)], env, data / "demo.log", f"{url}/sc/healthz", cwd=CHECKOUT
    ):
        yield url, key


def test_every_rule_has_a_readable_chart_and_its_csv_downloads(
    context: BrowserContext, reports: tuple[str, str], tmp_path: Path
) -> None:
    url, key = reports
    page = context.new_page()
    page.set_viewport_size({"width": 1100, "height": 900})
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{url}/sc/dashboard")
    page.get_by_label("Admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("region", name="news")).to_be_visible()
    page.goto(f"{url}/sc/dashboard?{PERIOD}")  # the days of the history, whatever today is

    for site, rules in RULES.items():
        region = page.get_by_role("region", name=site, exact=True)
        expect(region.locator("svg.report-chart")).to_have_count(len(rules))
        for rule in rules:
            chart = region.get_by_role(
                "img", name=f"Report of {rule}: impressions and", exact=False
            )
            expect(chart).to_be_visible()
            expect(chart.locator("rect.bar")).to_have_count(28)  # a bar a day, every day
            expect(chart).to_contain_text("impressions")
            expect(chart).to_contain_text("Oct 3")
            expect(region.get_by_role("table", name=f"Totals of {rule}")).to_be_visible()

    faq = page.get_by_role(
        "img", name="Report of paywall-faq: impressions and conversion rate to date"
    )
    for label in ("faq", "control", "95% interval", "conversion rate to date", "Oct 27"):
        expect(faq.get_by_text(label, exact=True)).to_be_visible()
    expect(faq.locator("path.band")).to_have_count(2)
    expect(faq.locator("path.rate")).to_have_count(2)
    ticks = faq.locator("text").all_text_contents()
    rates = [float(t[:-1]) for t in ticks if re.fullmatch(r"\d+(\.\d+)?%", t)]
    # Scaled to the data: a rate axis of a few percent, not 0–100%.
    assert rates[0] == 0 and 1 < rates[-1] <= 40, ticks
    express = page.get_by_role(
        "img",
        name="Report of free-express: impressions and conversion rate of the day's new visitors",
    )
    expect(express.locator("path.band")).to_have_count(0)  # one variant: no interval band
    expect(express.locator("path.rate")).to_have_count(1)

    # The CSV link works from this browser session (no bearer key in sight).
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV of the paywall-faq report").click()
    saved = tmp_path / "report.csv"
    download.value.save_as(saved)
    rows = saved.read_text().splitlines()
    assert download.value.suggested_filename == "news-paywall-faq-2026-10-03-2026-10-30.csv"
    assert len(rows) == 1 + 28 * 2 and rows[1].startswith("2026-10-03,")

    assert not [text for text in console if "Content Security Policy" in text]
    ARTIFACTS.mkdir(exist_ok=True)
    for rule in ("paywall-faq", "free-express"):
        panel = page.get_by_role("group", name=rule)
        panel.screenshot(path=str(ARTIFACTS / f"report-{rule}.png"))
    page.screenshot(path=str(ARTIFACTS / "dashboard-reports.png"), full_page=True)
