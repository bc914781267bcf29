"""Admin endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .bodies import json_response
from .keys import authenticate, require_sites

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["ConfigProblem", "Refused", "Reloaded", "reload_endpoint"]


class Reloaded(msgspec.Struct, frozen=True):
    reloaded: list[str]  # the sites now serving
    version: int | None = None  # the config version they are, now live on every node


class ConfigProblem(msgspec.Struct, frozen=True):
    file: str
    path: str  # the JSON path in the file
    expected: str


class Refused(msgspec.Struct, frozen=True):
    error: str
    problems: list[ConfigProblem]


async def reload_endpoint(request: Request) -> Response:
    """``POST /v1/reload``: check the node's config directory and publish it as the live
    config version, which this worker serves at once and every worker of every node
    within seconds. The key must cover every site, since a reload changes them all. A bad
    config answers 422 with every problem (as ``sitecue check`` prints them) and the old
    config keeps serving."""
    runtime: Runtime = request.app.state.runtime
    key = await authenticate(request, runtime.store)
    require_sites(key, set(runtime.sites))
    problems = await runtime.reload(f"POST /v1/reload, key {key.id}")
    if problems:
        refused = Refused(
            "config refused; the old config keeps serving",
            [ConfigProblem(p.file, p.path, p.expected) for p in problems],
        )
        return json_response(refused, 422)
    served = runtime.config
    return json_response(Reloaded(sorted(runtime.sites), served and served.version))
