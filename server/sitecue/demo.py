"""The demo: sitecue under ``/sc/`` and the example sites' pages beside it, on one origin,
exactly as a site would put sitecue behind its own host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from .app import build_app
from .settings import Settings

__all__ = ["build_demo_app"]


def build_demo_app(settings: Settings) -> Starlette:
    sitecue = build_app(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # A mounted app's lifespan does not run by itself: run sitecue's as the demo's.
        async with sitecue.router.lifespan_context(sitecue):
            yield

    return Starlette(
        routes=[
            Mount("/sc", app=sitecue),
            Mount("/", app=StaticFiles(directory=settings.config_dir / "demo", html=True)),
        ],
        lifespan=lifespan,
    )
