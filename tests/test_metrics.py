"""GET /metrics: what an operator's Prometheus scrapes, counted from real requests."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import stat
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from servers import free_port, sitecue_process
from sitecue.app import build_app
from sitecue.conditions import REGEX_TIMEOUTS
from sitecue.errors import StoreUnavailable
from sitecue.metric_files import COUNTER, parse
from sitecue.metrics import Histogram, Metrics
from sitecue.settings import Settings
from sitecue.state import MAX_COOKIE_BYTES, StateCodec, VisitorState, sent_size

SHOP = "https://shop.example"


def scrape(client: TestClient, key: str) -> dict[str, float]:
    response = client.get("/metrics", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_requests_decisions_rejects_and_the_writer_are_counted(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    page = {"site": "news", "page": {"url": f"{ORIGIN}/news/articles/1.html"}}
    for _ in range(3):
        client.post("/v1/decide", json=page, headers={"origin": ORIGIN})
    client.post("/v1/decide", json={"site": "news"}, headers={"origin": ORIGIN})  # no page
    client.cookies.set("sc_s", "forged.value.sig", domain="news.example")
    client.post("/v1/decide", json=page, headers={"origin": ORIGIN})
    shop = {"site": "shop", "page": {"url": f"{SHOP}/shop/"}}
    client.post("/v1/decide", json=shop, headers={"origin": SHOP})

    samples = scrape(client, new_key(capsys, "news"))
    decide = 'route="/v1/decide"'
    assert samples[f'sitecue_requests_total{{method="POST",{decide},status="200"}}'] == 5
    assert samples[f'sitecue_requests_total{{method="POST",{decide},status="400"}}'] == 1
    assert samples[f"sitecue_request_seconds_count{{{decide}}}"] == 6
    assert samples[f'sitecue_request_seconds_bucket{{{decide},le="+Inf"}}'] == 6
    not_shown = 'sitecue_decisions_total{site="news",rule="paywall-faq",outcome="not shown"}'
    assert samples[not_shown] == 4
    assert samples['sitecue_rejected_total{kind="cookie",reason="bad signature"}'] == 1
    assert samples["sitecue_writer_queue_records"] == 0
    assert samples["sitecue_writer_batch_records_count"] == 5  # one group per request here
    assert not any('site="shop"' in name for name in samples)  # a news key sees news only


def test_regex_searches_cut_off_are_counted_by_site(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    news = Path(env["SITECUE_CONFIG_DIR"]) / "sites" / "news.json"
    config = json.loads(news.read_text())
    config["rules"][1]["when"] = {"page.title": {"$regex": "^(a|aa)+$"}}
    news.write_text(json.dumps(config))
    page = {"site": "news", "page": {"url": f"{ORIGIN}/news/", "title": "a" * 40 + "!"}}
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        before = REGEX_TIMEOUTS["news"]
        for _ in range(2):
            response = client.post("/v1/decide", json=page, headers={"origin": ORIGIN})
            assert response.status_code == 200
            assert response.json()["decisions"] == []  # the clause failed closed
        samples = scrape(client, new_key(capsys, "news"))
    assert samples['sitecue_regex_timeouts_total{site="news"}'] == before + 2


def test_histogram_buckets_are_cumulative() -> None:
    histogram = Histogram((0.01, 0.1))
    for value in (0.005, 0.05, 0.05, 3.0):
        histogram.observe(value)
    lines = list(histogram.lines("t", (("route", 'a"b'),)))
    assert lines == [
        't_bucket{route="a\\"b",le="0.01"} 1',
        't_bucket{route="a\\"b",le="0.1"} 3',
        't_bucket{route="a\\"b",le="+Inf"} 4',
        't_sum{route="a\\"b"} 3.105000',
        't_count{route="a\\"b"} 4',
    ]
    assert all(re.fullmatch(r"\w+\{[^}]*\} [\d.]+", line) for line in lines)


def test_another_sites_cookie_and_evictions_are_counted(
    client: TestClient, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    shop = {"site": "shop", "page": {"url": f"{SHOP}/shop/"}}
    client.post("/v1/decide", json=shop, headers={"origin": SHOP})
    news = {"site": "news", "page": {"url": f"{ORIGIN}/news/"}}
    client.post("/v1/decide", json=news, headers={"origin": ORIGIN})  # the shop's cookie
    # Attributes that fill the cookie to the brim: the page view's news pushes it over, and
    # the snapshot goes (it is taken again at the next identification), counted.
    visitor = client.cookies["sc_vid"]
    heavy = VisitorState(visitor=visitor, attributes={"subscriber": True, "note": "x" * 1200})
    while sent_size(heavy) > MAX_COOKIE_BYTES:
        heavy.attributes["note"] = heavy.attributes["note"][1:]
    sealed = StateCodec(env["SITECUE_SECRETS"].split(",")).encode(heavy, "news")
    client.cookies.clear()
    client.cookies.set("sc_vid", visitor, domain="news.example")
    client.cookies.set("sc_s", sealed, domain="news.example")
    client.post("/v1/decide", json=news, headers={"origin": ORIGIN})

    samples = scrape(client, new_key(capsys, "news", "shop"))
    assert samples['sitecue_rejected_total{kind="cookie",reason="other site"}'] == 1
    assert samples['sitecue_state_evictions_total{site="news",kind="attributes"}'] == 1
    assert not any(name.startswith('sitecue_state_evictions_total{site="shop"') for name in samples)


def samples_of(text: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name and not name.startswith("#")
    }


def test_two_workers_of_a_node_report_their_sums_and_live_gauges(tmp_path: Path) -> None:
    directory = tmp_path / "node"
    directory.mkdir(mode=0o700)
    one, two = Metrics(directory), Metrics(directory)
    depth = {"one": 2, "two": 3}
    one.gauge("sitecue_writer_queue_records", "Records waiting.", lambda: depth["one"])
    two.gauge("sitecue_writer_queue_records", "Records waiting.", lambda: depth["two"])
    one.decisions[("news", "paywall-faq", "shown")] += 2
    two.decisions[("news", "paywall-faq", "shown")] += 5
    two.decisions[("shop", "loyalty", "shown")] += 1
    one.batches.observe(3)
    two.batches.observe(30)
    two.publish()
    shown = 'sitecue_decisions_total{site="news",rule="paywall-faq",outcome="shown"}'
    for answering in (one, two):
        samples = samples_of(answering.render({"news"}))
        assert samples[shown] == 7
        assert not any('site="shop"' in name for name in samples)  # the key's sites only
        assert samples["sitecue_writer_queue_records"] == 5
        assert samples["sitecue_writer_batch_records_count"] == 2
        assert samples['sitecue_writer_batch_records_bucket{le="5"}'] == 1
        assert samples["sitecue_writer_batch_records_sum"] == 33
    asyncio.run(two.stop())  # the worker stops (or dies): its gauge goes, its counts stay
    samples = samples_of(one.render({"news"}))
    assert samples[shown] == 7 and samples["sitecue_writer_queue_records"] == 2


DECIDE = json.dumps({"site": "news", "page": {"url": f"{ORIGIN}/news/"}}).encode()
DECIDED = 'sitecue_requests_total{method="POST",route="/v1/decide",status="200"}'


def decide(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"origin": ORIGIN, "content-type": "application/json"}
    connection.request("POST", "/v1/decide", DECIDE, headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def scrape_node(port: int, key: str) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return samples_of(response.read().decode())[DECIDED]


def decided_per_worker(directory: Path) -> dict[int, float]:
    """Each worker file's own count of answered decides, by the worker's pid."""
    counts: dict[int, float] = {}
    for path in directory.glob("*.series"):
        key = (COUNTER, "sitecue_requests_total", "POST", "/v1/decide", "200")
        values = dict(parse(path.read_bytes()))
        pid = int(path.name.split("-")[0])
        counts[pid] = counts.get(pid, 0) + values.get(key, 0)
    return counts


def test_every_scrape_of_a_node_reports_the_requests_of_all_its_workers(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    port, temporary = free_port(), tmp_path / "tmp"
    temporary.mkdir()
    with sitecue_process(
        ["serve", "--port", str(port), "--workers", "2"],
        {**os.environ, **env, "TMPDIR": str(temporary)},
        tmp_path / "serve.log",
        f"http://127.0.0.1:{port}/healthz",
    ):
        key = new_key(capsys, "news")
        (directory,) = temporary.glob("sitecue-metrics-*")
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700  # fresh, this user's alone
        # Requests in parallel until both workers have answered some (each accepts when it
        # is free): a scrape of one worker alone would then miss the other's.
        sent = 0
        with ThreadPoolExecutor(4) as pool:
            while sum(n > 0 for n in decided_per_worker(directory).values()) < 2:
                assert sent < 4000, "one worker answered every request"
                assert set(pool.map(lambda _: decide(port), range(40))) == {200}
                sent += 40
        for _ in range(20):  # each scrape answered by either worker
            assert scrape_node(port, key) == sent
        # A worker killed outright: uvicorn starts another; the count does not go down.
        victim = max(decided_per_worker(directory), key=decided_per_worker(directory).get)
        before = set(directory.glob("*.series"))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not set(directory.glob("*.series")) - before:
            assert time.monotonic() < deadline, "no worker took the killed one's place"
            time.sleep(0.1)
        for _ in range(10):
            assert scrape_node(port, key) == sent
        assert {decide(port) for _ in range(10)} == {200}
        for _ in range(10):
            assert scrape_node(port, key) == sent + 10
    assert not directory.exists()  # removed when the server stops


def test_the_spool_depth_is_a_gauge(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    key = new_key(capsys, "news")
    assert scrape(client, key)["sitecue_spool_records"] == 0

    async def stopped(*_: object) -> None:
        raise StoreUnavailable("the database system is shutting down")

    writer = client.app.state.runtime.store.writer  # type: ignore[attr-defined]
    writer.flush = writer.spool._flush = stopped  # the store stops taking groups
    page = {"site": "news", "page": {"url": f"{ORIGIN}/news/articles/1.html"}}
    for _ in range(3):
        assert client.post("/v1/decide", json=page, headers={"origin": ORIGIN}).status_code == 200
    assert scrape(client, key)["sitecue_spool_records"] == 3
    health = client.get("/healthz").json()
    assert {k: health[k] for k in ("status", "sites", "spool")} == {
        "status": "degraded",
        "sites": ["news", "shop"],
        "spool": 3,
    }
