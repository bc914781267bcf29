"""What operators and load balancers poll: ``GET /healthz`` and ``GET /metrics``."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import Response

from ..errors import (
    BadRequest,
)
from ..runtime import Runtime
from .bodies import Health, ServedConfig, json_response
from .keys import authenticate, require_sites

__all__ = ["health_endpoint", "metrics_endpoint"]


async def health_endpoint(request: Request) -> Response:
    """``GET /healthz``: 200 ``ok`` when the store answers; 200 ``degraded`` while the
    store fails but the answering worker spools its records (it still decides), with how
    many it holds; 503 when the store fails and nothing can take the records."""
    runtime: Runtime = request.app.state.runtime
    spool = runtime.store.writer.spool
    if spool is None:
        status = "ok" if await runtime.store.healthy() else "unavailable"
    else:
        status = await spool.health(runtime.store.healthy)
    text = "store unavailable" if status == "unavailable" else status
    depth = spool.depth if spool is not None else 0
    served = runtime.config
    config = None if served is None else ServedConfig(served.version, served.hash, served.applied)
    return json_response(
        Health(text, sorted(runtime.sites), depth, config, os.getpid()),
        503 if status == "unavailable" else 200,
    )


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: Prometheus text, behind an admin key: the node's totals over all
    its workers; series labelled with a site only for the key's sites (or the one ``site``
    asked for, which the key must cover)."""
    runtime: Runtime = request.app.state.runtime
    key = await authenticate(request, runtime.store)
    site = request.query_params.get("site")
    if site == "":
        raise BadRequest("site: expected a site name, or no site parameter for all the key's")
    sites = {site} if site is not None else set(key.sites)
    require_sites(key, sites)
    # Only configured webhooks' messages: those of a webhook taken out of the config wait
    # for nothing (kept until it is configured again) and would hold the gauge up forever.
    configured = {(s.name, h.id) for s in runtime.sites.values() for h in s.webhooks}
    outbox = {k: n for k, n in (await runtime.store.outbox_depth()).items() if k in configured}
    text = runtime.metrics.render(sites, outbox)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")
