"""What the endpoints share while the app runs: the compiled sites, the codecs, the store and
the metrics. Its own module so that the endpoints (``api/*``, the dashboard) and the app that
routes to them both import it, and nothing imports the app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import ConfigError, NotFound, Problem
from .keyring import Keyring
from .metrics import Metrics
from .origins import RefusedOrigins
from .rules import CompiledSite, load_sites
from .settings import Settings
from .state import StateCodec
from .store import Goals, Store
from .tokens import TokenCodec

__all__ = ["Runtime", "goals_of"]

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

    def __post_init__(self) -> None:
        self.keyring = Keyring(self.settings.secrets)

    def reload(self) -> list[Problem]:
        """Recompile every site from disk and swap them in at once; a request sees the old
        sites or the new ones, never a mix. A bad config changes nothing: its problems are
        returned (and logged), and the old sites keep serving."""
        try:
            sites = load_sites(self.settings.config_dir, self.settings.allow_origins, self.keyring)
        except ConfigError as err:
            log.error("reload refused, the old config keeps serving:\n%s", err)
            return err.problems
        self.sites = sites
        self.store.goals = goals_of(sites)
        log.info("reloaded %d site(s): %s", len(sites), ", ".join(sorted(sites)))
        return []

    def site(self, name: str) -> CompiledSite:
        site = self.sites.get(name)
        if site is None:
            raise NotFound(f"site: no site named '{name}' is configured")
        return site
