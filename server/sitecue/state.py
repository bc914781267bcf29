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
from datetime import datetime
from zoneinfo import ZoneInfo

import itsdangerous
import msgspec

__all__ = ["SESSION_GAP_MS", "Counter", "RuleMemory", "StateCodec", "VisitorState", "day_of"]

SESSION_GAP_MS = 30 * 60 * 1000
"""A visit ends after 30 minutes without a page view or event, as in web analytics."""

MAX_AGE_S = 400 * 24 * 3600  # browsers cap cookie lifetime at 400 days


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
    shown: Counter = msgspec.field(default_factory=Counter)
    last_impression: str = ""  # the decision whose impression was counted last
    dismissed: int = 0
    converted: int = 0


class VisitorState(msgspec.Struct, array_like=True, omit_defaults=True):
    """Everything a decision needs to know about one visitor."""

    visitor: str  # the sc_vid this state belongs to
    first_seen: int = 0
    last_seen: int = 0
    sessions: int = 0
    pageviews: int = 0
    triggers: dict[str, Counter] = {}
    rules: dict[str, RuleMemory] = {}

    def touch(self, now: int) -> None:
        """Start a new session when the last activity is older than the session gap."""
        if not self.first_seen:
            self.first_seen = now
        if now - self.last_seen > SESSION_GAP_MS:
            self.sessions += 1
            for counter in self.triggers.values():
                counter.session = 0
            for memory in self.rules.values():
                memory.shown.session = 0
        self.last_seen = max(self.last_seen, now)

    def rule(self, rule_id: str) -> RuleMemory:
        memory = self.rules.get(rule_id)
        if memory is None:
            memory = self.rules[rule_id] = RuleMemory()
        return memory


def day_of(ms: int, zone: ZoneInfo) -> int:
    """The calendar day (proleptic ordinal) of an epoch-ms instant in the site's time zone."""
    return datetime.fromtimestamp(ms / 1000, zone).toordinal()


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(VisitorState)


class StateCodec:
    """Packs, signs and verifies the state cookie. ``secrets`` may hold several keys for
    rotation: the last one signs, every one verifies."""

    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ValueError("the state cookie needs at least one secret")
        self._signer = itsdangerous.TimestampSigner(
            secrets, salt="sitecue.state", digest_method=hashlib.sha256
        )

    def encode(self, state: VisitorState) -> str:
        packed = base64.urlsafe_b64encode(_encoder.encode(state)).rstrip(b"=")
        return self._signer.sign(packed).decode()

    def decode(self, cookie: str | None, visitor: str) -> VisitorState | None:
        """The state in ``cookie`` if it is intact, unexpired and belongs to ``visitor``;
        None otherwise."""
        if not cookie:
            return None
        try:
            packed = self._signer.unsign(cookie, max_age=MAX_AGE_S)
            raw = base64.urlsafe_b64decode(packed + b"=" * (-len(packed) % 4))
            state = _decoder.decode(raw)
        except (itsdangerous.BadData, binascii.Error, ValueError, msgspec.DecodeError):
            return None
        return state if state.visitor == visitor else None
