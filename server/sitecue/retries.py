"""Idempotency: a retried ``/v1/decide`` or ``/v1/events`` is answered again, never stored
twice.

A load balancer that retries a POST, or a beacon sent twice, repeats the ids the tag gave
the call (``call``) and each event (``id``). Every record carries a key made from them (a
decision the call's id, an event its own), and
the store skips a record whose key it already holds for the site (a unique index, inside
the writer's transaction: no read on the decide path). The answer is recomputed from the
same cookie, so it is the same answer. A browser's first call has no cookie yet, so its
retry would make up another visitor; instead the new visitor id is derived from the call id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from .keyring import Keyring

__all__ = ["new_visitor", "trigger_key"]


def new_visitor(keyring: Keyring, site: str, call: str | None) -> str:
    """The id of a browser sitecue has not seen: random, or for a call with an id a MAC of
    it, so the retry of that first call gets the same visitor (and the same variants). Only
    whoever sent the call knows its id, as only they will hold the cookie."""
    if call is None:
        return secrets.token_urlsafe(16)
    mac = hmac.new(keyring.mac_key("visitor", site), call.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()


def trigger_key(call: str | None, part: str) -> str | None:
    """The key of one record a decide call makes beside its decision (a trigger, by its
    position; a refused token). The dot keeps it apart from every event id, which has none."""
    return None if call is None else f"{call}.{part}"
