"""``sitecue serve`` in front of the internet: cookies behind a reverse proxy, and slow or
hostile clients that must not starve visitors. Each test runs a real server process."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import select
import socket
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest

from admin_keys import new_key
from servers import free_port, sitecue_process
from sitecue.cli import _parser
from sitecue.connections import Limits
from sitecue.serve import ServeOptions
from sitecue.settings import SettingsError

ORIGIN = "https://news.example"
DECIDE = json.dumps({"site": "news", "page": {"url": f"{ORIGIN}/news/"}}).encode()


@contextmanager
def serving(
    tmp_path: Path,
    env: dict[str, str],
    *flags: str,
    extra_env: dict[str, str] | None = None,
    descriptors: int | None = None,
) -> Iterator[tuple[int, int, Path]]:
    """A ``sitecue serve`` process: (port, pid, log); ``descriptors`` caps its open files."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"

    def cap_descriptors() -> None:
        assert descriptors is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

    with sitecue_process(
        ["serve", "--port", str(port), *flags],
        {**os.environ, **env, **(extra_env or {})},
        log,
        f"http://127.0.0.1:{port}/healthz",
        preexec_fn=cap_descriptors if descriptors else None,
    ) as proc:
        yield port, proc.pid, log


def decide(port: int, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request(
        "POST", "/v1/decide", DECIDE, {"origin": ORIGIN, "content-type": "application/json",
                                       **(headers or {})},
    )  # fmt: skip
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def cookies(response: http.client.HTTPResponse) -> list[str]:
    found = response.headers.get_all("set-cookie") or []
    assert len(found) == 2  # sc_vid and sc_s
    return found


# --- behind a reverse proxy ----------------------------------------------------------------


def test_cookies_are_secure_when_a_trusted_proxy_says_https(
    tmp_path: Path, env: dict[str, str]
) -> None:
    flags = ("--forwarded-allow-ips", "127.0.0.1", "--root-path", "/sc")
    with serving(tmp_path, env, *flags) as (port, _, _):
        proxied = decide(port, {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"})
        assert all("; Secure" in c for c in cookies(proxied))
        assert all("; Path=/sc/;" in c for c in cookies(proxied))  # where the proxy serves it
        direct = decide(port)
        assert not any("Secure" in c for c in cookies(direct))


def test_forwarded_headers_from_an_address_not_allowed_are_ignored(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The proxy is at 10.9.8.7; a client on 127.0.0.1 claiming https is not believed."""
    allowed = {"SITECUE_FORWARDED_ALLOW_IPS": "10.9.8.7"}
    with serving(tmp_path, env, extra_env=allowed) as (port, _, _):
        spoofed = decide(port, {"x-forwarded-proto": "https"})
        assert spoofed.status == 200
        assert not any("Secure" in c for c in cookies(spoofed))


def test_serve_options_come_from_flags_then_variables_then_defaults() -> None:
    def options(argv: list[str], env: dict[str, str]) -> ServeOptions:
        args = _parser().parse_args(["serve", *argv])
        assert isinstance(args, argparse.Namespace)
        return ServeOptions.load(args, env)

    default = options([], {})
    assert default.proxy_headers is True and default.forwarded_allow_ips == "127.0.0.1,::1"
    assert default.limits == Limits()
    env = {"SITECUE_PROXY_HEADERS": "false", "SITECUE_HEADER_TIMEOUT": "2.5",
           "SITECUE_FORWARDED_ALLOW_IPS": "10.0.0.0/8"}  # fmt: skip
    from_env = options([], env)
    assert from_env.proxy_headers is False and from_env.limits.header_timeout == 2.5
    assert from_env.forwarded_allow_ips == "10.0.0.0/8"
    flagged = options(["--proxy-headers", "--header-timeout", "3", "--max-connections", "9"], env)
    assert flagged.proxy_headers is True and flagged.limits.header_timeout == 3
    assert flagged.limits.max_connections == 9
    with pytest.raises(SettingsError, match="SITECUE_MAX_HEADER_BYTES: expected a whole number"):
        options([], {"SITECUE_MAX_HEADER_BYTES": "lots"})
    with pytest.raises(SystemExit):
        options(["--body-timeout", "0"], {})
    assert options([], {"SITECUE_ROOT_PATH": "/sc/"}).root_path == "/sc"
    with pytest.raises(SettingsError, match="SITECUE_ROOT_PATH: expected a path such as /sc"):
        options([], {"SITECUE_ROOT_PATH": "sc"})


# --- slow and hostile clients ----------------------------------------------------------------


def closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before closing ``sock``, or None while it is still open."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return None
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, BlockingIOError):
        pass
    return data


def test_500_slow_clients_do_not_starve_a_visitor(tmp_path: Path, env: dict[str, str]) -> None:
    """250 half-sent POSTs and 250 connections dribbling their headers, against a server
    allowed 256 open files: it keeps the newest 192 and closes the ones waiting longest on
    their client, so a visitor is still decided at once. (Before, the server ran out of
    descriptors and stopped accepting anyone.)"""
    with serving(tmp_path, env, descriptors=256) as (port, _, _):
        half_sent = b"POST /v1/decide HTTP/1.1\r\nHost: x\r\ncontent-length: 1000\r\n\r\n{"
        dribbling = b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nX-Slow: "
        slow: list[socket.socket] = []
        try:
            for i in range(500):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                slow.append(sock)
                sock.sendall(half_sent if i % 2 else dribbling)
            for sock in slow[::2]:
                sock.sendall(b"a")  # dribble on
            deadline = time.monotonic() + 10
            while sum(closed_by_server(s) is not None for s in slow) < 500 - 192:
                assert time.monotonic() < deadline, "the server kept every slow client"
                time.sleep(0.05)

            timings = []
            for _ in range(5):
                start = time.perf_counter()
                response = decide(port)
                timings.append(time.perf_counter() - start)
                assert response.status == 200
            timings.sort()
            print(f"with 500 slow clients, a visitor is decided in {timings[2] * 1000:.1f} ms"
                  f" (median of 5; at most {timings[-1] * 1000:.1f} ms)")  # fmt: skip
            assert timings[2] < 0.1
        finally:
            for sock in slow:
                sock.close()


def read_response(reader: BinaryIO) -> bytes:
    """One whole response with a content-length, from ``sock.makefile("rb")``, leaving
    the connection open for the next."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += reader.readline()
    length = int(next(line for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")).split(b":")[1])  # fmt: skip
    return head + reader.read(length)


def test_headers_and_bodies_that_do_not_arrive_in_time_get_408(
    tmp_path: Path, env: dict[str, str]
) -> None:
    flags = ("--header-timeout", "0.5", "--body-timeout", "0.5")
    with serving(tmp_path, env, *flags) as (port, _, _):
        clients = {name: socket.create_connection(("127.0.0.1", port)) for name in
                   ("silent", "dribbling", "half", "second")}  # fmt: skip
        clients["second"].sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        with clients["second"].makefile("rb") as reader:  # kept alive, then
            assert read_response(reader).startswith(b"HTTP/1.1 200 ")
        clients["second"].sendall(b"GET /heal")  # a second request stalls
        clients["dribbling"].sendall(b"GET /healthz HTTP/1.1\r\nHo")
        clients["half"].sendall(b"POST /v1/decide HTTP/1.1\r\ncontent-length: 9\r\n\r\n{")
        start = time.monotonic()
        answers: dict[str, bytes | None] = dict.fromkeys(clients)
        while None in answers.values() and time.monotonic() - start < 5:
            time.sleep(0.05)
            for name, sock in clients.items():
                if answers[name] is None:
                    answers[name] = closed_by_server(sock)
        elapsed = time.monotonic() - start
        for sock in clients.values():
            sock.close()
        assert answers["silent"] == b""  # nothing asked, nothing answered: just closed
        assert (answers["dribbling"] or b"").startswith(b"HTTP/1.1 408 ")
        assert (answers["half"] or b"").startswith(b"HTTP/1.1 408 ")
        assert (answers["second"] or b"").startswith(b"HTTP/1.1 408 ")
        assert 0.4 < elapsed < 4
        assert decide(port).status == 200


def peak_memory_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_huge_header_is_refused_without_being_buffered(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A client tries to send a 100 MB header: the server answers 431 after the first
    32 KiB and closes, so neither its memory nor its time grows with what was sent."""
    with serving(tmp_path, env) as (port, pid, _):
        before = peak_memory_kib(pid)
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        chunk = b"a" * (1 << 20)
        sent, answer = 0, b""
        start = time.perf_counter()
        try:
            while sent < 100 * len(chunk):
                sent += sock.send(chunk)
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    answer = sock.recv(65536)
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        elapsed = time.perf_counter() - start
        sock.close()
        grown = peak_memory_kib(pid) - before
        print(f"huge header: refused after {sent / 2**20:.1f} MiB sent, {elapsed * 1000:.0f} ms,"
              f" server peak memory +{grown} KiB")  # fmt: skip
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
        assert sent < 20 * len(chunk)
        assert grown < 8 * 1024
        assert decide(port).status == 200

        whole = socket.create_connection(("127.0.0.1", port), timeout=5)
        whole.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
        assert whole.recv(65536).startswith(b"HTTP/1.1 431 ")
        whole.close()


def test_a_client_leaving_mid_body_is_a_499_not_a_traceback(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(tmp_path, env) as (port, _, log):
        key = new_key(capsys, "news")
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\ncontent-length: 500\r\n"
                     b"origin: https://news.example\r\n\r\n{\"site\": \"news\", ")  # fmt: skip
        time.sleep(0.1)  # the app is reading the body
        sock.close()
        counted = 'sitecue_requests_total{method="POST",route="/v1/decide",status="499"} 1'
        deadline = time.monotonic() + 5
        while True:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/metrics", headers={"authorization": f"Bearer {key}"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                if counted in response.read().decode():
                    break
            assert time.monotonic() < deadline, "the disconnect was not counted as a 499"
            time.sleep(0.05)
        text = log.read_text()
        assert "Traceback" not in text and "ERROR" not in text and "Exception" not in text


def test_pipelined_and_kept_alive_requests_are_all_answered(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The guards watch each request on a connection without cutting ordinary use short."""
    with serving(tmp_path, env, "--header-timeout", "1") as (port, _, _):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        reader = sock.makefile("rb")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n\r\n" * 3)
        for _ in range(3):
            assert read_response(reader).startswith(b"HTTP/1.1 200 ")
        time.sleep(1.5)  # idle longer than the header timeout, within keep-alive's 5 s
        sock.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert read_response(reader).startswith(b"HTTP/1.1 200 ")
        reader.close()
        sock.close()
