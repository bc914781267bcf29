"""Dashboard sessions: the cookie holds a random session id, the store a hash of it.

The admin key itself never leaves the sign-in form: a stolen cookie is worth one session,
not the key, and it dies when the operator signs out (the row is deleted, so a replayed
copy of the cookie proves nothing), when it expires, or when its key is revoked. A copy of
the database signs nobody in, since only SHA-256 hashes of the ids are stored (each id is
256 random bits, so a plain hash is as good as a keyed one here).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

from .store import AdminSession, ApiKey, Store

__all__ = ["COOKIE", "LIFETIME_S", "clear_cookie", "end", "resume", "set_cookie", "start"]

COOKIE = "sc_admin"
LIFETIME_S = 12 * 3600
_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


def _now() -> int:
    """Epoch seconds (tests freeze it)."""
    return int(time.time())


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def start(store: Store, key: ApiKey) -> str:
    """A new session for ``key``; returns the id to put in the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = _now()
    await store.add_session(AdminSession(_hash(session_id), key.id, now, now + LIFETIME_S))
    return session_id


async def resume(store: Store, session_id: str | None) -> ApiKey | None:
    """The key behind the cookie's session, read from the store on every request (no cache,
    so a sign-out or a revoke holds everywhere at once); None means: sign in again."""
    if not session_id or _ID.fullmatch(session_id) is None:
        return None  # not one of ours: no need to ask the store
    return await store.session_key(_hash(session_id), _now())


async def end(store: Store, session_id: str | None) -> None:
    """Sign out: the session is deleted, so the cookie is worthless even if kept."""
    if session_id and _ID.fullmatch(session_id) is not None:
        await store.end_session(_hash(session_id))


def set_cookie(session_id: str, path: str, secure: bool) -> bytes:
    """The ``Set-Cookie`` value: HttpOnly (no script reads it), SameSite=Strict (no other
    site's page sends it), only on the dashboard's path, and Secure on https."""
    flags = "; Secure" if secure else ""
    return (
        f"{COOKIE}={session_id}; Max-Age={LIFETIME_S}; Path={path}; HttpOnly;"
        f" SameSite=Strict{flags}"
    ).encode()


def clear_cookie(path: str, secure: bool) -> bytes:
    """The ``Set-Cookie`` value that makes the browser drop the session cookie."""
    flags = "; Secure" if secure else ""
    return f"{COOKIE}=; Max-Age=0; Path={path}; HttpOnly; SameSite=Strict{flags}".encode()
