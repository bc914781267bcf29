"""A reverse proxy for tests that does what the README's nginx block does: the site's host
serves its own pages, and everything under ``/sc/`` goes to a sitecue node with the prefix
stripped (``location /sc/ { proxy_pass http://node/; }``), passing the browser's ``Host``,
``X-Forwarded-Proto`` and ``X-Forwarded-For``. It keeps the paths the node was asked for."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Headers about one connection, never passed on (RFC 9110, 7.6.1); the proxy sets its own
# Content-Length, Server and Date.
_HOP = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length", "server", "date",
}  # fmt: skip


@dataclass
class Proxy:
    """The running proxy: its port, the site's pages (path -> HTML), the node's port, and
    every path it forwarded (as the node received it). A page's path may hold a query."""

    port: int
    prefix: str
    pages: dict[str, bytes] = field(default_factory=dict)
    upstream: int = 0
    forwarded: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: Proxy  # set on the subclass made per proxy

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet

    def _handle(self) -> None:
        prefix = self.proxy.prefix
        if self.path.startswith(prefix + "/"):
            self._forward(self.path[len(prefix) :])
            return
        pages = self.proxy.pages
        page = pages.get(self.path, pages.get(self.path.split("?", 1)[0]))
        body = page if page is not None else b"no such page"
        self.send_response(200 if page is not None else 404)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_OPTIONS = do_PUT = do_DELETE = _handle

    def _forward(self, path: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        node = http.client.HTTPConnection("127.0.0.1", self.proxy.upstream, timeout=10)
        node.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():  # Host included: the browser's
            if name.lower() not in _HOP and not name.lower().startswith("x-forwarded-"):
                node.putheader(name, value)
        node.putheader("x-forwarded-proto", "http")
        node.putheader("x-forwarded-for", self.client_address[0])
        node.putheader("content-length", str(len(body)))
        node.endheaders(body)
        answer = node.getresponse()
        data = answer.read()
        node.close()
        self.proxy.forwarded.append(path)
        self.send_response(answer.status)
        for name, value in answer.getheaders():  # every Set-Cookie, each as sent
            if name.lower() not in _HOP:
                self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def stripping_proxy(prefix: str = "/sc") -> Iterator[Proxy]:
    """A proxy on a free port; set its ``upstream`` (the node's port) and ``pages``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    proxy = Proxy(port=server.server_address[1], prefix=prefix)
    server.RequestHandlerClass = type("Handler", (_Handler,), {"proxy": proxy})
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
