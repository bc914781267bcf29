"""The visitor's decision-relevant state, carried in a signed first-party cookie.

Any sitecue node can decide for any visitor without a database read: trigger counters in
day buckets, what each rule showed and whether the visitor dismissed or converted, and the
sticky variant, all binary-packed with msgspec and signed with itsdangerous. A tampered,
expired or undecodable cookie is ignored (the visitor starts afresh), never trusted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import Counter as Tally
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import itsdangerous
import msgspec

__all__ = [
    "MAX_COOKIE_BYTES",
    "SESSION_GAP_MS",
    "Counter",
    "RuleMemory",
    "StateCodec",
    "VisitorState",
    "day_of",
]

SESSION_GAP_MS = 30 * 60 * 1000
"""A visit ends after 30 minutes without a page view or event, as in web analytics."""

MAX_AGE_S = 400 * 24 * 3600  # browsers cap cookie lifetime at 400 days
MAX_COOKIE_BYTES = 1536
"""The state cookie as sent (``sc_s=…``) never exceeds this; the oldest buckets go first."""
STATE_COOKIE = "sc_s"


class Counter(msgspec.Struct, array_like=True, omit_defaults=True):
    """How often something happened: per calendar day (in the site's time zone), this
    session, and in all."""

    days: dict[int, int] = {}
    session: int = 0
    total: int = 0

    def add(self, day: int, n: int = 1) -> None:
        self.days[day] = self.days.get(day, 0) + n
        self.session += n
        self.total += n

    def count(self, window: str, today: int) -> int:
        """The count over ``session``, ``total`` or the last N days (``7d``: today and the six
        days before)."""
        if window == "session":
            return self.session
        if window == "total":
            return self.total
        first = today - int(window[:-1]) + 1
        return sum(n for day, n in self.days.items() if first <= day <= today)

    def forget_before(self, day: int) -> None:
        """Drop day buckets no rule can look at any more (the total keeps them)."""
        for old in [d for d in self.days if d < day]:
            del self.days[old]


class RuleMemory(msgspec.Struct, array_like=True, omit_defaults=True):
    """What one rule did to this visitor. Times are epoch milliseconds; 0 means never."""

    variant: str = ""  # sticky: once assigned, kept even if weights change
    shown: Counter = msgspec.field(default_factory=Counter)  # impressions
    last_impression: str = ""  # the decision whose impression was counted last
    last_shown: int = 0
    dismissed: int = 0
    converted: int = 0


class VisitorState(msgspec.Struct, array_like=True, omit_defaults=True):
    """Everything a decision needs to know about one visitor."""

    visitor: str  # the sc_vid this state belongs to
    first_seen: int = 0
    last_seen: int = 0
    sessions: int = 0
    pageviews: int = 0
    session_pageviews: int = 0
    triggers: dict[str, Counter] = {}
    rules: dict[str, RuleMemory] = {}
    consent: bool | None = None  # what the visitor said, where the site asks
    contact: str | None = None  # the contact this browser is linked to
    verified: bool = False  # linked through a signed token, not just sitecue('identify')
    attributes: dict[str, Any] = {}  # offsite attributes, a snapshot taken when identified
    last_call: int = 0  # a hash of the last decide call's id: its retry counts nothing again

    def touch(self, now: int) -> None:
        """Start a new session when the last activity is older than the session gap."""
        if not self.first_seen:
            self.first_seen = now
        if now - self.last_seen > SESSION_GAP_MS:
            self.sessions += 1
            self.session_pageviews = 0
            for counter in self.triggers.values():
                counter.session = 0
            for memory in self.rules.values():
                memory.shown.session = 0
        self.last_seen = max(self.last_seen, now)

    def keep_only(
        self, trigger_days: Mapping[str, int], rule_days: Mapping[str, int], today: int
    ) -> None:
        """Forget what no compiled rule reads: other triggers, removed rules, and day buckets
        older than the longest day window that reads each counter (0: none at all)."""
        for name in [n for n in self.triggers if n not in trigger_days]:
            del self.triggers[name]
        for rule_id in [r for r in self.rules if r not in rule_days]:
            del self.rules[rule_id]
        for name, counter in self.triggers.items():
            counter.forget_before(today - trigger_days[name] + 1)
        for rule_id, memory in self.rules.items():
            memory.shown.forget_before(today - rule_days[rule_id] + 1)

    def _counters(self) -> list[Counter]:
        return [*self.triggers.values(), *(m.shown for m in self.rules.values())]

    def evict_oldest_day(self) -> bool:
        """Drop the oldest day bucket held anywhere; False when there is none left."""
        days = [d for c in self._counters() for d in c.days]
        if not days:
            return False
        oldest = min(days)
        for counter in self._counters():
            counter.days.pop(oldest, None)
        return True

    def rule(self, rule_id: str) -> RuleMemory:
        memory = self.rules.get(rule_id)
        if memory is None:
            memory = self.rules[rule_id] = RuleMemory()
        return memory


def day_of(ms: int, zone: ZoneInfo) -> int:
    """The calendar day (proleptic ordinal) of an epoch-ms instant in the site's time zone."""
    return datetime.fromtimestamp(ms / 1000, zone).toordinal()


def _drop_attributes(state: VisitorState) -> None:
    state.attributes = {}


def _drop_unfinished_rules(state: VisitorState) -> None:
    state.rules = {k: m for k, m in state.rules.items() if m.dismissed or m.converted}


def _drop_counters(state: VisitorState) -> None:
    state.triggers = {}
    state.rules = {
        k: RuleMemory(dismissed=m.dismissed, converted=m.converted) for k, m in state.rules.items()
    }


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(VisitorState)


class StateCodec:
    """Packs, signs and verifies the state cookie. ``secrets`` may hold several keys for
    rotation: the last one signs, every one verifies. ``rejected`` counts the cookies
    refused, by reason, for the metrics."""

    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ValueError("the state cookie needs at least one secret")
        # itsdangerous derives each key from (salt, secret) on every sign and verify; derive
        # them once here, the same way ("django-concat"), and hand over the derived keys.
        salt = b"sitecue.state"
        derived = [hashlib.sha256(salt + b"signer" + s.encode()).digest() for s in secrets]
        self._signer = itsdangerous.TimestampSigner(
            derived, salt=salt, key_derivation="none", digest_method=hashlib.sha256
        )
        self.rejected: Tally[str] = Tally()

    def _sign(self, state: VisitorState) -> str:
        packed = base64.urlsafe_b64encode(_encoder.encode(state)).rstrip(b"=")
        return self._signer.sign(packed).decode()

    def encode(self, state: VisitorState) -> str:
        """The signed cookie value, within MAX_COOKIE_BYTES. Over it, the oldest day buckets
        go first, then the attribute snapshot (reloaded at the next identification), then the
        memory of rules the visitor never dismissed or converted, and last the counters."""
        budget = MAX_COOKIE_BYTES - len(STATE_COOKIE) - 1
        value = self._sign(state)
        while len(value) > budget and state.evict_oldest_day():
            value = self._sign(state)
        for shrink in (_drop_attributes, _drop_unfinished_rules, _drop_counters):
            if len(value) <= budget:
                break
            shrink(state)
            value = self._sign(state)
        return value

    def decode(self, cookie: str | None, visitor: str) -> VisitorState | None:
        """The state in ``cookie`` if it is intact, unexpired and belongs to ``visitor``;
        None otherwise."""
        if not cookie:
            return None
        try:
            packed = self._signer.unsign(cookie, max_age=MAX_AGE_S)
        except itsdangerous.SignatureExpired:
            self.rejected["expired"] += 1
            return None
        except itsdangerous.BadData:
            self.rejected["bad signature"] += 1
            return None
        try:
            state = _decoder.decode(base64.urlsafe_b64decode(packed + b"=" * (-len(packed) % 4)))
        except (binascii.Error, ValueError, msgspec.DecodeError):
            self.rejected["undecodable"] += 1
            return None
        if state.visitor != visitor:
            self.rejected["other visitor"] += 1
            return None
        return state
