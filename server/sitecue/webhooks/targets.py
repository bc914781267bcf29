"""The webhooks of a site, compiled once at load: the URL checked, the events as a set, the
secret read from the environment variable the config names.

The config is the operator's, so a URL is not an attacker's; still, a URL that would carry
credentials in the clear (``https://user:pass@…``, or plain ``http`` to another machine)
is refused, since each message carries personal data and the secret signs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..config import SiteConfig, Webhook
from ..errors import Problem

__all__ = ["MIN_SECRET", "CompiledWebhook", "compile_webhooks"]

MIN_SECRET = 16
"""Characters a webhook secret needs at least: a short one could be guessed from one
signed body."""
_LOCAL = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class CompiledWebhook:
    """One webhook as delivery uses it; ``target`` (``site/id``) names it in the outbox."""

    site: str
    id: str
    url: str
    events: frozenset[str]
    secret: bytes
    body: str | None  # a template path relative to ``root``, or None: the plain message
    root: Path  # the config directory
    timeout: float

    @property
    def target(self) -> str:
        return f"{self.site}/{self.id}"


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "a URL such as https://hooks.example/sitecue"
    if parts.scheme not in ("https", "http") or not host:
        return "an https:// URL with a host"
    if parts.scheme == "http" and host not in _LOCAL:
        return "https (plain http only to localhost or 127.0.0.1)"
    if parts.username is not None or parts.password is not None:
        return "a URL without credentials (put the secret in secret_env, not the URL)"
    if parts.fragment or any(c.isspace() for c in url):
        return "a URL without a #fragment or spaces"
    return None


def compile_webhooks(
    config: SiteConfig, root: Path, environ: Mapping[str, str] | None = None
) -> tuple[tuple[CompiledWebhook, ...], list[Problem]]:
    """The site's webhooks, and every problem with them (a missing secret among them:
    a webhook that cannot sign must not start)."""
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    compiled: list[CompiledWebhook] = []
    seen: set[str] = set()
    for i, hook in enumerate(config.webhooks):
        at = f"$.webhooks[{i}]"
        if hook.id in seen:
            problems.append(Problem(f"{at}.id", f"expected a unique id, '{hook.id}' is used twice"))
        seen.add(hook.id)
        wrong = _url_problem(hook.url)
        if wrong:
            problems.append(Problem(f"{at}.url", f"expected {wrong}"))
        secret = env.get(hook.secret_env, "")
        if len(secret) < MIN_SECRET:
            what = "is not set" if not secret else f"holds fewer than {MIN_SECRET} characters"
            problems.append(
                Problem(
                    f"{at}.secret_env",
                    f"expected the environment variable {hook.secret_env} to hold the"
                    f" webhook's secret (at least {MIN_SECRET} characters); it {what}",
                )
            )
        compiled.append(_compiled(config.site, hook, secret, root))
    return tuple(compiled), problems


def _compiled(site: str, hook: Webhook, secret: str, root: Path) -> CompiledWebhook:
    return CompiledWebhook(
        site, hook.id, hook.url, frozenset(hook.events), secret.encode(), hook.body, root,
        hook.timeout,
    )  # fmt: skip
