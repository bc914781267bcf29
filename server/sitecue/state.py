"""The visitor's decision-relevant state, carried in a sealed first-party cookie.

Any sitecue node can decide for any visitor without a database read: trigger counters in
day buckets, what each rule showed and whether the visitor dismissed or converted, the
sticky variant, the contact and its attribute snapshot, all binary-packed with msgspec and
sealed (AES-GCM, :mod:`sitecue.keyring`) with a key of the site's own. Whoever holds the
cookie reads nothing in it, cannot alter it, and cannot move it to another visitor or another
site. A tampered, expired or undecodable cookie is ignored (the visitor starts afresh), never
trusted.

The cookie never exceeds MAX_COOKIE_BYTES. Over it, what matters least goes first (see
:meth:`StateCodec.encode`), and what the current request touched (the rule just shown,
dismissed or converted) is never evicted, so a cap cannot make a campaign undismissable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import time
from collections import Counter as Tally
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import itsdangerous
import msgspec

from .keyring import OVERHEAD, Keyring, Unsealable

__all__ = [
    "MAX_COOKIE_BYTES",
    "PRODUCT_KEY_BYTES",
    "SESSION_GAP_MS",
    "Budget",
    "Counter",
    "Products",
    "RuleMemory",
    "Snapshot",
    "StateCodec",
    "VisitorState",
    "day_of",
    "sent_size",
]

SESSION_GAP_MS = 30 * 60 * 1000
"""A visit ends after 30 minutes without a page view or event, as in web analytics."""

MAX_AGE_S = 400 * 24 * 3600  # browsers cap cookie lifetime at 400 days
MAX_COOKIE_BYTES = 1536
"""The state cookie as sent (``sc_s=…``) never exceeds this; the oldest buckets go first."""
STATE_COOKIE = "sc_s"
PRODUCT_KEY_BYTES = 6  # a product's key in the state (see Products)
PURPOSE = "state"  # the keyring purpose: the state cookie's keys are its own, per site


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


class Snapshot(msgspec.Struct, array_like=True, omit_defaults=True):
    """When a verified contact's attributes and server-side counts were last read (epoch
    seconds; see sitecue.refresh), and those counts: trigger -> window -> the events the
    site's own systems reported, as of that read; and the sums of their values (in
    hundredths) for the triggers some rule sums, the same way. Kept apart from the browser's
    counters and sums, which they add to, so that each read replaces them instead of
    counting them again. ``sums`` came last: a cookie sealed before it still opens."""

    at: int = 0
    counts: dict[str, dict[str, int]] = {}
    sums: dict[str, dict[str, int]] = {}


class Budget(msgspec.Struct, array_like=True, omit_defaults=True):
    """Where the visitor stands in the site's overlay budget (see :mod:`sitecue.frequency`):
    the page view last decided (a hash of the tag's view id) and the overlays given in it
    (hashes of their rule ids), the overlays shown this session and on ``day`` (a day
    ordinal), and when the last one was shown (epoch ms)."""

    view: int = 0
    given: list[int] = []
    session: int = 0
    day: int = 0
    today: int = 0
    last_shown: int = 0


class Products(msgspec.Struct, array_like=True, omit_defaults=True):
    """The products this browser touched, each as its 6-byte key (sitecue.catalog.
    product_key; an index maps keys back to ids), concatenated, the newest first: the ones
    viewed (at most the site's ``catalog.recent``), the ones bought in this browser, and the
    ones a verified person bought anywhere, as of the last refresh (see sitecue.refresh)."""

    viewed: bytes = b""
    bought: bytes = b""
    server: bytes = b""


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
    # What this browser answered in forms, declared by the visitor (never verified): only the
    # fields some rule reads, usable in this browser's rules, never as an offsite attribute.
    answers: dict[str, Any] = {}
    # Reading time (see reading.py), kept only where some rule reads it: the active seconds
    # and the page views per day, and when (server epoch ms) reading was last credited.
    read: Counter | None = None
    views: Counter | None = None
    read_at: int = 0
    # The refresh time and server-side counts: one field for both (a packed null for every
    # visitor never identified), see Snapshot.
    snapshot: Snapshot | None = None
    # The sums of the values of the triggers some rule sums (a purchase's amount), in
    # hundredths (integers pack smaller than floats and add up without drift), in the same
    # day buckets as the trigger's counts: a day with a sum has a count, and loses both at
    # once at the cap. A day whose values came to 0 has no sum.
    sums: dict[str, Counter] = {}
    budget: Budget | None = None  # the site's overlay budget, when it sets one
    # When the visitor reached each goal (epoch ms), for the goals some rule stops after:
    # reached by any path, seen the rule or not.
    goals: dict[str, int] = {}
    products: Products | None = None  # kept only where the site has a catalog

    def touch(self, now: int) -> None:
        """Start a new session when the last activity is older than the session gap."""
        if not self.first_seen:
            self.first_seen = now
        if now - self.last_seen > SESSION_GAP_MS:
            self.sessions += 1
            self.session_pageviews = 0
            for counter in self.triggers.values():
                counter.session = 0
            for counter in self.sums.values():
                counter.session = 0
            for memory in self.rules.values():
                memory.shown.session = 0
            for reading in (self.read, self.views):
                if reading is not None:
                    reading.session = 0
            if self.budget is not None:
                self.budget.session = 0
        self.last_seen = max(self.last_seen, now)

    def keep_only(
        self,
        trigger_days: Mapping[str, int],
        rule_days: Mapping[str, int],
        today: int,
        summed: Collection[str] = (),
    ) -> None:
        """Forget what no compiled rule reads: other triggers, removed rules, and day buckets
        older than the longest day window that reads each counter (0: none at all); the sums
        of the triggers not ``summed``."""
        if self.sums:
            for name in [n for n in self.sums if n not in summed or n not in trigger_days]:
                del self.sums[name]
            for name, sums in self.sums.items():
                sums.forget_before(today - trigger_days[name] + 1)
        for name in [n for n in self.triggers if n not in trigger_days]:
            del self.triggers[name]
        for rule_id in [r for r in self.rules if r not in rule_days]:
            del self.rules[rule_id]
        for name, counter in self.triggers.items():
            counter.forget_before(today - trigger_days[name] + 1)
        for rule_id, memory in self.rules.items():
            memory.shown.forget_before(today - rule_days[rule_id] + 1)

    def marks(self) -> dict[str, tuple[str, int, int, int, int]]:
        """What each rule's memory says now; :meth:`touched` compares against it later."""
        return {rule_id: _mark(memory) for rule_id, memory in self.rules.items()}

    def touched(self, before: Mapping[str, tuple[str, int, int, int, int]]) -> set[str]:
        """The rules whose memory changed since ``before`` was taken: given a variant, an
        impression, a dismissal or a conversion (a goal converts rules nobody named)."""
        return {r for r, memory in self.rules.items() if before.get(r) != _mark(memory)}

    def add_value(self, name: str, day: int, value: float) -> None:
        """Add the value of one of ``name``'s events (counted on ``day`` too) to its sums,
        each kept within ±MAX_SUM."""
        hundredths = round(value * 100)
        if not hundredths:
            return
        sums = self.sums.get(name)
        if sums is None:
            sums = self.sums[name] = Counter()
        sums.add(day, hundredths)
        sums.days[day], sums.session, sums.total = (
            _bounded(sums.days[day]),
            _bounded(sums.session),
            _bounded(sums.total),
        )
        if not sums.days[day]:
            del sums.days[day]

    def summed(self, name: str, window: str, today: int, more: int = 0) -> float:
        """The sum of ``name``'s values over a window (as :meth:`Counter.count` counts),
        with ``more`` hundredths added before the division (the person's server-side sum:
        exact to the hundredth however they add up)."""
        sums = self.sums.get(name)
        return ((sums.count(window, today) if sums is not None else 0) + more) / 100

    def rule(self, rule_id: str) -> RuleMemory:
        memory = self.rules.get(rule_id)
        if memory is None:
            memory = self.rules[rule_id] = RuleMemory()
        return memory


MAX_SUM = 2**53
"""A sum (in hundredths) stays within ±MAX_SUM: exact as a JavaScript number, 9 bytes."""


def _bounded(hundredths: int) -> int:
    return max(-MAX_SUM, min(MAX_SUM, hundredths))


def _mark(memory: RuleMemory) -> tuple[str, int, int, int, int]:
    return (
        memory.variant,
        memory.shown.total,
        memory.last_shown,
        memory.dismissed,
        memory.converted,
    )


def day_of(ms: int, zone: ZoneInfo) -> int:
    """The calendar day (proleptic ordinal) of an epoch-ms instant in the site's time zone."""
    return datetime.fromtimestamp(ms / 1000, zone).toordinal()


class _Sealed(msgspec.Struct, array_like=True):
    """What the cookie seals: when (epoch seconds, for the 400-day expiry) and the state.
    The visitor id is not carried: it is bound to the seal as associated data instead."""

    issued: int
    state: VisitorState


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Sealed)
_LATEST_ISSUE = 2**32 - 1  # any issue time until 2106 packs in as many bytes as this one
_PACKED_BUDGET = (MAX_COOKIE_BYTES - len(STATE_COOKIE) - 1) * 3 // 4 - OVERHEAD
"""The longest packed state whose sealed, base64 cookie (``sc_s=…``) fits MAX_COOKIE_BYTES."""


def _pack(state: VisitorState, issued: int) -> bytes:
    return _encoder.encode(_Sealed(issued, msgspec.structs.replace(state, visitor="")))


def sent_size(state: VisitorState) -> int:
    """The bytes of ``sc_s=<value>`` for ``state`` as it is now (before any eviction):
    the packed state, the nonce and tag sealing adds, in unpadded base64."""
    sealed = OVERHEAD + len(_pack(state, _LATEST_ISSUE))
    return len(STATE_COOKIE) + 1 + (4 * sealed + 2) // 3


def _int_size(n: int) -> int:
    """The bytes msgpack takes for ``n`` (counts and days are never negative; a negative
    value is over-estimated, which only makes eviction re-measure sooner)."""
    if n < 0:
        return 9
    return 1 if n < 0x80 else 2 if n < 0x100 else 3 if n < 0x10000 else 5 if n < 2**32 else 9


def _shrunk(entries: Mapping[Any, Any]) -> int:
    """The bytes a msgpack map's header just saved, now that it holds ``entries``: 2 when
    it has fallen to the most a smaller header can count (fixmap: 15; map16: 65535)."""
    return 2 if len(entries) in (15, 0xFFFF) else 0


def _popped(entries: dict[str, Any], key: str) -> int:
    """Pop ``key`` from ``entries``; the packed bytes that frees."""
    value = entries.pop(key)
    return len(_encoder.encode(key)) + len(_encoder.encode(value)) + _shrunk(entries)


def _evictions(state: VisitorState, keep: Collection[str]) -> Iterator[tuple[str, int]]:
    """Evict from ``state`` one item at a time, what matters least first, yielding the kind
    of each and the packed bytes it freed:

    1. ``day bucket``: the oldest day buckets of trigger counters (with the day's sum of
       the trigger's values, if any), of reading time (seconds and page views) and of the
       impressions of rules other than ``keep`` (the newest days are what rules usually
       count);
    2. ``attributes``: the attribute snapshot, taken again at the next identification or
       refresh; then ``server counts``, the person's server-side event counts and the sums
       of their values (read again at the next refresh too); then ``server products``, the
       products the person bought as the site's records say (read again at the next refresh
       too); then ``answers``, this browser's form answers; then ``viewed product``, the
       products this browser viewed, the oldest first (recommendations lose some history);
    3. ``rule memory``: rules other than ``keep`` that were never dismissed nor converted
       (their variant comes back from the bucketing hash), least recently shown first;
    4. ``trigger counter``: a trigger's session and total counts, least counted first; then
       ``reading``, the session and total reading time and page views, and when reading
       was last credited (the next report is then held to an hour); then ``bought
       product``, the products bought in this browser, the oldest first (one of them may
       be recommended again);
    5. ``rule history``: the variant and impressions of other dismissed or converted rules,
       keeping when they were dismissed or converted;
    6. ``dismissal``: other rules' dismissals and conversions, the oldest first; only here
       may a rule the visitor dismissed show again, and never a rule in ``keep``;
    7. ``goal``: the goals reached, the oldest first: a rule that stops after its goal may
       show again. The overlay budget (a few dozen bytes) is never evicted.
    """
    others = {r: m for r, m in state.rules.items() if r not in keep}
    reading = [c for c in (state.read, state.views) if c is not None]
    counters = [*state.triggers.values(), *reading, *(m.shown for m in others.values())]
    sums = [state.sums.get(name) for name in state.triggers]  # beside the first counters
    oldest = [(min(c.days), i) for i, c in enumerate(counters) if c.days]  # each counter's
    heapq.heapify(oldest)  # oldest bucket, so that evicting a few costs little
    while oldest:
        day, i = heapq.heappop(oldest)
        days = counters[i].days
        freed = _int_size(day) + _int_size(days.pop(day)) + _shrunk(days)
        summed = sums[i] if i < len(sums) else None
        if summed is not None and day in summed.days:  # the day's sum goes with its count
            freed += _int_size(day) + _int_size(summed.days.pop(day)) + _shrunk(summed.days)
        yield "day bucket", freed
        if days:
            heapq.heappush(oldest, (min(days), i))
    if state.attributes:
        size = len(_encoder.encode(state.attributes)) - 1  # an empty map is one byte
        state.attributes = {}
        yield "attributes", size
    if state.snapshot is not None and (state.snapshot.counts or state.snapshot.sums):
        snapshot = state.snapshot  # the sums of the values go with the counts
        size = len(_encoder.encode(snapshot.counts)) + len(_encoder.encode(snapshot.sums)) - 2
        snapshot.counts, snapshot.sums = {}, {}
        yield "server counts", size
    products = state.products
    if products is not None and products.server:
        size, products.server = len(products.server), b""
        yield "server products", size
    if state.answers:
        size = len(_encoder.encode(state.answers)) - 1
        state.answers = {}
        yield "answers", size
    while products is not None and products.viewed:
        products.viewed = products.viewed[:-PRODUCT_KEY_BYTES]
        yield "viewed product", PRODUCT_KEY_BYTES
    unfinished = [r for r, m in others.items() if not (m.dismissed or m.converted)]
    for rule_id in sorted(unfinished, key=lambda r: others[r].last_shown):
        yield "rule memory", _popped(state.rules, rule_id)
    for name in sorted(state.triggers, key=lambda n: state.triggers[n].total):
        freed = _popped(state.triggers, name)
        if name in state.sums:  # its sums go with it
            freed += _popped(state.sums, name)
        yield "trigger counter", freed
    if reading or state.read_at:
        size = sum(len(_encoder.encode(c)) for c in reading) + _int_size(state.read_at)
        state.read, state.views, state.read_at = None, None, 0
        yield "reading", size
    while products is not None and products.bought:
        products.bought = products.bought[:-PRODUCT_KEY_BYTES]
        if not (products.viewed or products.bought or products.server):
            state.products = None  # an empty record costs bytes too
        yield "bought product", PRODUCT_KEY_BYTES
    finished = sorted(
        (r for r in others if r in state.rules),
        key=lambda r: max(others[r].dismissed, others[r].converted),
    )
    for rule_id in finished:
        memory = state.rules[rule_id]
        slim = RuleMemory(dismissed=memory.dismissed, converted=memory.converted)
        saved = len(_encoder.encode(memory)) - len(_encoder.encode(slim))
        if saved > 0:
            state.rules[rule_id] = slim
            yield "rule history", saved
    for rule_id in finished:
        yield "dismissal", _popped(state.rules, rule_id)
    for goal in sorted(state.goals, key=state.goals.__getitem__):
        yield "goal", _popped(state.goals, goal)


class StateCodec:
    """Packs and seals the state cookie, and opens and checks it. Keys come from the
    keyring, one per site: the signing secret seals, every one opens, so secrets rotate as
    the keyring's do. ``rejected`` counts the cookies refused, by reason; ``evicted`` counts
    what the size cap dropped, by (site, kind); both feed the metrics."""

    def __init__(
        self,
        secrets: list[str],
        evicted: Tally[tuple[str, str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise ValueError("the state cookie needs at least one secret")
        self._keyring = Keyring(secrets)
        self._clock = clock
        # Cookies of the signed (unsealed) format before 0.2, read once so that an upgrade
        # keeps what visitors dismissed and converted; see _open_legacy.
        salt = b"sitecue.state"
        legacy = [hashlib.sha256(salt + b"signer" + s.encode()).digest() for s in secrets]
        self._legacy = itsdangerous.TimestampSigner(
            legacy, salt=salt, key_derivation="none", digest_method=hashlib.sha256
        )
        self.rejected: Tally[str] = Tally()
        self.evicted: Tally[tuple[str, str]] = evicted if evicted is not None else Tally()

    def encode(self, state: VisitorState, site: str, keep: Collection[str] = ()) -> str:
        """The cookie value for ``state`` on ``site``, within MAX_COOKIE_BYTES. Over it,
        ``state`` loses what matters least first (see :func:`_evictions`); the memory of
        the rules in ``keep`` (those this request showed, dismissed or converted) always
        stays. Should even that not fit (only for a site ``sitecue check`` warns about),
        the cookie goes out over the cap, counted as ``over the cap``."""
        issued = int(self._clock())
        packed = _pack(state, issued)
        excess = len(packed) - _PACKED_BUDGET
        if excess > 0:
            freed = 0
            for kind, size in _evictions(state, keep):
                self.evicted[(site, kind)] += 1
                freed += size
                if freed >= excess:  # enough, by the estimate: measure again
                    packed = _pack(state, issued)
                    excess, freed = len(packed) - _PACKED_BUDGET, 0
                    if excess <= 0:
                        break
            else:
                packed = _pack(state, issued)
                if len(packed) > _PACKED_BUDGET:
                    self.evicted[(site, "over the cap")] += 1
        # The visitor id is the associated data: a cookie copied next to another sc_vid
        # does not open. The key is the site's own: another site's cookie does not open.
        sealed = self._keyring.sealer(PURPOSE, site).seal(packed, state.visitor.encode())
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def decode(
        self, cookie: str | None, visitor: str, site: str, sites: Iterable[str] = ()
    ) -> VisitorState | None:
        """The state in ``cookie`` if it was sealed for ``visitor`` on ``site`` less than
        400 days ago; None otherwise. ``sites`` (the others served here) only serve to
        count a cookie sealed for one of them as ``other site`` rather than ``bad
        signature``: two sites on one cookie path see each other's cookies."""
        if not cookie:
            return None
        if "." in cookie:  # never in unpadded base64: the format before sealing
            return self._open_legacy(cookie, visitor)
        aad = visitor.encode()
        try:
            sealed = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            packed = self._keyring.sealer(PURPOSE, site).open(sealed, aad)
        except Unsealable:
            other = any(self._opens(sealed, aad, s) for s in sites if s != site)
            self.rejected["other site" if other else "bad signature"] += 1
            return None
        except (binascii.Error, ValueError):  # not base64 (or not ASCII) at all
            self.rejected["bad signature"] += 1
            return None
        try:
            envelope = _decoder.decode(packed)
        except msgspec.DecodeError:  # sealed by us, so only after a format change
            self.rejected["undecodable"] += 1
            return None
        if self._clock() - envelope.issued > MAX_AGE_S:
            self.rejected["expired"] += 1
            return None
        envelope.state.visitor = visitor
        return envelope.state

    def _open_legacy(self, cookie: str, visitor: str) -> VisitorState | None:
        """A cookie signed (not sealed) by a version before 0.2, once, on the way to being
        sealed. It named no site, so what one site's systems said (the contact and its
        attribute snapshot) is dropped: the person is identified again at their next email
        link. Counters, dismissals and conversions are the visitor's own and stay."""
        try:
            packed = self._legacy.unsign(cookie, max_age=MAX_AGE_S)
            state = msgspec.msgpack.decode(
                base64.urlsafe_b64decode(packed + b"=" * (-len(packed) % 4)), type=VisitorState
            )
        except itsdangerous.SignatureExpired:
            self.rejected["expired"] += 1
            return None
        except (itsdangerous.BadData, binascii.Error, ValueError, msgspec.DecodeError):
            self.rejected["bad signature"] += 1
            return None
        if state.visitor != visitor:
            self.rejected["bad signature"] += 1
            return None
        state.contact, state.verified, state.attributes = None, False, {}
        state.snapshot = None
        return state

    def _opens(self, sealed: bytes, aad: bytes, site: str) -> bool:
        try:
            self._keyring.sealer(PURPOSE, site).open(sealed, aad)
        except Unsealable:
            return False
        return True
