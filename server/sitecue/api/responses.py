"""Response bodies shared by every endpoint, and how a Struct becomes a response."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

__all__ = ["ErrorBody", "Health", "json_response"]

_encode = msgspec.json.Encoder().encode


class ErrorBody(msgspec.Struct, frozen=True):
    """Every 4xx: what was wrong, naming the field or parameter (``body: Expected `int`,
    got `str` - at `$.page.url```)."""

    error: str


class Health(msgspec.Struct, frozen=True):
    status: str  # "ok", or "store unavailable" (with a 503)
    sites: list[str]


def json_response(body: msgspec.Struct, status: int = 200) -> Response:
    """A msgspec Struct as a JSON response."""
    return Response(_encode(body), status, media_type="application/json")
