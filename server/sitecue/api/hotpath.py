"""The tag's hot path: ``POST /v1/decide`` and ``POST /v1/events`` served straight from the
ASGI scope, in front of Starlette's router.

Every page view of every site calls ``/v1/decide``, and most send ``/v1/events`` after it.
On Starlette's way a request also passes the dashboard's middleware, the exception
wrappers of the app and of its route, and a router trying the routes in turn: work a page
view does not need. Here the two are looked up by path and called at once, on the same
:class:`~starlette.requests.Request` and with the same :mod:`sitecue.metrics` timing.
Everything else, their CORS preflight included, takes Starlette's way; the errors raised
on purpose are answered by the same handlers (:mod:`sitecue.api.errors`), and any other
error goes up to Starlette's outermost middleware, a 500 as on any route.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..metrics import Endpoint
from ..rootpath import route_path
from .errors import answer

__all__ = ["HotPath"]


class HotPath:
    """ASGI middleware: a ``POST`` to one of ``endpoints`` (route path → endpoint, already
    timed) is answered here; any other request goes on to ``app``."""

    def __init__(self, app: ASGIApp, endpoints: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.endpoints.get(route_path(scope))
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handled = await answer(request, exc)
            if handled is None:
                raise
            # As Starlette does: one error may be raised to many requests (the writer's,
            # to every request of a failed group), and its traceback would keep the last
            # one's frames alive.
            exc.__traceback__ = None
            response = handled
        await response(scope, receive, send)
