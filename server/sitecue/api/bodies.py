"""Bodies in and out: a request body read within its cap and decoded into its type (a 4xx
naming the field otherwise), and a Struct encoded as the response."""

from __future__ import annotations

import logging
from typing import TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..errors import BadRequest, ClientClosed, PayloadTooLarge
from ..validation import explain

__all__ = [
    "MAX_ADMIN_BODY",
    "ErrorBody",
    "FieldErrors",
    "Health",
    "ServedConfig",
    "decode",
    "json_response",
    "read_body",
    "utf8_error",
]

MAX_ADMIN_BODY = 8 * 1024 * 1024
"""Admin bodies (customer and campaign lists) may be larger than the tag's."""

log = logging.getLogger("sitecue")

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (declared or sent);
    a client that leaves before sending it all is a ClientClosed, logged in one line."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: expected at most {limit} bytes")
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise PayloadTooLarge(f"body: expected at most {limit} bytes")
    except ClientDisconnect:
        log.info("%s %s: the client left after %d bytes of its body", request.method,
                 request.url.path, len(body))  # fmt: skip
        raise ClientClosed("body: the client closed the connection before sending it") from None
    return body


def decode(body: bytes, kind: type[T]) -> T:
    """``body`` as JSON of type ``kind``; a 400 names what was wrong and where."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as err:  # an enum's message lists the values it takes
        raise BadRequest(f"body: {explain(err, kind)}") from err
    except msgspec.DecodeError as err:
        raise BadRequest(f"body: expected a JSON object ({err})") from err
    except UnicodeDecodeError as err:
        # msgspec reports the offset within the string; the whole body's names the byte.
        raise BadRequest(f"body: expected UTF-8 text ({utf8_error(body) or err})") from None
    except RecursionError:
        # A body nested deeper than the parser's stack allows (``[[[[…``): refused as input,
        # not a fault of the server; nothing sitecue takes is nested more than a few levels.
        raise BadRequest("body: expected JSON nested less deeply") from None


def utf8_error(data: bytes) -> str | None:
    """Where ``data`` stops being UTF-8 (``invalid byte 0xff at byte 12``), or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"invalid byte 0x{data[err.start]:02x} at byte {err.start}"
    return None


class ErrorBody(msgspec.Struct, frozen=True):
    """Every 4xx: what was wrong, naming the field or parameter (``body: Expected `int`,
    got `str` - at `$.page.url```)."""

    error: str


class FieldErrors(msgspec.Struct, frozen=True):
    """A 422 for a form: ``fields`` maps each wrong field to its problem (``"required"``,
    ``"expected an email address"``), for the tag to show beside the field."""

    error: str
    fields: dict[str, str]


class Health(msgspec.Struct, frozen=True):
    status: str  # "ok", "degraded" (store failing, records spooled), "store unavailable" (503)
    sites: list[str]
    spool: int = 0  # records spooled by the answering worker, not yet in the store
    # The config version this worker serves (None: its own config directory, as the live
    # version did not compile here), since when (epoch ms), and the worker's process id.
    config: ServedConfig | None = None
    worker: int = 0


class ServedConfig(msgspec.Struct, frozen=True):
    version: int
    hash: str
    applied: int


def json_response(body: msgspec.Struct, status: int = 200) -> Response:
    """A msgspec Struct as a JSON response."""
    return Response(_encode(body), status, media_type="application/json")
