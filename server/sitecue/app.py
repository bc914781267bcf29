"""The Starlette app: every route (the tag's endpoints from :mod:`sitecue.api.tag`, two of
them on the hot path of :mod:`sitecue.api.hotpath`; the admin ones from :mod:`sitecue.api`;
the dashboard), its middleware, and the background tasks a node runs. Errors raised on
purpose map to HTTP in :mod:`sitecue.api.errors`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from .api.admin import reload_endpoint
from .api.catalog import catalog_endpoint, catalog_import_endpoint, catalog_list_endpoint
from .api.contact_events import contact_events_endpoint
from .api.contacts import contact_endpoint, export_endpoint, import_endpoint
from .api.decisions import decisions_endpoint
from .api.deliveries import deliveries_endpoint, retry_endpoint
from .api.errors import HANDLERS
from .api.holdout import holdout_endpoint
from .api.hotpath import HotPath
from .api.monitoring import health_endpoint, metrics_endpoint
from .api.openapi import openapi_endpoint
from .api.recommendations import products_endpoint
from .api.reports import reports_endpoint
from .api.results import results_endpoint
from .api.static import load_script, panel_endpoint, script_endpoint
from .api.submissions import submissions_endpoint
from .api.tag import decide_endpoint, events_endpoint, forms_endpoint, preflight
from .api.tokens import tokens_endpoint
from .dashboard import (
    dashboard_endpoint,
    dashboard_retry_endpoint,
    login_endpoint,
    logout_endpoint,
    preview_endpoint,
    report_csv_endpoint,
)
from .guard import DashboardHeaders
from .keyring import fingerprint
from .metrics import Metrics
from .recommend import RecommendJob, Refresher, every_from
from .retention import Retention
from .rootpath import PrefixedPaths
from .runtime import Runtime, goals_of
from .settings import Settings
from .state import StateCodec
from .store import open_store
from .store.spool import Spool, max_bytes_from
from .tokens import TokenCodec
from .versions import ConfigVersions, compile_dir
from .webhooks.delivery import Deliverer

__all__ = ["build_app"]

log = logging.getLogger("sitecue")

HOT = ("/v1/decide", "/v1/events")
"""The paths whose ``POST`` the hot path answers (see api.hotpath)."""


def build_app(settings: Settings, *, publish: bool = False) -> Starlette:
    """The sitecue ASGI app. Sites are compiled before it starts, so a bad config fails fast;
    it serves the store's live config version (see versions; ``publish``: the config
    directory is made live at start when it differs, as the demo wants)."""
    snapshot, sites = compile_dir(settings)
    spool_max = max_bytes_from(os.environ)
    recommend_every = every_from(os.environ)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # Which key signs, by name or fingerprint (never the secret): what an operator
        # checks on every node between the steps of a rotation.
        names = settings.key_names or tuple(fingerprint(s) for s in settings.secrets)
        log.info("keyring: key %s signs; keys %s verify", names[0], ", ".join(names))
        store = await open_store(settings.db, goals_of(sites))
        store.writer.on_commit = metrics.batches.observe
        # While the store fails, groups go to this worker's spool (see store.spool).
        spool = Spool(settings.data_dir / "spool", spool_max)
        spool.attach(store.writer)
        codec = StateCodec(settings.secrets, metrics.evictions)
        tokens = TokenCodec(settings.secrets)
        codec.rejected, tokens.rejected = metrics.rejected["cookie"], metrics.rejected["token"]
        metrics.gauge(
            "sitecue_writer_queue_records",
            "Records waiting for the next commit.",
            lambda: store.writer.depth,
        )
        metrics.gauge(
            "sitecue_spool_records",
            "Records spooled locally while the store failed, not yet forwarded to it.",
            lambda: spool.depth,
        )
        metrics.start()
        runtime = app.state.runtime = Runtime(settings, sites, codec, store, metrics, tokens)
        versions = runtime.versions = ConfigVersions(runtime, snapshot, publish=publish)
        try:
            await versions.start(sites)
        except BaseException:
            await store.close()
            raise
        deliverer = Deliverer(store, lambda: runtime.sites, metrics)
        deliverer.start()
        runtime.wake_delivery = deliverer.wake
        retention = Retention(store, lambda: runtime.sites)
        retention.start()
        # Recommendations: the job (one node at a time per site) and this worker's indexes.
        indexes = Refresher(store, lambda: runtime.sites, runtime.recommendations)
        indexes.start()
        recommendations = RecommendJob(
            store, lambda: runtime.sites, every_s=recommend_every, published=indexes.wake
        )
        recommendations.start()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, versions.hangup)
            hangup = True
        except (ValueError, RuntimeError, NotImplementedError):
            hangup = False  # not the main thread (as in tests), or no SIGHUP on this platform
        try:
            yield {}
        finally:
            if hangup:
                loop.remove_signal_handler(signal.SIGHUP)
            await versions.stop()
            await deliverer.stop()
            await retention.stop()
            await recommendations.stop()
            await indexes.stop()
            await store.close()
            await metrics.stop()

    metrics = Metrics(settings.metrics_dir)
    routes = [
        ("/cue.js", script_endpoint, ["GET"]),
        ("/cue.{version}.js", script_endpoint, ["GET"]),
        ("/preview.js", panel_endpoint, ["GET"]),
        ("/v1/decide", decide_endpoint, ["POST"]),
        ("/v1/decide", preflight, ["OPTIONS"]),
        ("/v1/events", events_endpoint, ["POST"]),
        ("/v1/events", preflight, ["OPTIONS"]),
        ("/v1/forms", forms_endpoint, ["POST"]),
        ("/v1/forms", preflight, ["OPTIONS"]),
        ("/v1/submissions", submissions_endpoint, ["GET"]),
        ("/v1/reload", reload_endpoint, ["POST"]),
        ("/v1/decisions", decisions_endpoint, ["GET"]),
        ("/v1/deliveries", deliveries_endpoint, ["GET"]),
        ("/v1/deliveries/{id}/retry", retry_endpoint, ["POST"]),
        ("/v1/tokens", tokens_endpoint, ["POST"]),
        ("/v1/results", results_endpoint, ["GET"]),
        ("/v1/results/holdout", holdout_endpoint, ["GET"]),
        ("/v1/reports", reports_endpoint, ["GET"]),
        ("/v1/recommendations/products", products_endpoint, ["GET"]),
        ("/v1/contacts/import", import_endpoint, ["POST"]),
        ("/v1/catalog", catalog_list_endpoint, ["GET"]),
        ("/v1/catalog/import", catalog_import_endpoint, ["POST"]),
        ("/v1/catalog/{product:path}", catalog_endpoint, ["GET", "PUT", "DELETE"]),
        ("/v1/contacts/{contact}", contact_endpoint, ["GET", "PUT", "PATCH", "DELETE"]),
        ("/v1/contacts/{contact}/export", export_endpoint, ["GET"]),
        ("/v1/contacts/{contact}/events", contact_events_endpoint, ["POST"]),
        ("/dashboard", dashboard_endpoint, ["GET"]),
        ("/dashboard/login", login_endpoint, ["POST"]),
        ("/dashboard/logout", logout_endpoint, ["POST"]),
        ("/dashboard/preview", preview_endpoint, ["POST"]),
        ("/dashboard/report.csv", report_csv_endpoint, ["GET"]),
        ("/dashboard/deliveries/{id}/retry", dashboard_retry_endpoint, ["POST"]),
        ("/openapi.json", openapi_endpoint, ["GET"]),
        ("/metrics", metrics_endpoint, ["GET"]),
        ("/healthz", health_endpoint, ["GET"]),
    ]
    timed = [(path, metrics.timed(path, endpoint), methods) for path, endpoint, methods in routes]
    hot = {path: endpoint for path, endpoint, methods in timed if path in HOT and "POST" in methods}
    app = Starlette(
        routes=[Route(path, endpoint, methods=methods) for path, endpoint, methods in timed],
        exception_handlers=HANDLERS,
        # The tag's hot endpoints are answered before the dashboard's middleware and the
        # router (see api.hotpath); their Routes stay, for the preflight, the 405s, and any
        # form of the path the hot path does not take.
        middleware=[
            Middleware(PrefixedPaths),
            Middleware(HotPath, endpoints=hot),
            Middleware(DashboardHeaders),
        ],
        lifespan=lifespan,
    )
    app.state.script = load_script()
    app.state.panel = files("sitecue").joinpath("static", "preview.js").read_bytes()
    return app
