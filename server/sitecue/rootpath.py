"""Where sitecue is served: the path prefix under the site's host (``/sc``) that every URL
the server makes starts with.

A reverse proxy serves sitecue under ``https://<site>/sc/`` and strips the prefix; the node
runs ``sitecue serve --root-path /sc`` and uvicorn puts it in each request's ASGI scope as
``root_path`` (and in front of ``path``). The demo mounts sitecue under ``/sc`` and
``/shop/sc`` with Starlette's ``Mount``, which sets the same ``root_path``. Either way,
whatever builds a URL or a cookie path reads it here, so a proxied node and the demo make
the same URLs: redirects and links of the dashboard, its session cookie's path, the
visitor cookies' ``Path=/sc/``, OpenAPI's ``servers``. (The tag finds its endpoints beside
its own script, so it needs nothing from the server.)

A node with a root path also answers the paths with it still on (:class:`PrefixedPaths`):
``http://node:8000/sc/metrics`` scraped directly, or a proxy that passes ``/sc/…`` whole,
reach the same endpoints as the stripped ``/metrics``, so the README's one set of paths
holds everywhere.

Example::

    parse("/sc/")  # "/sc"
    of({"root_path": "/sc"})  # "/sc"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["MEANING", "PrefixedPaths", "cookie_path", "of", "parse", "route_path"]

# Segments of unreserved characters only, and none "." or "..". This is what keeps a root
# path from being more than a path: "//evil.example" would make every redirect of the
# dashboard (``Location: //evil.example/dashboard``) leave the site; ";", "," or spaces would
# add attributes to the cookies (``Path=/sc; Domain=example.com``); a CR or LF would add
# headers; "%" would make the cookie path and the routed path disagree.
_ROOT = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)*")
MEANING = "a path such as /sc (letters, digits and . _ ~ - between slashes)"


def parse(text: str) -> str:
    """The root path an operator gave (flag or variable), without its trailing slash
    (``""`` for none); ValueError unless it is a plain path."""
    root = text.strip().rstrip("/")
    if _ROOT.fullmatch(root) is None:
        raise ValueError(text)
    return root


@lru_cache(maxsize=16)
def _checked(root: str) -> str:
    try:
        return parse(root)
    except ValueError:
        # Only a server started without ``sitecue serve``'s check can get here: refuse to
        # build URLs and cookies from it rather than send visitors elsewhere.
        raise ValueError(f"root path: expected {MEANING}, got {root!r}") from None


def of(scope: Mapping[str, Any]) -> str:
    """The request's root path (``"/sc"``, or ``""`` at the host's root), from its ASGI
    scope: what the server was told, never what the request says."""
    return _checked(str(scope.get("root_path", "")))


def cookie_path(scope: Mapping[str, Any]) -> str:
    """The visitor cookies' ``Path``: sitecue's own path and below (``/sc/``), so the site's
    other pages never receive them."""
    return of(scope) + "/"


def route_path(scope: Scope) -> str:
    """The path below the app's ``root_path`` (the prefix a proxy or a Mount strips), as
    the router matches it."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root + "/") else path


class PrefixedPaths:
    """ASGI middleware: a request that still carries the root path (uvicorn puts it in front
    of every path, so ``/sc/metrics`` asked directly arrives as ``/sc/sc/metrics``) is served
    as the stripped one. Outermost, so that every other middleware (the dashboard's security
    headers) sees the path it routes by. The root path itself comes from the server's
    setting, never from the request, so nothing a client sends changes what it names."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root = of(scope)
            path: str = scope["path"]
            doubled = root + root
            if root and (path == doubled or path.startswith(doubled + "/")):
                scope = dict(scope, path=path[len(root) :])
                raw: bytes | None = scope.get("raw_path")
                if raw is not None and raw.startswith(doubled.encode()):
                    scope["raw_path"] = raw[len(root) :]
        await self.app(scope, receive, send)
