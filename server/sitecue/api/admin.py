"""Admin endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .keys import authenticate, require_sites

if TYPE_CHECKING:
    from ..app import Runtime

__all__ = ["reload_endpoint"]


async def reload_endpoint(request: Request) -> Response:
    """``POST /v1/reload``: recompile every site from disk. The key must cover every site,
    since a reload changes them all. A bad config answers 422 with every problem (as
    ``sitecue check`` prints them) and the old config keeps serving."""
    runtime: Runtime = request.app.state.runtime
    key = await authenticate(request, runtime.store)
    require_sites(key, set(runtime.sites))
    problems = runtime.reload()
    if problems:
        return JSONResponse(
            {
                "error": "config refused; the old config keeps serving",
                "problems": [
                    {"file": p.file, "path": p.path, "expected": p.expected} for p in problems
                ],
            },
            status_code=422,
        )
    return JSONResponse({"reloaded": sorted(runtime.sites)})
