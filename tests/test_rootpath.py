"""One root path: ``sitecue serve --root-path /sc`` (uvicorn puts ``/sc`` in the scope's
``root_path`` and in front of its ``path``) and the demo (which mounts sitecue under
``/sc`` and ``/shop/sc``) make the same URLs and cookie paths, for every kind the server
makes: visitor cookies, dashboard redirects, links, form actions and session cookie,
OpenAPI's ``servers``. And a root path can only ever be a plain path."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue import rootpath
from sitecue.app import build_app
from sitecue.cli import _parser
from sitecue.demo import build_demo_app
from sitecue.serve import ServeOptions
from sitecue.settings import Settings, SettingsError
from sites import CONFIG_DIR

OWN = {"origin": ORIGIN}
DECIDE = {"site": "news", "page": {"url": f"{ORIGIN}/news/"}}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The bundled config with its demo pages (the demo app reads them), without the demo's
    made-up history (nothing here needs it)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns("demo-history.txt"))
    for name, value in {
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "root-path-test-secret-0000",
        "SITECUE_CONFIG_DIR": str(config),
    }.items():
        monkeypatch.setenv(name, value)
    return Settings.load()


def _client(settings: Settings, how: str) -> TestClient:
    if how == "serve":  # as uvicorn --root-path /sc passes a request the proxy stripped
        return TestClient(build_app(settings), base_url=ORIGIN, root_path="/sc")
    if how == "root":  # sitecue serve without a root path
        return TestClient(build_app(settings), base_url=ORIGIN)
    return TestClient(build_demo_app(settings), base_url=ORIGIN)


def _cookie_paths(response: Any) -> dict[str, str]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        found[name] = re.search(r"; Path=([^;]*)", header).group(1)  # type: ignore[union-attr]
    return found


def _urls_made(client: TestClient, prefix: str, key: str) -> dict[str, Any]:
    """Every URL and cookie path the server makes, asked under ``prefix`` as the browser
    asks for it (the path the proxy or the demo receives)."""
    made: dict[str, Any] = {}
    decided = client.post(f"{prefix}/v1/decide", json=DECIDE, headers=OWN)
    made["visitor cookies"] = _cookie_paths(decided)
    declined = client.post(f"{prefix}/v1/decide", json={**DECIDE, "consent": False}, headers=OWN)
    made["cleared visitor cookies"] = _cookie_paths(declined)
    client.cookies.clear()
    login = client.get(f"{prefix}/dashboard").text
    made["sign-in form"] = re.findall(r'action="([^"]*)"', login)
    signed = client.post(
        f"{prefix}/dashboard/login", data={"key": key}, headers=OWN, follow_redirects=False
    )
    made["signed in"] = (signed.status_code, signed.headers["location"], _cookie_paths(signed))
    client.cookies.set("sc_admin", signed.cookies["sc_admin"], domain="news.example")
    page = client.get(f"{prefix}/dashboard")
    assert page.status_code == 200 and 'id="site-news"' in page.text
    made["dashboard's headers"] = page.headers["content-security-policy"]
    made["dashboard's actions"] = sorted(set(re.findall(r'action="([^"]*)"', page.text)))
    links = sorted(set(re.findall(r'href="([^"]*)"', page.text)))
    made["dashboard's links"] = [re.sub(r"from=[^&]*&amp;to=[^&\"]*", "PERIOD", h) for h in links]
    csv = re.search(r'href="([^"]*report\.csv[^"]*)"', page.text).group(1)  # type: ignore[union-attr]
    made["report"] = client.get(csv.replace("&amp;", "&")).status_code
    preview = client.post(
        f"{prefix}/dashboard/preview",
        data={"site": "news", "rule": "newsletter", "variant": "short", "url": f"{ORIGIN}/news/"},
        headers=OWN,
    )
    made["preview's link back"] = re.findall(r'<a href="([^"]*)">dashboard', preview.text)
    out = client.post(f"{prefix}/dashboard/logout", headers=OWN, follow_redirects=False)
    made["signed out"] = (out.status_code, out.headers["location"], _cookie_paths(out))
    made["openapi servers"] = client.get(f"{prefix}/openapi.json").json()["servers"]
    slash = client.get(f"{prefix}/dashboard/", follow_redirects=False)  # Starlette's own
    made["trailing slash"] = (slash.status_code, slash.headers["location"])
    return made


def test_serve_with_a_root_path_and_the_demo_make_the_same_urls(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news")
    with _client(settings, "serve") as served, _client(settings, "demo") as demo:
        proxied = _urls_made(served, "/sc", key)
        assert proxied == _urls_made(demo, "/sc", key)
    assert proxied["visitor cookies"] == {"sc_vid": "/sc/", "sc_s": "/sc/"}
    assert proxied["cleared visitor cookies"] == {"sc_vid": "/sc/", "sc_s": "/sc/"}
    assert proxied["sign-in form"] == ["/sc/dashboard/login"]
    assert proxied["signed in"] == (303, "/sc/dashboard", {"sc_admin": "/sc/dashboard"})
    assert proxied["signed out"] == (303, "/sc/dashboard", {"sc_admin": "/sc/dashboard"})
    assert all(a.startswith("/sc/dashboard") for a in proxied["dashboard's actions"])
    assert "/sc/dashboard/logout" in proxied["dashboard's actions"]
    assert "/sc/dashboard/preview" in proxied["dashboard's actions"]
    internal = [h for h in proxied["dashboard's links"] if not h.startswith("#")]
    assert internal and all(h.startswith("/sc/dashboard/report.csv?") for h in internal)
    assert proxied["report"] == 200
    assert proxied["preview's link back"] == ["/sc/dashboard"]
    assert proxied["openapi servers"] == [{"url": "/sc"}]
    assert proxied["trailing slash"] == (307, f"{ORIGIN}/sc/dashboard")


def test_the_demo_shop_and_a_node_at_the_hosts_root_follow_their_own_paths(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news")
    with _client(settings, "demo") as demo:
        shop = _urls_made(demo, "/shop/sc", key)
    assert shop["visitor cookies"] == {"sc_vid": "/shop/sc/", "sc_s": "/shop/sc/"}
    assert shop["signed in"] == (303, "/shop/sc/dashboard", {"sc_admin": "/shop/sc/dashboard"})
    assert shop["openapi servers"] == [{"url": "/shop/sc"}]
    with _client(settings, "root") as node:
        root = _urls_made(node, "", key)
    assert root["visitor cookies"] == {"sc_vid": "/", "sc_s": "/"}
    assert root["signed in"] == (303, "/dashboard", {"sc_admin": "/dashboard"})
    assert root["preview's link back"] == ["/dashboard"]
    assert root["openapi servers"] == [{"url": "/"}]


def test_a_redirect_names_a_path_whatever_the_host_header_says(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dashboard's redirects are paths, never URLs built from ``Host``: a request that
    names another host (its origin matching, as an attacker's own request can) is still
    sent to this site's dashboard."""
    key = new_key(capsys, "news")
    with TestClient(
        build_app(settings), base_url="https://evil.example", root_path="/sc"
    ) as client:
        signed = client.post(
            "/sc/dashboard/login", data={"key": key},
            headers={"origin": "https://evil.example"}, follow_redirects=False,
        )  # fmt: skip
        assert signed.status_code == 303 and signed.headers["location"] == "/sc/dashboard"
        assert "Domain" not in signed.headers["set-cookie"]


@pytest.mark.parametrize("given, root", [
    ("", ""), ("/", ""), ("/sc", "/sc"), ("/sc/", "/sc"), (" /sc ", "/sc"),
    ("/shop/sc", "/shop/sc"), ("/a.b~c-d_e/x1", "/a.b~c-d_e/x1"), ("/.well", "/.well"),
])  # fmt: skip
def test_a_root_path_is_a_plain_path(given: str, root: str) -> None:
    assert rootpath.parse(given) == root


@pytest.mark.parametrize("given", [
    "sc",  # not a path
    "//evil.example",  # Location: //evil.example/dashboard would leave the site
    "/\\evil.example",  # so would this, in browsers
    "/sc; Domain=example.com",  # a cookie attribute
    "/sc,x", "/s c", "/sc\r\nSet-Cookie: a=b", "/sc\x00",
    "/sc/../admin", "/..", "/./sc", "/sc//x",
    "/%2e%2e", "/sc?x=1", "/sc#x", "/sc/é", "https://evil.example/sc",
])  # fmt: skip
def test_anything_else_is_refused(given: str) -> None:
    with pytest.raises(ValueError):
        rootpath.parse(given)


def test_serve_refuses_a_root_path_that_is_not_a_plain_path() -> None:
    def options(argv: list[str], env: dict[str, str]) -> ServeOptions:
        args = _parser().parse_args(["serve", *argv])
        assert isinstance(args, argparse.Namespace)
        return ServeOptions.load(args, env)

    assert options(["--root-path", "/sc/"], {}).root_path == "/sc"
    assert options([], {"SITECUE_ROOT_PATH": "/sc"}).root_path == "/sc"
    with pytest.raises(SettingsError, match="SITECUE_ROOT_PATH: expected a path such as /sc"):
        options([], {"SITECUE_ROOT_PATH": "//evil.example"})
    with pytest.raises(SystemExit):
        options(["--root-path", "/sc;Domain=example.com"], {})


def test_a_server_started_otherwise_with_a_bad_root_path_makes_no_url() -> None:
    """``uvicorn --root-path`` run by hand skips ``serve``'s check: sitecue then refuses to
    build a redirect or a cookie from it rather than send anyone elsewhere."""
    with pytest.raises(ValueError, match="root path: expected"):
        rootpath.of({"root_path": "//evil.example"})
    assert rootpath.of({"root_path": "/sc/"}) == "/sc" and rootpath.of({}) == ""
    assert rootpath.cookie_path({"root_path": "/sc"}) == "/sc/"


def test_a_node_answers_paths_that_still_carry_its_root_path(settings: Settings) -> None:
    """uvicorn puts the root path in front of every path: ``/sc/healthz`` asked directly
    arrives as ``/sc/sc/healthz`` and is served as ``/healthz``, with the dashboard's
    security headers on ``/sc/sc/dashboard`` as on ``/sc/dashboard``."""
    with _client(settings, "serve") as node:
        assert node.get("/sc/sc/healthz").status_code == 200
        assert node.get("/sc/healthz").status_code == 200
        dashboard = node.get("/sc/sc/dashboard")
        assert dashboard.status_code == 200 and 'action="/sc/dashboard/login"' in dashboard.text
        assert dashboard.headers["x-frame-options"] == "DENY"
        assert node.get("/sc/sc").status_code == 404  # nothing there, as at /sc
        assert node.get("/sc/scx/healthz").status_code == 404


def test_the_readme_writes_every_path_of_sitecue_under_sc(settings: Settings) -> None:
    """One set of paths: every endpoint the README names, it names as the browser asks for
    it behind the proxy (``/sc/v1/decide``, ``/sc/dashboard``), never at the host's root."""
    segments = {
        route.path.split("/")[1].split("{")[0]  # "cue.{version}.js" -> "cue."
        for route in build_app(settings).routes
        if isinstance(route, Route)
    }
    assert {"v1", "dashboard", "cue.js", "cue.", "healthz", "metrics"} <= segments
    # A path of sitecue's own, not already under a prefix (/sc/..., /shop/sc/...) or inside
    # another URL or file name.
    pattern = "|".join(re.escape(s) for s in sorted(segments, key=len, reverse=True))
    bare = re.compile(rf"(?<![\w/.:<>-])/(?:{pattern})")
    text = (CONFIG_DIR.parent / "README.md").read_text()
    lines = [line for line in text.splitlines() if bare.search(line)]
    assert lines == []
    assert "`/sc/cue.js`" in text and "/sc/v1/decide" in text and "`/sc/dashboard`" in text
