"""deploy/: the image, the compose file and the nginx config the README's "Running it for
real" is the recipe for, checked against each other and run for real.

The nginx config is tested as compose mounts it, with only what exists inside the
containers alone put in place (see :func:`render`): nginx resolves an upstream's host names
when it loads its config, and ``node1``/``node2`` resolve only on compose's network, so
``nginx -t`` of the file as it stands fails anywhere else. Every other line is what nginx
runs in production. Then that config runs in front of two real ``sitecue serve`` nodes with
two workers each on one throwaway PostgreSQL, and the README's paths answer through it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from admin_keys import new_key
from postgres_cluster import new_database
from servers import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (make system installs nginx-light)"
)
ORIGIN = "https://news.example"
DECIDE = {"site": "news", "page": {"url": f"{ORIGIN}/articles/1"}}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def command_flags(command: str) -> dict[str, str]:
    """``--flag value`` pairs of a node's command line."""
    words = command.split()
    return {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def replace_once(text: str, old: str, new: str, count: int = 1) -> str:
    """``text`` with ``old`` replaced, failing unless it occurs exactly ``count`` times (so
    the rendering breaks loudly when the config changes under it)."""
    assert text.count(old) == count, f"deploy/nginx.conf: expected {old!r} {count} time(s)"
    return text.replace(old, new)


def render(directory: Path, nodes: list[int], http: int, https: int) -> Path:
    """deploy/nginx.conf as compose mounts it, with only what exists inside the containers
    alone put in place: the nodes' addresses (compose's service names), the listening
    ports, the certificate's directory and the log file; and, added, temp directories of
    its own (Debian's nginx defaults to /var/lib/nginx, writable by root only)."""
    text = (DEPLOY / "nginx.conf").read_text()
    for number, port in enumerate(nodes, 1):
        text = replace_once(text, f"server node{number}:8000 ", f"server 127.0.0.1:{port} ")
    text = replace_once(text, "listen 80;", f"listen 127.0.0.1:{http};")
    text = replace_once(text, "listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
    text = replace_once(text, "/etc/nginx/tls/", f"{directory}/tls/", count=2)
    text = replace_once(text, "/var/log/nginx/access.log", f"{directory}/access.log")
    temp = "".join(
        f"\n    {kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = replace_once(text, "\nhttp {", f"\nhttp {{{temp}")
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


def self_signed(directory: Path) -> Path:
    """A certificate for 127.0.0.1 in ``directory``/tls, named as compose mounts them;
    returns the certificate's path (the client's trust anchor)."""
    tls = directory / "tls"
    tls.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tls / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tls / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls / "fullchain.pem"


def nginx_command(
    directory: Path, conf: Path, *options: str, foreground: bool = False
) -> list[str]:
    """nginx on ``conf`` with its pid and error log in ``directory``, then ``options``."""
    assert NGINX is not None
    main = f"pid {directory}/nginx.pid;" + (" daemon off;" if foreground else "")
    if os.geteuid() == 0:
        main += " user root;"  # its workers write into the test's private directory
    error_log = f"{directory}/error.log"
    return [NGINX, "-p", str(directory), "-c", str(conf), "-e", error_log, "-g", main, *options]


# --- the files agree with each other and with the README -----------------------------------


def test_the_image_has_the_postgresql_driver() -> None:
    installs = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if "pip install" in line
    ]
    assert installs and all("'.[postgres]'" in line for line in installs), installs


def test_compose_runs_two_nodes_of_two_workers_on_postgres_behind_nginx() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "node1", "node2", "nginx"}
    nginx_address = services["nginx"]["networks"]["sitecue"]["ipv4_address"]
    for name in ("node1", "node2"):
        node = services[name]
        assert node["build"] == ".."
        flags = command_flags(node["command"])
        assert node["command"].startswith("sitecue serve ")
        assert flags["--workers"] == "2"
        assert flags["--root-path"] == "/sc"
        assert flags["--port"] == "8000"
        # The database in the environment, so that `compose exec node1 sitecue …` uses it.
        assert node["environment"] == {"SITECUE_DB": "postgresql://sitecue@postgres:5432/sitecue"}
        # Only nginx may speak for the browser: its fixed address, nobody else's.
        assert flags["--forwarded-allow-ips"] == nginx_address
        assert node["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "http://127.0.0.1:8000/sc/healthz" in " ".join(node["healthcheck"]["test"])
        assert f"{name}:/data" in node["volumes"]  # its spool survives a restart
        assert "../config:/app/config:ro" in node["volumes"]
        # Secrets come from a file the operator makes, never from the compose file.
        assert node["env_file"] == "sitecue.env"
        assert all(p.startswith("127.0.0.1:") for p in node["ports"])  # for scraping only
    postgres = services["postgres"]
    assert postgres["env_file"] == "postgres.env"
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert postgres["environment"]["POSTGRES_USER"] == "sitecue"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    nginx = services["nginx"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert "./tls:/etc/nginx/tls:ro" in nginx["volumes"]
    assert "https://127.0.0.1/sc/healthz" in nginx["healthcheck"]["test"]
    subnet = compose()["networks"]["sitecue"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(nginx_address) in ipaddress.ip_network(subnet)


def test_nginx_config_proxies_the_nodes_compose_runs() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    upstream = re.findall(r"^\s*server (\S+?)[ ;]", text, re.M)
    services = compose()["services"]
    nodes = sorted(
        f"{name}:{command_flags(s['command'])['--port']}"
        for name, s in services.items()
        if s.get("command", "").startswith("sitecue serve")
    )
    assert upstream == nodes
    assert "location /sc/ {\n            proxy_pass http://sitecue/;" in text
    # nginx's ports are the ones compose publishes.
    assert sorted(re.findall(r"listen (\d+)", text)) == sorted(
        p.split(":")[-1] for p in services["nginx"]["ports"]
    )


def test_secrets_and_certificates_stay_out_of_git_and_the_image() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/*.env" in ignored and "deploy/tls/" in ignored
    docker_ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "deploy" in docker_ignored


def test_readme_recipe_matches_deploy() -> None:
    recipe = readme_section("Running it for real")
    config = (DEPLOY / "nginx.conf").read_text()
    lines = {line.strip() for line in config.splitlines()}
    blocks = re.findall(r"```nginx\n(.*?)```", recipe, re.S)
    assert blocks, "the README shows the nginx config"
    for block in blocks:
        for line in block.splitlines():
            code = line.split("#")[0].strip()
            if code and code not in ("...", "}"):
                assert code in lines or code.rstrip(" {") in lines or code in config, code
    for needed in (
        "cd deploy",
        "sitecue.env",
        "postgres.env",
        "SITECUE_SECRETS=",
        "PGPASSWORD=",
        "tls/fullchain.pem",
        "tls/privkey.pem",
        "docker compose up",
        "--root-path /sc",
        "--forwarded-allow-ips",
        "/sc/healthz",
        "/sc/cue.js",
        "127.0.0.1:8001/sc/metrics",
        "NTP",
        "pg_dump",
        ".backup",
    ):
        assert needed in recipe, needed
    # One set of paths: the recipe never shows sitecue at the site's root.
    assert not re.search(r"https?://[^/\s]+/(v1|dashboard|cue\.js|healthz)", recipe)


@needs_nginx
def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    self_signed(tmp_path)
    conf = render(tmp_path, [free_port(), free_port()], free_port(), free_port())
    checked = subprocess.run(
        nginx_command(tmp_path, conf, "-t"),
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


# --- the recipe, run for real ------------------------------------------------------------------


@pytest.fixture
def database(postgres_server: str) -> Iterator[str]:
    """An empty database in the run's throwaway cluster, as compose's postgres service."""
    with new_database(postgres_server, "deploy") as url:
        yield url


@contextmanager
def nodes(env: dict[str, str], db: str, tmp_path: Path, count: int) -> Iterator[list[int]]:
    """``count`` nodes started together, each as compose starts one (two workers, the root
    path, the database, nginx trusted): their ports once every one is healthy."""
    node = command_flags(compose()["services"]["node1"]["command"])
    ports = [free_port() for _ in range(count)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for number, port in enumerate(ports, 1):
            settings = {"SITECUE_DB": db, "SITECUE_DATA_DIR": str(tmp_path / f"node{number}")}
            with (tmp_path / f"node{number}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable, "-m", "sitecue.cli", "serve",
                            "--port", str(port),
                            "--workers", node["--workers"],
                            "--root-path", node["--root-path"],
                            "--forwarded-allow-ips", "127.0.0.1",
                        ],
                        env={**os.environ, **env, **settings},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        deadline = time.monotonic() + 60
        for number, (port, proc) in enumerate(zip(ports, procs, strict=True), 1):
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log = (tmp_path / f"node{number}.log").read_text()
                        raise RuntimeError(f"node{number} did not start:\n{log}") from None
                    time.sleep(0.1)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)


@contextmanager
def nginx(directory: Path, conf: Path) -> Iterator[None]:
    proc = subprocess.Popen(
        nginx_command(directory, conf, foreground=True),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wait_for(url: str, context: ssl.SSLContext) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            with httpx.Client(verify=context) as client:
                client.get(url)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@needs_nginx
def test_the_recipe_runs_two_nodes_behind_nginx(
    env: dict[str, str],
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy = tmp_path / "nginx"
    proxy.mkdir()
    context = ssl.create_default_context(cafile=self_signed(proxy))
    http, https = free_port(), free_port()
    with ExitStack() as stack:
        ports = stack.enter_context(nodes(env, database, tmp_path, 2))
        stack.enter_context(nginx(proxy, render(proxy, ports, http, https)))
        site = f"https://127.0.0.1:{https}"
        wait_for(f"{site}/sc/healthz", context)
        client = stack.enter_context(httpx.Client(base_url=site, verify=context))

        health = client.get("/sc/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
        script = client.get("/sc/cue.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")

        # The tag's call: through nginx, cookies scoped to /sc/ and Secure (nginx said https,
        # and the node trusts it from nginx's address).
        decided = client.post("/sc/v1/decide", json=DECIDE, headers={"Origin": ORIGIN})
        assert decided.status_code == 200, decided.text
        cookies = decided.headers.get_list("set-cookie")
        assert {c.split("=")[0] for c in cookies} >= {"sc_vid", "sc_s"}
        for cookie in cookies:
            assert "; Path=/sc/;" in cookie and "; Secure" in cookie, cookie

        # The dashboard signs in through the proxy (the browser's host and scheme reach the
        # node) and stays under /sc/.
        monkeypatch.setenv("SITECUE_DB", database)
        key = new_key(capsys, "news")
        signed_in = client.post(
            "/sc/dashboard/login",
            content=f"key={key}",
            headers={"Origin": site, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert signed_in.status_code == 303, signed_in.text
        assert signed_in.headers["location"] == "/sc/dashboard"
        assert "; Path=/sc/dashboard" in signed_in.headers["set-cookie"]
        assert "; Secure" in signed_in.headers["set-cookie"]

        # /sc/metrics is not public: Prometheus scrapes each node directly.
        bearer = {"Authorization": f"Bearer {key}"}
        refused = ("/sc/metrics", "/sc/metrics?site=news", "/sc//metrics", "/sc/%6detrics")
        for path in (*refused, "/sc/sc/metrics", "/sc/sc/healthz"):
            assert client.get(path, headers=bearer).status_code == 404, path
        for port in ports:
            scraped = httpx.get(f"http://127.0.0.1:{port}/sc/metrics", headers=bearer)
            assert scraped.status_code == 200
            assert "sitecue_" in scraped.text

        # Plain http only redirects to https.
        plain = httpx.get(f"http://127.0.0.1:{http}/sc/cue.js")
        assert plain.status_code == 301
        assert plain.headers["location"] == "https://127.0.0.1/sc/cue.js"

        # Both nodes answered (nginx's log names the node of each request).
        for _ in range(4):
            assert client.get("/sc/healthz").status_code == 200
    served = (proxy / "access.log").read_text()
    for port in ports:
        assert f"node=127.0.0.1:{port} " in served
