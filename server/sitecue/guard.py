"""The dashboard's defences against other sites: its forms accept posts from its own origin
only (CSRF), and every response under ``/dashboard`` says it may not be framed, sniffed,
cached, or made to load anything but its own inline style.

The session cookie is already ``SameSite=Strict``; the origin check is the second lock, and
the only one on sign-in (login CSRF: another site signing the operator in with the
attacker's key, so what the operator does next lands in the attacker's account).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import Forbidden
from .rootpath import route_path

__all__ = ["CONTENT_SECURITY_POLICY", "DashboardHeaders", "require_same_origin"]

PREFIX = "/dashboard"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Fetch metadata values that no other site can cause: the dashboard's own pages, or the
# operator typing the address (``none``).
_OWN_FETCH_SITES = {"same-origin", "none"}


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower-cased and without a default port, so that
    ``https://Admin.example:443/x`` and ``https://admin.example`` compare equal; None for
    anything that is not an http(s) URL (``null``, junk)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host += f":{port}"
    return f"{scheme}://{host}"


def own_origin(request: Request) -> str:
    """The dashboard's origin: the scheme the request came in on (behind a proxy, the one it
    forwards; uvicorn applies ``X-Forwarded-Proto`` from trusted proxies) and the ``Host``
    the browser addressed. No other site can choose these for a victim's browser. The ASGI
    ``root_path`` (the proxy's path prefix) is part of the dashboard's paths, never of an
    origin, so a dashboard mounted under ``/sc`` has the same origin as the site."""
    url = request.url
    return _origin_of(f"{url.scheme}://{url.netloc}") or f"{url.scheme}://{url.netloc}"


def require_same_origin(request: Request) -> None:
    """Forbidden unless this POST comes from a page of the dashboard's own origin.

    Every browser in use sends ``Origin`` with a form POST, and that is what is checked. A
    request without it is judged by what else a browser sends: ``Sec-Fetch-Site`` (set by
    the browser, not by pages) must say same-origin, or else the origin of ``Referer`` must
    be ours (the dashboard's ``Referrer-Policy: same-origin`` keeps it on its own posts).
    With none of the three there is nothing to prove where the post came from, so it is
    refused: the dashboard is for browsers, and scripts use the API with a bearer key."""
    own = own_origin(request)
    origin = request.headers.get("origin")
    if origin is not None:
        if _origin_of(origin) != own:  # "null" (sandboxed or privacy-redirected) too
            raise Forbidden(
                f"origin: the dashboard accepts forms from {own} only, not from {origin[:100]}"
            )
        return
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site.lower() not in _OWN_FETCH_SITES:
            raise Forbidden(
                f"sec-fetch-site: the dashboard accepts forms from its own pages only,"
                f" not from a {fetch_site[:20]} request"
            )
        return
    referer = request.headers.get("referer")
    if referer is not None:
        if _origin_of(referer) != own:
            raise Forbidden(f"referer: the dashboard accepts forms from {own} only")
        return
    raise Forbidden(
        "origin: expected the Origin header a browser sends with a form; the dashboard"
        f" accepts forms from {own} only"
    )


def _inline_style_hashes() -> list[str]:
    """CSP hashes of every ``<style>`` element in the dashboard's templates, taken from the
    sources (they hold no template syntax, so they render byte for byte), so that the pages'
    own CSS applies and nothing else, inline or injected, does."""
    sources = files("sitecue").joinpath("templates")
    hashes = []
    for template in sorted(sources.iterdir(), key=lambda t: t.name):
        if template.name.endswith(".html"):
            for css in re.findall(r"<style>(.*?)</style>", template.read_text(), re.DOTALL):
                digest = hashlib.sha256(css.encode()).digest()
                hashes.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return hashes


# Nothing loads but the pages' own inline CSS: no script at all, no frame (the dashboard
# cannot be framed by anyone: clickjacking), no <base> or form target elsewhere. The SVG
# chart is inline markup with presentation attributes, which style-src does not govern.
_STYLES = " ".join(_inline_style_hashes()) or "'none'"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        f"style-src {_STYLES}",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate it
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # the dashboard's URLs go to no other site
    "cache-control": "no-store",  # a shared or back-button cache never keeps admin data
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


class DashboardHeaders:
    """ASGI middleware: the headers above on every response under ``/dashboard``: pages,
    redirects, and errors, whoever answers them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = route_path(scope) if scope["type"] == "http" else ""
        if route != PREFIX and not route.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
