"""Who a visitor is: signed email tokens, typed offsite attributes, and the state of a person
rebuilt from their durable history when a browser is identified.

A token names a contact of one site until it expires: ``<contact, base64>.<expiry, base36>``
and an HMAC-SHA256 signature with a key derived for that site alone, so a token for the
shop is worthless on the news site. Anything altered, unsigned, expired or of another site
is refused with its reason, never half-trusted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import Counter as Tally
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import itsdangerous

from .config import AttributeType
from .errors import BadRequest
from .rules import CompiledSite
from .state import Counter, VisitorState, day_of
from .store import DecisionQuery, DecisionRecord, EventRecord, Store

__all__ = [
    "TokenCodec",
    "TokenRejected",
    "check_attributes",
    "identify",
    "parse_ttl",
    "rebuild",
]

MAX_CONTACT_ID = 128
MAX_PAGEVIEWS = 10_000  # the most recent page views recounted when a person is identified
_TTL = re.compile(r"([1-9][0-9]{0,3})([hd])")


class TokenRejected(Exception):
    """A token that identifies nobody; ``reason`` says why (for the log and the metrics)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def parse_ttl(text: str) -> int:
    """``30d`` or ``12h`` in seconds; a ValueError names what was expected."""
    match = _TTL.fullmatch(text)
    if match is None:
        raise ValueError(f"ttl: expected a lifetime such as 30d or 12h, got {text!r}")
    return int(match[1]) * (86_400 if match[2] == "d" else 3_600)


class TokenCodec:
    """Mints and verifies email tokens. ``secrets`` rotate as the cookie's do: the last one
    signs, every one verifies."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = secrets
        self._signers: dict[str, itsdangerous.Signer] = {}
        self.rejected: Tally[str] = Tally()  # tokens refused, by reason, for the metrics

    def _signer(self, site: str) -> itsdangerous.Signer:
        signer = self._signers.get(site)
        if signer is None:
            salt = f"sitecue.token:{site}".encode()
            keys = [hashlib.sha256(salt + b"signer" + s.encode()).digest() for s in self._secrets]
            signer = self._signers[site] = itsdangerous.Signer(
                keys, salt=salt, key_derivation="none", digest_method=hashlib.sha256
            )
        return signer

    def mint(self, site: str, contact: str, expires: int) -> str:
        """A token naming ``contact`` on ``site`` until ``expires`` (epoch seconds)."""
        if not 0 < len(contact) <= MAX_CONTACT_ID:
            raise ValueError(f"contact: expected an id of 1 to {MAX_CONTACT_ID} characters")
        name = base64.urlsafe_b64encode(contact.encode()).rstrip(b"=").decode()
        return self._signer(site).sign(f"{name}.{_base36(expires)}").decode()

    def verify(self, site: str, token: str, now: int) -> str:
        """The contact ``token`` names on ``site`` at ``now`` (epoch seconds), or
        TokenRejected with the reason."""
        try:
            payload = self._signer(site).unsign(token).decode()
            name, _, expiry = payload.partition(".")
            contact = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
            expires = int(expiry, 36)
        except itsdangerous.BadSignature:
            reason = "bad signature"
        except (binascii.Error, UnicodeDecodeError, ValueError):
            reason = "malformed"  # signed with our key, so never in practice
        else:
            if expires > now:
                return contact
            reason = "expired"
        self.rejected[reason] += 1
        raise TokenRejected(reason)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "number": (int, float),
    "string": (str,),
}


def check_attributes(declared: Mapping[str, AttributeType], values: Any, path: str) -> None:
    """Refuse attributes the site does not declare, or of another type, naming the first
    mistake (``attributes.loyalty_tier: expected a string, got 5``)."""
    if not isinstance(values, dict):
        raise BadRequest(f"{path}: expected an object of attributes")
    for name, value in values.items():
        kind = declared.get(name)
        if kind is None:
            known = ", ".join(sorted(declared)) or "none are declared"
            raise BadRequest(f"{path}.{name}: expected an attribute the site declares ({known})")
        if value is None:
            continue  # a known attribute may be cleared
        ok = isinstance(value, _PYTHON_TYPES[kind]) and not (
            kind == "number" and isinstance(value, bool)
        )
        if not ok:
            raise BadRequest(f"{path}.{name}: expected a {kind}, got {value!r}")


def rebuild(
    site: CompiledSite,
    state: VisitorState,
    events: list[EventRecord],
    pageviews: list[DecisionRecord],
) -> None:
    """Recount the person's triggers and what each rule did to them from the durable
    history of all their browsers (``events`` and page-view ``decisions``, this browser's
    included), in place of this browser's own counts. The session counts stay this
    browser's: a session does not span devices."""
    session = {name: c.session for name, c in state.triggers.items()}
    triggers: dict[str, Counter] = {}

    def count(name: str, at: int) -> None:
        if name in site.windows:
            triggers.setdefault(name, Counter()).add(day_of(at, site.zone))

    for record in pageviews:
        page = {"page": {"path": urlsplit(record.url).path or "/"}}
        for name, matches in site.pageview_triggers:
            if matches(page):
                count(name, record.at)
    mine, state.rules = state.rules, {}
    rules = {r.id: r for r in site.rules}
    for event in events:  # oldest first
        if event.type == "trigger" and event.name:
            count(event.name, event.at)
        elif event.type == "event":  # a goal converts every rule the person was shown
            for rule_id, memory in state.rules.items():
                if rules[rule_id].rule.goal == event.name and memory.last_shown:
                    memory.converted = memory.converted or event.at
        elif event.rule in rules and event.variant:
            memory = state.rule(event.rule)
            memory.variant = memory.variant or event.variant
            if event.type == "impression":
                memory.shown.add(day_of(event.at, site.zone))
                memory.last_shown = max(memory.last_shown, event.at)
            elif event.type == "dismiss":
                memory.dismissed = memory.dismissed or event.at
            elif event.type == "convert":
                memory.converted = memory.converted or event.at
    for rule_id in mine.keys() | state.rules.keys():
        # The person's variant (their first, on any device) wins over this browser's, so
        # they see the same one everywhere; this browser's session counts stay its own.
        memory, own = state.rule(rule_id), mine.get(rule_id)
        memory.shown.session = own.shown.session if own else 0
        if own is not None:
            memory.variant = memory.variant or own.variant
            memory.last_impression = own.last_impression
    for name, counter in triggers.items():
        counter.session = session.get(name, 0)
    state.triggers = triggers


async def identify(
    store: Store,
    tokens: TokenCodec,
    site: CompiledSite,
    state: VisitorState,
    token: str | None,
    claimed: str | None,
    now: int,
) -> None:
    """Link this browser to the contact its email token names: store the link, recount the
    person's history across all their browsers, and take a snapshot of their attributes
    (the one time a decision reads the database). A contact merely ``claimed`` by page
    JavaScript is linked, but never unlocks attributes or other browsers' history. A bad
    token raises TokenRejected; the visit goes on as it was."""
    if token:
        contact = tokens.verify(site.name, token, now // 1000)
        if contact == state.contact and state.verified:
            return  # the same link clicked again
        await store.link(site.name, state.visitor, contact, now)
        record = await store.contact(site.name, contact)
        visitors = await store.visitors(site.name, contact)
        pageviews = await store.decisions(
            DecisionQuery(site=site.name, contact=contact, limit=MAX_PAGEVIEWS)
        )
        events = await store.events(site.name, visitors)
        rebuild(site, state, events, [p for p in pageviews if p.pageview])
        state.contact, state.verified = contact, True
        state.attributes = record.attributes if record is not None else {}
    elif claimed and claimed != state.contact:
        await store.link(site.name, state.visitor, claimed, now)
        state.contact, state.verified, state.attributes = claimed, False, {}
