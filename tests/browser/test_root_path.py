"""sitecue behind a proxy prefix, in a real browser: ``sitecue serve --root-path /sc`` behind
a proxy that strips ``/sc/`` (as the README's nginx block), the tag loaded from the site's
``/sc/cue.js`` (and its pinned ``/sc/cue.<version>.js``) and the dashboard at
``/sc/dashboard``. Every URL and cookie the browser gets must stay under ``/sc/``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pages import open_page
from playwright.sync_api import BrowserContext, expect

from conftest import CHECKOUT
from proxy import Proxy, stripping_proxy
from servers import free_port, sitecue_process

PAGE = (
    '<!doctype html><html lang="en"><meta charset="utf-8"><title>News</title>'
    '<h1>News</h1><div id="newsletter"></div>'
    '<script async src="{src}" data-site="news"></script></html>'
)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, dict[str, str]]]:
    """The site's host (the proxy) and the environment of the node behind it."""
    root = tmp_path_factory.mktemp("root-path")
    config = root / "config"
    shutil.copytree(CHECKOUT / "config", config, ignore=shutil.ignore_patterns("demo*"))
    with stripping_proxy("/sc") as proxy:
        env = {
            **os.environ,
            "SITECUE_DATA_DIR": str(root / "data"),
            "SITECUE_CONFIG_DIR": str(config),
            "SITECUE_SECRETS": "root-path-test-secret-0000",
            "SITECUE_ALLOW_ORIGINS": proxy.url,  # the site's pages are on the proxy's host
            "SITECUE_ROOT_PATH": "/sc",
        }
        port = free_port()
        log = root / "serve.log"
        # Its health check goes straight to the node, below the prefix it does not see.
        with sitecue_process(
            ["serve", "--port", str(port)], env, log, f"http://127.0.0.1:{port}/healthz"
        ):
            proxy.upstream = port
            with urllib.request.urlopen(f"{proxy.url}/sc/cue.js") as script:
                version = script.headers["etag"].strip('"')
            proxy.pages["/news/"] = PAGE.format(src="/sc/cue.js").encode()
            proxy.pages["/news/?pinned"] = PAGE.format(src=f"/sc/cue.{version}.js").encode()
            yield proxy, env


def _sitecue_cookies(context: BrowserContext) -> dict[str, str]:
    return {c["name"]: c["path"] for c in context.cookies() if c["name"].startswith("sc_")}


@pytest.mark.parametrize("page_path", ["/news/", "/news/?pinned"])
def test_the_tag_decides_and_keeps_its_cookies_under_the_prefix(
    context: BrowserContext, proxied: tuple[Proxy, dict[str, str]], page_path: str
) -> None:
    proxy, _ = proxied
    page = context.new_page()
    with page.expect_request(f"{proxy.url}/sc/v1/events"):  # the impression's beacon
        first = open_page(page, proxy.url + page_path)
    assert [d["rule"] for d in first["decisions"]] == ["newsletter"]
    # The cookies are the proxy path's, none on the site's other pages.
    assert _sitecue_cookies(context) == {"sc_vid": "/sc/", "sc_s": "/sc/"}
    # ... and come back with the next page view: the same visitor.
    assert open_page(page, proxy.url + page_path)["visitor"] == first["visitor"]
    # The node was asked for its own paths: the proxy stripped /sc.
    assert {"/v1/decide", "/v1/events"} <= set(proxy.forwarded)
    assert not any(p.startswith("/sc/") for p in proxy.forwarded)


def test_the_dashboard_signs_in_and_out_under_the_prefix(
    context: BrowserContext, proxied: tuple[Proxy, dict[str, str]]
) -> None:
    proxy, env = proxied
    key = subprocess.run(
        [sys.executable, "-m", "sitecue.cli", "apikey", "create", "--site", "news"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    page = context.new_page()
    page.goto(f"{proxy.url}/sc/dashboard")
    page.get_by_label("Admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()  # a form post, then a 303
    expect(page.get_by_role("region", name="news")).to_be_visible()
    assert page.url == f"{proxy.url}/sc/dashboard"
    assert _sitecue_cookies(context) == {"sc_admin": "/sc/dashboard"}

    csv = page.get_by_role("link", name="CSV of the newsletter report")
    href = csv.get_attribute("href")
    assert href is not None and href.startswith("/sc/dashboard/report.csv?site=news&rule=")
    report = page.request.get(proxy.url + href)  # the browser's session authorises it
    assert report.status == 200 and report.headers["content-type"].startswith("text/csv")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Admin key")).to_be_visible()
    assert page.url == f"{proxy.url}/sc/dashboard"
    assert _sitecue_cookies(context) == {}
    assert "/dashboard/login" in proxy.forwarded and "/dashboard/logout" in proxy.forwarded


def test_the_openapi_document_names_the_prefix(proxied: tuple[Proxy, dict[str, str]]) -> None:
    proxy, _ = proxied
    with urllib.request.urlopen(f"{proxy.url}/sc/openapi.json") as answer:
        document = answer.read()
    assert b'"servers":[{"url":"/sc"}]' in document


def test_every_url_the_demo_prints_works(demo_url: str, demo_env: dict[str, str]) -> None:
    """``sitecue demo`` prints its URLs under the same paths as the README: the pages, the
    tag and the dashboard under ``/sc/`` (the shop's tag under ``/shop/sc/``)."""
    printed = (Path(demo_env["SITECUE_DATA_DIR"]) / "demo.log").read_text()
    paths = re.findall(r"http://[^/\s]+(/\S*)|(/shop/sc/\S+?)\)", printed)
    found = {a or b for a, b in paths}
    assert {"/news/", "/shop/", "/sc/cue.js", "/shop/sc/cue.js", "/sc/dashboard"} <= found
    for path in found:
        with urllib.request.urlopen(demo_url + path) as answer:
            assert answer.status == 200, path


def test_the_node_answers_its_paths_with_the_prefix_or_without(
    proxied: tuple[Proxy, dict[str, str]],
) -> None:
    """Asked directly (a scrape of each node, a load balancer's health check), or through a
    proxy that passes ``/sc/...`` whole, the node answers the README's paths too."""
    node = f"http://127.0.0.1:{proxied[0].upstream}"
    for path in ("/sc/healthz", "/healthz", "/sc/cue.js", "/cue.js", "/sc/openapi.json"):
        with urllib.request.urlopen(node + path) as answer:
            assert answer.status == 200, path
    with urllib.request.urlopen(f"{node}/sc/dashboard") as answer:
        assert answer.headers["x-frame-options"] == "DENY"  # its defences hold there too
