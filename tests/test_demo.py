"""The demo (``sitecue demo``, ``make demo``) as a newcomer opens it: under whatever address
it is served (a LAN name, a Docker port published as another), on the port they ask for,
and with the FAQ the README promises within reach of every browser, the control group's
included."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from admin_keys import new_key
from servers import free_port
from sitecue.demo import build_demo_app
from sitecue.demo_history import MARKER
from sitecue.settings import Settings
from sites import CONFIG_DIR

CHECKOUT = CONFIG_DIR.parent
DECIDE = {"site": "news", "page": {"url": "x"}}


@pytest.fixture
def demo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The bundled config and demo pages, without the made-up history (quicker to start)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns(MARKER))
    values = {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(config)}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def demo(env: dict[str, str], url: str) -> TestClient:
    """The demo app as ``sitecue demo`` builds it, opened at ``url``; it lists none of the
    addresses used here (``sitecue demo`` adds only its own host and port)."""
    return TestClient(build_demo_app(Settings.load(env=env, demo=True)), base_url=url)


@pytest.mark.parametrize(
    "url", ["http://mybox.lan:8000", "http://localhost:9000", "https://demo.example"]
)
def test_the_demo_answers_its_own_pages_wherever_it_is_opened(
    demo_env: dict[str, str], url: str
) -> None:
    with demo(demo_env, url) as client:
        for path, site in (("/sc", "news"), ("/shop/sc", "shop")):
            body = {**DECIDE, "site": site}
            answer = client.post(f"{path}/v1/decide", json=body, headers={"origin": url})
            assert answer.status_code == 200, answer.text
            assert answer.json()["visitor"]


def test_the_demo_refuses_other_sites_pages_and_logs_each_once_with_the_fix(
    demo_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Allowing its own origin lets no other site in: another page's Origin is its own."""
    caplog.set_level(logging.WARNING, logger="sitecue")
    with demo(demo_env, "http://mybox.lan:8000") as client:
        for origin in ("https://evil.example", "http://mybox.lan:8001", "https://evil.example"):
            refused = client.post("/sc/v1/decide", json=DECIDE, headers={"origin": origin})
            assert refused.status_code == 403
            assert "access-control-allow-origin" not in refused.headers
    lines = [r.getMessage() for r in caplog.records if "refused a call" in r.getMessage()]
    assert len(lines) == 2
    assert "'https://evil.example'" in lines[0] and "SITECUE_ALLOW_ORIGINS" in lines[0]
    assert "sent to 'http://mybox.lan:8000'" in lines[0]  # where the demo was opened


def test_the_dashboard_previews_pages_of_the_address_the_demo_is_opened_on(
    demo_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = "http://localhost:9000"  # docker run -p 9000:8000
    key = new_key(capsys, "news")
    with demo(demo_env, url) as client:
        own = {"origin": url}
        assert client.post("/sc/dashboard/login", data={"key": key}, headers=own).is_success
        assert f'value="{url}/"' in client.get("/sc/dashboard").text  # the default page
        form = {"site": "news", "rule": "paywall-faq", "variant": "faq",
                "url": f"{url}/news/articles/2.html"}  # fmt: skip
        made = client.post("/sc/dashboard/preview", data=form, headers=own)
        assert made.status_code == 200, made.text
        assert f'href="{url}/news/articles/2.html?sc_preview=' in made.text
        elsewhere = {**form, "url": "https://evil.example/"}
        refused = client.post("/sc/dashboard/preview", data=elsewhere, headers=own)
        assert refused.status_code == 400


def test_the_faq_preview_shows_the_faq_to_a_visitor_of_the_control_group(
    demo_env: dict[str, str],
) -> None:
    url = "http://localhost:8000"
    with demo(demo_env, url) as client:
        sent = client.get("/news/faq-preview", follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["cache-control"] == "no-store"
        page = sent.headers["location"]
        assert page.startswith("/news/articles/1.html?sc_preview=")
        # Whatever the visitor's group, count or caps: a fresh browser, its first paywall.
        body = {**DECIDE, "page": {"url": url + page}}
        answer = client.post("/sc/v1/decide", json=body, headers={"origin": url}).json()
    [decision] = answer["decisions"]
    assert (decision["rule"], decision["variant"]) == ("paywall-faq", "faq")
    assert "Try us free for 7 days" in decision["html"]
    assert answer["preview"]["rule"] == "paywall-faq"


def test_the_faq_preview_of_a_config_without_the_faq_is_not_found(
    demo_env: dict[str, str],
) -> None:
    news = Path(demo_env["SITECUE_CONFIG_DIR"]) / "sites" / "news.json"
    config = json.loads(news.read_text())
    config["rules"] = [r for r in config["rules"] if r["id"] != "paywall-faq"]
    news.write_text(json.dumps(config))
    with demo(demo_env, "http://localhost:8000") as client:
        assert client.get("/news/faq-preview", follow_redirects=False).status_code == 404


def test_every_demo_page_has_a_viewport_tag() -> None:
    pages = sorted((CONFIG_DIR / "demo").rglob("*.html"))
    assert len(pages) >= 7
    tag = '<meta name="viewport" content="width=device-width, initial-scale=1">'
    assert [p.name for p in pages if tag not in p.read_text()] == []


def test_the_readme_tells_the_control_group_how_to_see_the_faq() -> None:
    """The walk-through says one browser in ten keeps the paywall (as the config's control
    weight makes it) and how to see the FAQ anyway, by the links the demo serves."""
    readme = " ".join((CHECKOUT / "README.md").read_text().split())  # lines joined
    news = json.loads((CONFIG_DIR / "sites" / "news.json").read_text())
    rule = next(r for r in news["rules"] if r["id"] == "paywall-faq")
    control = next(v for v in rule["variants"] if v["widget"] is None)
    assert control["weight"] == 10 and "one browser in ten" in readme
    assert "/news/faq-preview" in readme and "make demo PORT=9000" in readme
    assert "SITECUE_ALLOW_ORIGINS" in readme


@pytest.fixture
def make_demo(tmp_path: Path, demo_env: dict[str, str]) -> Iterator[tuple[int, Path]]:
    """``make demo PORT=<a free port>`` in the checkout, as a newcomer types it (with this
    interpreter's venv, and the venv taken as installed); stopped afterwards."""
    port = free_port()
    log = tmp_path / "make-demo.log"
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "demo", f"PORT={port}",
               f"BIN={Path(sys.executable).parent}"]  # fmt: skip
    with log.open("wb") as out:
        # Its own process group: make's child, the server, is stopped with it.
        proc = subprocess.Popen(
            command, cwd=CHECKOUT, env={**os.environ, **demo_env}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield port, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def test_make_demo_serves_on_the_port_it_is_given(make_demo: tuple[int, Path]) -> None:
    port, log = make_demo
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/news/", timeout=1) as page:
                assert b"The Daily Example" in page.read()
            break
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    assert re.search(rf"news site: http://localhost:{port}/news/", log.read_text())
