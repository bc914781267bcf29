"""Admin API keys: ``sck_<id>_<secret>``, shown once; only a hash of the secret is stored.

Each key names the sites it may act on. Lookup is by the public id, and the secret is checked
with a constant-time comparison, so a wrong key learns nothing from the timing. Nothing about
a key is cached in the process: every request reads it from the store, so a key revoked by
``sitecue apikey revoke`` is refused by every worker of every node from the next request on.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import TYPE_CHECKING

from starlette.requests import Request

from ..errors import BadRequest, Forbidden, Unauthorized
from ..store import ApiKey, Store

if TYPE_CHECKING:
    from ..rules import CompiledSite
    from ..runtime import Runtime

__all__ = [
    "authenticate",
    "authenticate_token",
    "authorised_site",
    "key_id",
    "mint_key",
    "note_use",
    "require_sites",
]

_KEY = re.compile(r"sck_([0-9a-f]{12})_([A-Za-z0-9_-]{32})")
_ID = re.compile(r"[0-9a-f]{12}")
USE_STEP_S = 60  # last_used is kept to the minute: one write a minute per key, not per request


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint_key(sites: list[str], label: str = "") -> tuple[str, ApiKey]:
    """A new key: the text to hand to the operator, and the record to store."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
    record = ApiKey(key_id, _hash(secret), sorted(set(sites)), label, int(time.time()))
    return f"sck_{key_id}_{secret}", record


def _now() -> int:
    """Epoch seconds (tests freeze it)."""
    return int(time.time())


def key_id(text: str) -> str | None:
    """The public id named by ``text``: the id itself (as ``sitecue apikey list`` shows it)
    or a whole key (so a leaked key can be revoked by pasting it); None if it is neither."""
    text = text.strip()
    if _ID.fullmatch(text):
        return text
    match = _KEY.fullmatch(text)
    return None if match is None else match[1]


# Why a key is refused (the dashboard's sign-in says the same in plain words).
NOT_A_KEY = "authorization: expected 'Bearer sck_…' with an admin API key"
UNKNOWN_KEY = "authorization: this API key is not valid"
REVOKED_KEY = "authorization: this API key was revoked"


async def authenticate(request: Request, store: Store) -> ApiKey:
    """The key in ``Authorization: Bearer …``, or Unauthorized."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return await authenticate_token(token if scheme.lower() == "bearer" else "", store)


async def authenticate_token(token: str, store: Store) -> ApiKey:
    """The stored key that ``token`` (``sck_…``) proves, or Unauthorized."""
    match = _KEY.fullmatch(token.strip())
    if match is None:
        raise Unauthorized(NOT_A_KEY)
    key = await store.api_key(match[1])
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(match[2])):
        raise Unauthorized(UNKNOWN_KEY)
    if key.revoked is not None:  # said only to whoever holds the whole key
        raise Unauthorized(REVOKED_KEY)
    await note_use(key, store)
    return key


async def note_use(key: ApiKey, store: Store) -> None:
    """Keep the key's ``last_used`` (shown by ``sitecue apikey list``) to the minute."""
    now = _now()
    if key.last_used is None or now - key.last_used >= USE_STEP_S:
        await store.touch_api_key(key.id, now)


def require_sites(key: ApiKey, sites: list[str] | set[str]) -> None:
    """Forbidden unless the key covers every one of ``sites``."""
    missing = sorted(set(sites) - set(key.sites))
    if missing:
        raise Forbidden(
            f"this API key is for {', '.join(key.sites)}; it may not act on {', '.join(missing)}"
        )


async def authorised_site(request: Request, of_what: str) -> tuple[Runtime, CompiledSite]:
    """The runtime and the site named by ``?site=`` (``of_what`` says whose, for the error),
    which the request's key must cover."""
    runtime: Runtime = request.app.state.runtime
    key = await authenticate(request, runtime.store)
    name = request.query_params.get("site")
    if not name:
        raise BadRequest(f"site: expected the site {of_what}")
    require_sites(key, {name})
    return runtime, runtime.site(name)
