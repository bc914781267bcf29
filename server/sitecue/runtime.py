"""What the endpoints share while the app runs: the compiled sites, the codecs, the store and
the metrics. Its own module so that the endpoints (``api/*``, the dashboard) and the app that
routes to them both import it, and nothing imports the app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .errors import NotFound, Problem
from .keyring import Keyring
from .metrics import Metrics
from .origins import RefusedOrigins
from .rules import CompiledSite
from .settings import Settings
from .state import StateCodec
from .store import Goals, Purchases, Store
from .tokens import TokenCodec

if TYPE_CHECKING:
    from .recommend.index import Index
    from .versions import ConfigVersions

__all__ = ["Runtime", "Served", "goals_of", "purchases_of"]

log = logging.getLogger("sitecue")


def goals_of(sites: dict[str, CompiledSite]) -> Goals:
    """Per site, which rules each goal event converts: what the store's writer counts
    conversions by (the store does not read the rules)."""
    goals: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, site in sites.items():
        names = goals[name] = {}
        for rule in site.rules:
            if rule.rule.goal:
                names[rule.rule.goal] = (*names.get(rule.rule.goal, ()), rule.id)
    return goals


def purchases_of(sites: dict[str, CompiledSite]) -> Purchases:
    """Per site with a catalogue that names it, its purchase event: what the store's writer
    credits recommendation clicks by (see store.product_rollups)."""
    return {
        name: site.config.catalog.purchase
        for name, site in sites.items()
        if site.config.catalog is not None and site.config.catalog.purchase is not None
    }


class Served(NamedTuple):
    """The config version a worker serves, and when it began to (epoch ms)."""

    version: int
    hash: str
    applied: int


@dataclass
class Runtime:
    """What the endpoints share: the compiled sites, the cookie codec and the store."""

    settings: Settings
    sites: dict[str, CompiledSite]
    codec: StateCodec
    store: Store
    metrics: Metrics
    tokens: TokenCodec
    keyring: Keyring = field(init=False)  # keys per purpose and site, from the settings' secrets
    # Tells this process's webhook delivery that messages were committed (see app.lifespan).
    wake_delivery: Callable[[], None] = field(default=lambda: None)
    # The origins refused so far, each logged once per site by this process.
    refused_origins: RefusedOrigins = field(default_factory=RefusedOrigins)
    # The config version these sites are (None: the node's own config directory, not the
    # live version, which did not compile here), and this worker's side of versions.
    config: Served | None = None
    versions: ConfigVersions | None = None
    # Per site with a catalog, the recommendations' index this worker holds (kept current
    # by recommend.index.Refresher; a site is missing until its first load).
    recommendations: dict[str, Index] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keyring = Keyring(self.settings.secrets)

    def swap(self, sites: dict[str, CompiledSite], served: Served | None) -> None:
        """Serve ``sites`` (compiled from the version ``served``) from now on: sites, goals
        and version change together, with no await between, so a request sees the old
        version or the new one, never a mix."""
        self.sites = sites
        self.store.goals = goals_of(sites)
        self.store.purchases = purchases_of(sites)
        self.config = served

    async def reload(self, author: str = "reload") -> list[Problem]:
        """Publish the node's config directory as the live version and serve it here at
        once (the other workers and nodes follow within seconds); see versions. A bad
        config changes nothing: its problems are returned (and logged), and the old
        version keeps serving."""
        assert self.versions is not None, "reload needs the app running"
        return await self.versions.reload(author)

    def site(self, name: str) -> CompiledSite:
        site = self.sites.get(name)
        if site is None:
            raise NotFound(f"site: no site named '{name}' is configured")
        return site
