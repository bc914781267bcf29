"""How big a site's state cookie can grow, for ``sitecue check``.

The cookie keeps only what the compiled rules read, so its worst case follows from the site:
its counted triggers, its rules and their caps, its declared attributes. Over
MAX_COOKIE_BYTES the oldest day buckets and then less useful memory are evicted (see
:mod:`sitecue.state`), so a site over the cap still works, but counts over long windows come
out short; and a site whose dismissals alone do not fit may show a dismissed campaign again.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .forms import largest_answer
from .identity import MAX_CONTACT_ID
from .products import MAX_BOUGHT
from .rules import CompiledSite
from .state import (
    MAX_COOKIE_BYTES,
    MAX_SUM,
    PRODUCT_KEY_BYTES,
    Budget,
    Counter,
    Products,
    RuleMemory,
    Snapshot,
    VisitorState,
    sent_size,
)

__all__ = ["StateSize", "state_size", "warnings"]

MAX_COUNT = 2**32 - 1
"""A count in a day bucket, a session or in all: any count up to this packs in 5 bytes."""
MAX_MS = 2**53
"""An epoch-millisecond time (first seen, last shown, dismissed…): 9 bytes, as every real
one takes."""
FIRST_DAY = 740_000  # a day ordinal of our time (2027): 5 bytes, as every real one takes
DECISION_ID_CHARS = 16  # decision_id(): base64 of 12 bytes
STRING_ATTRIBUTE_CHARS = 64
"""A string attribute (a loyalty tier, a segment name) is assumed to stay within this."""
_ATTRIBUTE: dict[str, Any] = {
    "boolean": True,
    "number": 1.5,  # a float packs in 9 bytes, more than any int up to 2**32
    "string": "x" * STRING_ATTRIBUTE_CHARS,
}


class StateSize(NamedTuple):
    worst: int  # bytes of sc_s=… when everything the rules read is at its largest
    floor: int  # bytes when only the contact and every rule's dismissal are left


def _counter(days: int) -> Counter:
    return Counter(
        days={FIRST_DAY + d: MAX_COUNT for d in range(days)}, session=MAX_COUNT, total=MAX_COUNT
    )


def worst_state(site: CompiledSite) -> VisitorState:
    """The largest state a visitor of ``site`` can carry, on these assumptions:

    - every time (first and last seen, last shown, dismissed, converted) is a real epoch-ms
      time, every count is below 2**32 (5 bytes), every day is a day of our era;
    - every trigger some rule counts has a bucket for each day of its longest day window
      (and a session and a total count); a trigger read only over ``session`` or ``total``
      has no buckets; a trigger some rule sums has a sum beside each of its day counts, a
      day's sum being below 2**32 hundredths (42,949,672.95: 5 bytes, as a count), and a
      session and a total sum at MAX_SUM (9 bytes). A site whose values add up to more in
      a day (amounts in a currency of small units) may see its oldest days evicted sooner;
    - every rule has a memory: its longest variant id, a bucket for each day of its
      impression cap's window, the last decision id (16 characters, as the server makes
      them), and last shown, dismissed and converted times;
    - the visitor is identified and verified, with a contact id of MAX_CONTACT_ID
      characters, and consent given;
    - every declared attribute is set: a boolean, a number (a float, 9 bytes), a string of
      STRING_ATTRIBUTE_CHARS one-byte characters (a longer one is evicted first at the cap);
    - its attributes were refreshed (an epoch-seconds time, 5 bytes), and every counted
      trigger has a server-side count (below 2**32) for each window some rule reads but
      ``session`` (server-side events belong to no browser's session), and every summed
      trigger a server-side sum at MAX_SUM (9 bytes) for each window some rule sums but
      ``session``;
    - every form answer some rule reads is at its largest (see forms.largest_answer: a
      text of its max_length in 3-byte characters, every option of a multiple choice…);
    - where some rule reads reading time, its seconds (and, where some rule reads an
      average, its page views) have a bucket for each day of the longest day window read
      (and session and total counts), and the last credit is a real time;
    - where the site sets a ``frequency`` budget: a view and as many overlays given in it
      as ``per_view`` allows (or every rule it covers), each a 32-bit mark, and the
      session's and the day's counts and the last overlay's time at their largest;
    - every goal some rule stops after has been reached (an epoch-ms time each);
    - where the site has a catalog: as many products viewed as ``catalog.recent`` keeps,
      MAX_BOUGHT bought in this browser and MAX_BOUGHT bought by the verified person, each
      a PRODUCT_KEY_BYTES key;
    - the visitor id is not counted: it is bound to the seal, not carried in it.
    """
    state = VisitorState(
        visitor="",
        first_seen=MAX_MS,
        last_seen=MAX_MS,
        sessions=MAX_COUNT,
        pageviews=MAX_COUNT,
        session_pageviews=MAX_COUNT,
        consent=True,
        contact="c" * MAX_CONTACT_ID,
        verified=True,
        attributes={name: _ATTRIBUTE[kind] for name, kind in site.config.attributes.items()},
        answers={name: largest_answer(field) for name, field in site.answers.items()},
        snapshot=Snapshot(
            at=MAX_COUNT,
            counts={
                name: {w: MAX_COUNT for w in sorted(windows) if w != "session"}
                for name, windows in site.windows.items()
            },
            sums={
                name: {w: MAX_SUM for w in sorted(windows) if w != "session"}
                for name, windows in site.sums.items()
            },
        ),
    )
    cap = site.frequency
    if cap is not None:
        given = (
            len(site.budgeted) if cap.per_view is None else min(cap.per_view, len(site.budgeted))
        )
        mark = 2**32 - 1  # see frequency._mark
        state.budget = Budget(mark, [mark] * given, MAX_COUNT, FIRST_DAY, MAX_COUNT, MAX_MS)
    state.goals = dict.fromkeys(site.stop_goals, MAX_MS)
    catalog = site.config.catalog
    if catalog is not None:
        key = b"k" * PRODUCT_KEY_BYTES
        state.products = Products(
            key * catalog.recent, key * MAX_BOUGHT, key * MAX_BOUGHT
        )  # fmt: skip
    for name in site.windows:
        state.triggers[name] = counter = _counter(site.trigger_days[name])
        if name in site.sums:  # a sum beside every day's count
            state.sums[name] = Counter(
                days=dict.fromkeys(counter.days, MAX_COUNT), session=MAX_SUM, total=MAX_SUM
            )
    if site.reading:
        state.read = _counter(site.reading_days)
        if "average_seconds" in site.reading:
            state.views = _counter(site.reading_days)
        state.read_at = MAX_MS
    for rule in site.rules:
        state.rules[rule.id] = RuleMemory(
            variant=max((v.id for v in rule.variants), key=len),
            shown=_counter(site.rule_days[rule.id]),
            last_impression="d" * DECISION_ID_CHARS,
            last_shown=MAX_MS,
            dismissed=MAX_MS,
            converted=MAX_MS,
        )
    return state


def state_size(site: CompiledSite) -> StateSize:
    """The worst case of ``site``'s state cookie, and what is left of it once everything
    that may be evicted before a dismissal is gone (the overlay budget and the goals
    reached stay)."""
    state = worst_state(site)
    worst = sent_size(state)
    state.triggers, state.attributes, state.answers, state.sums = {}, {}, {}, {}
    state.read, state.views, state.read_at = None, None, 0
    state.snapshot = Snapshot(at=MAX_COUNT)
    state.products = None  # each product goes before any dismissal
    state.rules = {
        r: RuleMemory(dismissed=m.dismissed, converted=m.converted) for r, m in state.rules.items()
    }
    return StateSize(worst, sent_size(state))


def warnings(site: CompiledSite) -> list[str]:
    """What ``sitecue check`` warns about the size of ``site``'s state cookie."""
    size = state_size(site)
    found = []
    if size.worst > MAX_COOKIE_BYTES:
        found.append(
            f"the state cookie can reach {size.worst} bytes at worst, over the "
            f"{MAX_COOKIE_BYTES}-byte cap: the oldest day buckets are evicted first, so "
            "long windows may count short for the heaviest visitors"
        )
    if size.floor > MAX_COOKIE_BYTES:
        found.append(
            f"the rules' dismissals and conversions alone take {size.floor} bytes, over the "
            f"{MAX_COOKIE_BYTES}-byte cap: a visitor who dismissed many of them may see the "
            "oldest dismissed ones again (fewer or shorter rule ids fit)"
        )
    return found
