"""The webhooks of a site, compiled once at load: the URL checked, the events as a set, the
secret read from the environment variable the config names.

The config is the operator's, so a URL is not an attacker's; still, a URL that would carry
credentials in the clear (``https://user:pass@…``, or plain ``http`` to another machine)
is refused, since each message carries personal data and the secret signs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx

from ..config import SiteConfig, Webhook
from ..errors import ConfigError, Problem
from .bodies import Body, compile_body

__all__ = ["MIN_SECRET", "CompiledWebhook", "compile_webhooks"]

MIN_SECRET = 16
"""Characters a webhook secret needs at least: a short one could be guessed from one
signed body."""
_LOCAL = frozenset({"localhost", "127.0.0.1", "::1"})
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")  # an HTTP header name (RFC 9110)
# Headers sitecue sets itself, or that belong to the connection: a config cannot replace
# the signature or the delivery id a receiver checks.
RESERVED = frozenset(
    {"sitecue-signature", "sitecue-delivery", "sitecue-event", "idempotency-key", "host",
     "content-length", "transfer-encoding", "connection", "user-agent"}
)  # fmt: skip
MAX_HEADER_VALUE = 2000
# A header read from the environment goes to the config's URL: it may not be one of the
# server's own secrets or settings (the store's URL and password, the key secrets, a
# webhook's signing secret), only a variable meant for it.
_SERVER_ENV = re.compile(r"SITECUE_(?!WEBHOOK_).*|DATABASE_URL|PG.*|.*_SECRETS?")
# A header value as it can be sent: visible ASCII, with spaces or tabs only inside. Anything
# else (a line break, a NUL, a non-ASCII character) would split a header or fail every
# delivery; refused at check, not at each attempt.
_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?")


@dataclass(frozen=True)
class CompiledWebhook:
    """One webhook as delivery uses it; ``target`` (``site/id``) names it in the outbox."""

    site: str
    id: str
    url: str
    events: frozenset[str]
    secret: bytes
    body: Body | None  # the compiled body template, or None: the plain message as JSON
    timeout: float
    headers: tuple[tuple[str, str], ...] = ()  # the config's and the environment's

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
    try:
        httpx.URL(url)  # what delivery parses: a control character, a host IDNA refuses
    except httpx.InvalidURL as err:
        return f"a URL a request can be sent to ({err})"
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
    secret_envs = frozenset(h.secret_env for h in config.webhooks)
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
        headers = _headers(hook, at, env, problems, secret_envs)
        body = None
        try:
            body = compile_body(root, hook.body, f"{at}.body", events=hook.events)
        except ConfigError as err:
            problems.extend(err.problems)
        hooked = CompiledWebhook(
            config.site, hook.id, hook.url, frozenset(hook.events), secret.encode(), body,
            hook.timeout, headers,
        )  # fmt: skip
        compiled.append(hooked)
    return tuple(compiled), problems


def _headers(
    hook: Webhook,
    at: str,
    env: Mapping[str, str],
    problems: list[Problem],
    signing: frozenset[str] = frozenset(),
) -> tuple[tuple[str, str], ...]:
    """The extra request headers: plain ones from the config, secret ones from the
    environment; a name that is no header or that sitecue sets itself, a value that is not
    visible ASCII (a line break would start another header), a missing variable, or one
    holding the server's own settings or a signing secret (``signing``) is a problem."""
    out: list[tuple[str, str]] = []
    given = [(n, v, f"{at}.headers.{n}") for n, v in hook.headers.items()]
    for name, var in hook.headers_env.items():
        value = env.get(var, "")
        if _SERVER_ENV.fullmatch(var) or var in signing:
            example = f"SITECUE_WEBHOOK_{hook.id.upper().replace('-', '_')}_AUTH"
            problems.append(
                Problem(
                    f"{at}.headers_env.{name}",
                    f"expected a variable meant for this header (such as {example}),"
                    f" not {var}: the server's own"
                    " settings and secrets (SITECUE_*, DATABASE_URL, PG*, *_SECRET, a"
                    " webhook's secret_env) are never sent",
                )
            )
            continue
        if not value:
            problems.append(
                Problem(
                    f"{at}.headers_env.{name}",
                    f"expected the environment variable {var} to hold the header's value;"
                    " it is not set",
                )
            )
        given.append((name, value, f"{at}.headers_env.{name}"))
    seen: set[str] = set()
    for name, value, path in given:
        if not _TOKEN.fullmatch(name) or name.lower() in RESERVED or name.lower() in seen:
            problems.append(
                Problem(
                    path,
                    "expected a header name, once, other than those sitecue sets"
                    f" ({', '.join(sorted(RESERVED))})",
                )
            )
        elif len(value) > MAX_HEADER_VALUE or (value and not _VALUE.fullmatch(value)):
            problems.append(
                Problem(
                    path,
                    f"expected one line of at most {MAX_HEADER_VALUE} visible ASCII"
                    " characters (spaces only inside)",
                )
            )
        seen.add(name.lower())
        out.append((name.lower(), value))
    return tuple(out)
