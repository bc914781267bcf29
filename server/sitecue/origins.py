"""Which pages may call the tag's endpoints, and one line in the log for each that may not.

A site lists the origins of its pages (``"origins"`` in its config; ``SITECUE_ALLOW_ORIGINS``
adds some to every site). The demo also allows a *same-origin* call, a page it served
calling it back, so that it works under whatever name and port it is opened: a LAN name,
a Docker port published as another (``docker run -p 9000:8000``), which nobody can list in
advance. ``sitecue serve`` never does: there the operator's list is the whole policy.

A browser reports a refused call only as a CORS error in the page's console, so the server
logs each refused origin once per site and process, naming the setting that would allow it,
and remembers a bounded number of them (anyone can send a million made-up origins).
"""

from __future__ import annotations

import hashlib
import logging

from starlette.requests import Request

from .guard import own_origin

__all__ = ["REMEMBERED", "RefusedOrigins", "allowed"]

log = logging.getLogger("sitecue")

REMEMBERED = 1000  # (site, origin) pairs logged per process; 16-byte digests, ~100 KB at most
_SHOWN = 200  # characters of an origin written to the log


def allowed(request: Request, origin: str, listed: frozenset[str], same_origin: bool) -> bool:
    """Whether a page of ``origin`` may call with the visitor's cookies: the site lists it,
    or ``same_origin`` is on (the demo) and it is the origin this request was sent to.

    Why a same-origin call is safe to allow without a list: a browser writes both headers
    compared here, ``Origin`` (the calling page's origin) and ``Host`` (the address it
    connects to), and no page's script can set either. So in a browser they are equal only
    when the page calling is of the very origin it calls, one of the demo's own pages;
    another site's page always sends its own origin, which differs, and is refused. A
    client that is not a browser can write both, but it holds no visitor's cookies, so it
    gets nothing more than a call without ``Origin`` already gets (such calls are answered:
    they carry no ambient authority). DNS rebinding (an attacker's name pointed at the
    demo) is the same case: the browser treats it as the attacker's origin and sends that
    origin's cookies, never the demo's. The scheme is the connection's (behind a proxy, the
    ``X-Forwarded-Proto`` uvicorn trusts from it), so an http page cannot pass for https.
    """
    if origin in listed:
        return True
    return same_origin and origin == own_origin(request)


class RefusedOrigins:
    """Logs a refused origin once per site (at warning), with the setting that would allow
    it. It remembers digests of at most ``limit`` pairs: past that, one more line says the
    rest are not logged, so a client cycling through made-up origins can neither grow the
    memory nor flood the log."""

    def __init__(self, limit: int = REMEMBERED) -> None:
        self._limit = limit
        self._seen: set[bytes] = set()
        self._full = False

    def log(self, request: Request, site: str | None, origin: str, same_origin: bool) -> None:
        """Log that ``origin`` was refused for ``site`` (None: a preflight, for every site),
        unless it was already."""
        key = hashlib.blake2b(f"{site}\0{origin}".encode(), digest_size=16).digest()
        if key in self._seen:
            return
        if len(self._seen) >= self._limit:
            if not self._full:
                self._full = True
                log.warning(
                    "refused origins: %d logged, the rest are not (until a restart)", self._limit
                )
            return
        self._seen.add(key)
        shown = repr(origin[:_SHOWN])
        if site is None:
            where = "any site"
            fix = 'add it to a site\'s "origins"'
        else:
            where = f"site '{site}'"
            fix = f'add it to "origins" in the config of {where} (sites/{site}.json)'
        hint = ""
        if same_origin:  # the demo: its own pages are allowed, so this one came from elsewhere
            hint = (
                f"; the demo allows its own pages, and this call was sent to"
                f" {own_origin(request)[:_SHOWN]!r}"
                " (behind a proxy, pass the browser's Host and X-Forwarded-Proto)"
            )
        log.warning(
            "refused a call from origin %s to %s (the page sees a CORS error): to allow it, "
            "%s, or to SITECUE_ALLOW_ORIGINS (comma-separated, for every site)%s",
            shown,
            where,
            fix,
            hint,
        )
