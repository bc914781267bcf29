"""The demo: the example sites' pages with sitecue beside them on one origin, exactly as a
site puts sitecue behind its own host: the news site proxies ``/sc/`` to it, the shop
``/shop/sc/``. Each path keeps its own cookies, as two real sites on two hosts would. A
fresh demo of the bundled config starts with four weeks of made-up traffic
(:mod:`sitecue.demo_history`), so the dashboard's reports have something to show.

The demo works under whatever address it is opened (its pages may call the origin they were
served on), and ``/news/faq-preview`` shows the paywall's FAQ to a visitor in its control
group, as the README's walk-through promises everyone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import preview
from .app import build_app
from .catalog import store_products
from .demo_history import MARKER, seed_history
from .demo_shop import CATALOG, SHOP, read_catalog, shop_routes
from .recommend import run_sites
from .recommend.index import load_index
from .runtime import Runtime
from .settings import Settings

__all__ = ["build_demo_app"]


ARTICLES = 5
FAQ_SITE, FAQ_RULE = "news", "paywall-faq"  # the README's walk-through ends on this rule


def build_demo_app(settings: Settings) -> Starlette:
    # The demo's pages may call it under whatever name and port it is opened (a LAN name, a
    # published Docker port): a same-origin call is allowed (see sitecue.origins for why
    # that lets no other site in).
    settings = replace(settings, same_origin=True)
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

    async def faq_preview(request: Request) -> Response:
        """The news site's FAQ as a preview, for whoever the FAQ rule put in its control
        group (one browser in ten keeps the paywall, as an experiment's control must): the
        first article with a fresh preview link (see :mod:`sitecue.preview`) that shows the
        FAQ whatever the visitor's group, caps or count, and counts nothing."""
        runtime: Runtime = sitecue.state.runtime
        site = runtime.sites.get(FAQ_SITE)
        rule = next((r for r in site.rules if r.id == FAQ_RULE), None) if site else None
        variants = rule.rule.variants if rule else []
        shown = next((v.id for v in variants if v.widget is not None), None)
        if shown is None:  # a config of one's own, run as a demo
            return HTMLResponse(f"No rule {FAQ_RULE} in site {FAQ_SITE}", status_code=404)
        grant = preview.mint(runtime.keyring, FAQ_SITE, FAQ_RULE, shown, int(time.time()) + 3600)
        page = preview.link("/news/articles/1.html", grant)
        return RedirectResponse(page, status_code=303, headers={"cache-control": "no-store"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # A mounted app's lifespan does not run by itself: run sitecue's as the demo's.
        async with sitecue.router.lifespan_context(sitecue):
            runtime = sitecue.state.runtime
            now = int(time.time() * 1000)
            # The shop's catalogue, as its systems would send it (see sitecue.demo_shop).
            stock = settings.config_dir / CATALOG
            products = [p.product(now) for p in read_catalog(stock)] if stock.is_file() else []
            # Made-up traffic only for the demo's own config (an operator's config, even
            # run as a demo, never gets it): rollups are kept for good. The shop's shoppers
            # buy from its catalogue, with the pattern recommendations learn planted.
            if (settings.config_dir / MARKER).is_file():
                await seed_history(runtime.store, runtime.sites, now, {SHOP: products})
            if products and SHOP in runtime.sites:
                # Imported at every start (each replaces the product of its id), then the
                # recommendations counted and loaded before the first page is served. The
                # app's own job may hold the site's lease for a moment: wait for it.
                await store_products(runtime.store, SHOP, products)
                for _ in range(100):
                    outcomes = await run_sites(runtime.store, runtime.sites, SHOP)
                    if not any(o.skipped for o in outcomes):
                        break
                    await asyncio.sleep(0.1)
                runtime.recommendations[SHOP] = await load_index(runtime.store, SHOP)
            yield

    return Starlette(
        routes=[
            Mount("/sc", app=sitecue),
            Mount("/shop/sc", app=sitecue),
            Route("/news/articles/{n:int}.html", news_article),
            Route("/news/faq-preview", faq_preview),
            *shop_routes(settings.config_dir),
            Mount("/", app=StaticFiles(directory=settings.config_dir / "demo", html=True)),
        ],
        lifespan=lifespan,
    )
