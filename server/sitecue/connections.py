"""Each HTTP connection held to limits, so that slow and hostile clients cannot starve
visitors.

uvicorn's httptools protocol on its own waits forever for a request's headers and for the
rest of a body, keeps every header byte a client sends (a 100 MB header is buffered whole),
and accepts connections until the process runs out of file descriptors, after which
nobody gets in. :class:`GuardedHttpToolsProtocol` adds what a front-line server needs:

- the headers must arrive within ``header_timeout`` seconds of the connection (or of the
  first byte of a following request), or the client gets ``408`` and is closed: a client
  dribbling one header byte at a time gains nothing;
- a body may pause at most ``body_timeout`` seconds between two pieces (``408``);
- headers (request line included) larger than ``max_header_bytes`` get ``431`` at once,
  without reading further;
- past ``max_connections`` open connections in a worker, a new connection pushes out the
  one that has waited longest on its client (idle keep-alive first, then unfinished
  headers or bodies); a connection whose request the app is working on is never pushed
  out, and when every one is, the newcomer gets ``503``.

Each worker reads its limits from the ``SITECUE_*`` variables it inherits from ``sitecue
serve`` (see :mod:`sitecue.serve`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from .settings import positive, setting

__all__ = ["PROTOCOL", "GuardedHttpToolsProtocol", "Limits"]

log = logging.getLogger("sitecue")

PROTOCOL = "sitecue.connections:GuardedHttpToolsProtocol"
"""What uvicorn is told to run, by import path, so that every worker process finds it."""

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_MAX_HEADER_BYTES = 32 * 1024  # a site's own cookies travel to /sc/ too
DEFAULT_MAX_CONNECTIONS = 10_000
_SECONDS, _COUNT = "a number of seconds above 0", "a whole number above 0"


@dataclass(frozen=True)
class Limits:
    """What each connection is held to (see the module's docstring)."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    @classmethod
    def load(cls, flags: Mapping[str, Any], env: Mapping[str, str] = os.environ) -> Limits:
        """From ``flags`` (named as the fields; None for not given), then the variables."""
        return cls(
            **{
                name: setting(flags.get(name), env, variable, cast, default, meaning)
                for name, (variable, cast, default, meaning) in _LIMITS.items()
            }
        )

    def variables(self) -> dict[str, str]:
        """These limits as the ``SITECUE_*`` variables that :meth:`load` reads."""
        return {variable: str(getattr(self, name)) for name, (variable, *_) in _LIMITS.items()}


_LIMITS: dict[str, tuple[str, Any, float, str]] = {
    "header_timeout": (
        "SITECUE_HEADER_TIMEOUT", positive(float), DEFAULT_HEADER_TIMEOUT, _SECONDS
    ),
    "body_timeout": ("SITECUE_BODY_TIMEOUT", positive(float), DEFAULT_BODY_TIMEOUT, _SECONDS),
    "max_header_bytes": (
        "SITECUE_MAX_HEADER_BYTES", positive(int), DEFAULT_MAX_HEADER_BYTES, _COUNT
    ),
    "max_connections": (
        "SITECUE_MAX_CONNECTIONS", positive(int), DEFAULT_MAX_CONNECTIONS, _COUNT
    ),
}  # fmt: skip


@cache
def limits_of_this_worker() -> Limits:
    """The limits of this worker process, read once."""
    return Limits.load({})


def _response(status: int) -> bytes:
    return STATUS_LINE[status] + b"content-length: 0\r\nconnection: close\r\n\r\n"


# What a connection is doing: waiting for a request's headers, for the rest of its body,
# for nothing (idle keep-alive, between requests), or the app is working on its request.
_HEADERS, _BODY, _IDLE, _APP, _CLOSED = "headers", "body", "idle", "app", "closed"
_WAITING = (_HEADERS, _BODY, _IDLE)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body timeouts, a header size limit
    and a connection cap (see the module's docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits_of_this_worker()
        self.phase = _HEADERS
        self.phase_start = time.monotonic()  # shedding picks the oldest waiting phase
        self.progress = self.phase_start  # the body's last piece
        self.header_bytes = 0
        self.guard: asyncio.TimerHandle | None = None

    # --- phases and the timer that watches them --------------------------------------

    def _enter(self, phase: str) -> None:
        self.phase = phase
        self.phase_start = self.progress = time.monotonic()
        if self.guard is not None:
            self.guard.cancel()
            self.guard = None
        if phase in (_HEADERS, _BODY):
            timeout = self.limits.header_timeout if phase == _HEADERS else self.limits.body_timeout
            self.guard = self.loop.call_later(timeout, self._check)

    def _check(self) -> None:
        """The timer: give up on a client past its phase's time, else look again later."""
        self.guard = None
        now = time.monotonic()
        if self.phase == _HEADERS:
            left = self.phase_start + self.limits.header_timeout - now
            if left <= 0:
                log.info("%s: headers not complete in time; 408", self._who())
                self._give_up(408 if self.header_bytes else None)
                return
        elif self.phase == _BODY:
            left = self.progress + self.limits.body_timeout - now
            if self.flow.read_paused:  # the app is not reading: not the client's fault
                left = self.limits.body_timeout
            elif left <= 0:
                log.info("%s: body paused too long; 408", self._who())
                self._give_up(408)
                return
        else:
            return
        self.guard = self.loop.call_later(left, self._check)

    def _give_up(self, status: int | None) -> None:
        """Close the connection, answering ``status`` unless a response has begun; an app
        still reading the body sees the client gone."""
        phase, self.phase = self.phase, _CLOSED
        cycle = self.cycle
        # A response to this request has begun (while its body was awaited), or one to an
        # earlier request is still being written: either way, no room for ours.
        answered = (
            cycle is not None
            and cycle.response_started
            and (phase != _HEADERS or not cycle.response_complete)
        )
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if not self.transport.is_closing():
            if status is not None and not answered:
                self.transport.write(_response(status))
            self.transport.close()

    def _who(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"

    # --- uvicorn's protocol, watched ---------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter(_HEADERS)
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def _make_room(self) -> None:
        """Past the cap: push out the connection waiting longest on its client, idle
        keep-alive ones first; if the app works on every request, refuse this one."""
        waiting = [
            c
            for c in self.connections
            if isinstance(c, GuardedHttpToolsProtocol) and c is not self and c.phase in _WAITING
        ]
        if not waiting:
            log.warning("%d connections, all busy: 503 to a new one", self.limits.max_connections)
            self._give_up(503)
            return
        oldest = min(waiting, key=lambda c: (c.phase != _IDLE, c.phase_start))
        waited = time.monotonic() - oldest.phase_start
        log.info("connection cap reached: closing %s, waiting %.1f s", oldest._who(), waited)
        oldest._give_up(None)
        self.connections.discard(oldest)  # counted out now, though its close is queued

    def connection_lost(self, exc: Exception | None) -> None:
        if self.guard is not None:
            self.guard.cancel()
            self.guard = None
        self.phase = _CLOSED
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase == _CLOSED:
            return  # refused already: read nothing more
        if self.phase == _IDLE:
            self._enter(_HEADERS)
        if self.phase in (_HEADERS, _APP):  # after a whole request come the next's headers
            self.header_bytes += len(data)
        super().data_received(data)
        # Headers still incomplete after this piece: everything read so far was headers.
        if self.phase in (_HEADERS, _APP) and self.header_bytes > self.limits.max_header_bytes:
            self._too_large()

    def _too_large(self) -> None:
        log.info("%s: headers over %d bytes; 431", self._who(), self.limits.max_header_bytes)
        self._give_up(431)

    def on_headers_complete(self) -> None:
        # Headers that came whole in one read were not counted piece by piece.
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_header_bytes:
            self._too_large()
            return
        self.header_bytes = 0
        super().on_headers_complete()
        self._enter(_BODY)

    def on_body(self, body: bytes) -> None:
        if self.phase == _CLOSED:
            return
        self.progress = time.monotonic()
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self.phase == _CLOSED:
            return
        super().on_message_complete()
        self._enter(_APP)
        self.header_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Unless a pipelined request has just started, the connection now waits for another.
        idle = self.cycle is None or self.cycle.response_complete
        if self.phase == _APP and idle and not self.transport.is_closing():
            self._enter(_IDLE)
