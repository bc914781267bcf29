"""The one place where errors raised on purpose become HTTP answers, for Starlette's routes
and for the tag's hot path (:mod:`sitecue.api.hotpath`) alike."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import FormInvalid, RequestError, StoreUnavailable, TooManyRequests
from ..runtime import Runtime
from .bodies import ErrorBody, FieldErrors, json_response
from .tag import cors

__all__ = ["HANDLERS", "answer"]

log = logging.getLogger("sitecue")

Handler = Callable[[Request, Exception], Awaitable[Response]]


async def _request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return json_response(ErrorBody(exc.message), exc.status)


async def _form_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormInvalid)
    return cors(json_response(FieldErrors(exc.message, exc.fields), exc.status), _origin(request))


async def _too_many(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TooManyRequests)
    response = json_response(ErrorBody(exc.message), exc.status)
    response.headers["retry-after"] = str(exc.retry_after)
    response.headers["access-control-expose-headers"] = "Retry-After"  # for the page's script
    return cors(response, _origin(request))


def _origin(request: Request) -> str | None:
    """The caller's origin when some site lists it: a 4xx it must read (a field's problem,
    a rate limit) is readable by the page's script."""
    runtime: Runtime = request.app.state.runtime
    origin = request.headers.get("origin")
    listed = origin is not None and any(origin in s.origins for s in runtime.sites.values())
    return origin if listed else None


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The database is stopped, full or read-only: nothing of this request was stored, and
    it may be sent again. The cause is logged, not answered: it may name hosts and files."""
    assert isinstance(exc, StoreUnavailable)
    log.warning("%s %s: store unavailable: %s", request.method, request.url.path, exc)
    body = ErrorBody("store: unavailable, nothing was stored; retry later")
    response = json_response(body, 503)
    response.headers["retry-after"] = str(exc.retry_after)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, a method the path does not take), in the same
    JSON shape as ours."""
    assert isinstance(exc, HTTPException)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    if exc.headers and "Allow" in exc.headers:
        message += f"; this path takes {exc.headers['Allow']}"
    response = json_response(ErrorBody(message), exc.status_code)
    response.headers.update(exc.headers or {})
    return response


HANDLERS: dict[type[Exception], Handler] = {
    RequestError: _request_error,
    FormInvalid: _form_invalid,
    TooManyRequests: _too_many,
    HTTPException: _http_error,
    StoreUnavailable: _store_unavailable,
}
"""Starlette's ``exception_handlers``: the most specific class of an error picks its
handler, as :func:`answer` does."""


async def answer(request: Request, exc: Exception) -> Response | None:
    """The answer to ``exc`` (None for an error nobody raised on purpose: a 500)."""
    for kind in type(exc).__mro__:
        handler = HANDLERS.get(kind)
        if handler is not None:
            return await handler(request, exc)
    return None
