"""The demo: the example sites' pages with sitecue beside them on one origin, exactly as a
site puts sitecue behind its own host: the news site proxies ``/sc/`` to it, the shop
``/shop/sc/``. Each path keeps its own cookies, as two real sites on two hosts would. A
fresh demo of the bundled config starts with four weeks of made-up traffic
(:mod:`sitecue.demo_history`), so the dashboard's reports have something to show."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .app import build_app
from .demo_history import MARKER, seed_history
from .settings import Settings

__all__ = ["build_demo_app"]


ARTICLES = 5


def build_demo_app(settings: Settings) -> Starlette:
    # One machine, whose files are the truth: edited files are published at start.
    sitecue = build_app(settings, publish=True)
    article = (settings.config_dir / "demo" / "news" / "article.html").read_text()

    async def news_article(request: Request) -> HTMLResponse:
        """The news site's article pages, each with the paywall under its first paragraph."""
        n = request.path_params["n"]
        if not 1 <= n <= ARTICLES:
            return HTMLResponse("No such story", status_code=404)
        page = article.replace("{n}", str(n)).replace("{next}", str(n % ARTICLES + 1))
        return HTMLResponse(page)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # A mounted app's lifespan does not run by itself: run sitecue's as the demo's.
        async with sitecue.router.lifespan_context(sitecue):
            runtime = sitecue.state.runtime
            # Made-up traffic only for the demo's own config (an operator's config, even
            # run as a demo, never gets it): rollups are kept for good.
            if (settings.config_dir / MARKER).is_file():
                await seed_history(runtime.store, runtime.sites, int(time.time() * 1000))
            yield

    return Starlette(
        routes=[
            Mount("/sc", app=sitecue),
            Mount("/shop/sc", app=sitecue),
            Route("/news/articles/{n:int}.html", news_article),
            Mount("/", app=StaticFiles(directory=settings.config_dir / "demo", html=True)),
        ],
        lifespan=lifespan,
    )
