"""Rollups: per site, rule, variant and UTC day, the counts reports read, kept by the writer
in the same transaction as the records, so a report reads a few rows however large the logs.

The engines run the statements; this module holds what both share: which records a group
stores (idempotency through ``record_keys``), which exposures and conversions it proposes,
and the deltas it adds to ``rollups``, summed in Python so each group ends with one upsert.

Attribution: a visitor is exposed to a rule at their first matched verdict (the control
too), kept in ``exposures`` (one row per site, rule and visitor: distinct visitors are
exact). Visitors, conversions and revenue count on that first day (the cohort's), so a day's
conversion rate is of its new visitors; decisions, impressions, clicks, dismissals and
submissions count on the day they happen. A goal reached before the exposure does not count,
nor one reported in the call that exposes the visitor (it fired on the page before that
decision): a goal event converts an exposure strictly after its first, a ``convert`` (which
names the decision it follows) at or after it. Revenue is the goal events' positive values:
the browser reports them, so a negative or zero value adds nothing (the conversion counts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from .base import DecisionRecord, EventRecord, Row, VariantCounts
from .product_rollups import click_keys

__all__ = [
    "ATTRIBUTE",
    "ATTRIBUTE_POSTGRES",
    "COUNTS",
    "DAY_MS",
    "EXPOSED_POSTGRES",
    "EXPOSED_SQLITE",
    "EXPOSE_POSTGRES",
    "EXPOSE_SQLITE",
    "FEEDBACK",
    "KEYS_POSTGRES",
    "KEYS_SQLITE",
    "REPORT",
    "RESULTS",
    "UPSERT_ROLLUPS",
    "UPSERT_ROLLUPS_POSTGRES",
    "Conversion",
    "DayCounts",
    "Goals",
    "Tally",
    "columns",
    "conversion_rows",
    "day_counts",
    "exposure_rows",
    "exposures_of",
    "goal_rows",
    "key_rows",
    "stored",
    "variant_counts",
]

# site -> goal event name -> the ids of the rules whose ``goal`` it is.
Goals = Mapping[str, Mapping[str, tuple[str, ...]]]
DAY_MS = 86_400_000  # a day number is epoch ms // DAY_MS (UTC)
# What a stored event may convert: (site, visitor, rule, at, value, goal), ``goal`` true for
# a goal event (it converts only exposures first strictly before ``at``), false for a
# ``convert``; ``value`` the revenue it brings, positive or None.
Conversion = tuple[str, str, str, int, float | None, bool]

# The counted columns of ``rollups``, in this order everywhere (rows, upserts, reads).
COUNTS = (
    "decisions", "visitors", "impressions", "clicks", "dismissals", "submissions",
    "conversions", "revenue", "revenue_sq",
)  # fmt: skip
_COLUMN = {name: i for i, name in enumerate(COUNTS)}
_INTEGERS = len(COUNTS) - 2  # all but revenue and revenue_sq
# Feedback on a decision, counted once per decision however often it is reported (a replay
# with new event ids is not stored); and the activity column each type counts in.
FEEDBACK = ("impression", "click", "dismiss", "convert")
_ACTIVITY = {"impression": "impressions", "click": "clicks", "dismiss": "dismissals"}

UPSERT_ROLLUPS = (
    f"INSERT INTO rollups (site, rule, variant, day, {', '.join(COUNTS)})"
    f" VALUES ({', '.join(['?'] * (4 + len(COUNTS)))})"
    " ON CONFLICT (site, rule, variant, day) DO UPDATE SET "
    + ", ".join(f"{c} = rollups.{c} + excluded.{c}" for c in COUNTS)
)


class DayCounts(msgspec.Struct, frozen=True):
    """One variant of a rule on one UTC day, as the rollups hold it."""

    day: int  # UTC day number (epoch ms // DAY_MS)
    variant: str
    decisions: int  # decisions whose verdict for the rule matched (the control too)
    visitors: int  # first exposed that day (the cohort)
    impressions: int
    clicks: int
    dismissals: int
    submissions: int  # form submissions
    conversions: int  # of that day's cohort, whenever they converted
    revenue: float  # the goal events' values of that day's cohort
    revenue_sq: float  # the sum over its visitors of the square of each one's revenue


def _day(at: int) -> int:
    return at // DAY_MS


def _event_keys(e: EventRecord) -> tuple[str, ...]:
    """The idempotency keys of an event: its own (a retry's repeats it), and for feedback
    on a decision ``"<type> <decision>"``, so a replayed impression with a new id is not
    stored again. (Event ids and call ids have no spaces: the namespaces stay apart.)"""
    mine = (e.key,) if e.key is not None else ()
    if e.type in FEEDBACK and e.decision is not None:
        clicked = click_keys(e)  # a recommended product's: once per (decision, product)
        return (*mine, clicked[0] if clicked is not None else f"{e.type} {e.decision}")
    return mine


def _shared_keys(e: EventRecord) -> tuple[str, ...]:
    """The keys an event holds without needing them new to be stored: a recommended
    product's click holds ``click <decision>`` (see store.product_rollups)."""
    clicked = click_keys(e) if e.type == "click" else None
    return (clicked[1],) if clicked is not None else ()


def _decision_key(call: str) -> str:
    # Prefixed: a decision's key is a call id, which an event id may equal.
    return f"decision {call}"


def _decision_keys(d: DecisionRecord) -> tuple[str, ...]:
    return (_decision_key(d.key),) if d.key is not None else ()


# One record's keys in its group: (site, at, new, own, shared). ``new`` must be new in
# record_keys, ``own`` held by no record before it in the group, and both ``own`` and
# ``shared`` are held for the records after it; the rows inserted are ``new`` and
# ``shared``. A record's own keys are usually its new ones; not so for a decide call's.
_Keys = tuple[str, int, tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _group_keys(
    events: Sequence[EventRecord], decisions: Sequence[DecisionRecord]
) -> tuple[list[_Keys], int]:
    """Each record's keys, events first, and how many rows the group inserts if every key
    is new and none repeats.

    The records a decide call makes beside its decision (its triggers, the product it
    showed, a refused token: keys ``<call>.<part>``, see retries.trigger_key) are stored
    with that decision, so they need no row of their own: what must be new is the
    decision's key (a retry of the call stores none of them), and their own keys only keep
    a retry that shares their group from storing them twice. One row fewer per trigger,
    and one index page fewer in each commit. Only the server makes such keys: event ids
    and call ids have no dots."""
    calls = {(d.site, d.key) for d in decisions if d.key is not None}
    keys: list[_Keys] = []
    rows = 0
    for e in events:
        call, dot, _ = (e.key or "").rpartition(".")
        if dot and (e.site, call) in calls:
            keys.append((e.site, e.at, (_decision_key(call),), (e.key or "",), ()))
            continue  # its row is the decision's, counted there
        mine, shared = _event_keys(e), _shared_keys(e)
        keys.append((e.site, e.at, mine, mine, shared))
        rows += len(mine) + len(shared)
    for d in decisions:
        mine = _decision_keys(d)
        keys.append((d.site, d.at, mine, mine, ()))
        rows += len(mine)
    return keys, rows


def key_rows(events: Sequence[EventRecord], decisions: Sequence[DecisionRecord]) -> list[Row]:
    """The ``(site, key, at)`` rows of ``record_keys`` the group inserts, each key once,
    sorted (nodes inserting at once take the rows' locks in the same order)."""
    rows: dict[tuple[str, str], int] = {}
    for site, at, new, _, shared in _group_keys(events, decisions)[0]:
        for key in (*new, *shared):
            rows.setdefault((site, key), at)
    return [(site, key, at) for (site, key), at in sorted(rows.items())]


def stored(
    events: Sequence[EventRecord],
    decisions: Sequence[DecisionRecord],
    new: Iterable[tuple[str, str]],
) -> tuple[list[bool], list[bool]]:
    """Which events and decisions the group stores, given the ``(site, key)`` that were new
    in ``record_keys``: a record iff its keys were new and no record before it in the group
    held one of them (as if the group's records were written one after the other). A
    shared key (``_shared_keys``) need not be new, but is held for the records after."""
    fresh = set(new)
    keys, rows = _group_keys(events, decisions)
    if len(fresh) == rows:  # all new, none repeated
        return [True] * len(events), [True] * len(decisions)
    held: set[tuple[str, str]] = set()
    kept = []
    for site, _, needed, own, shared in keys:
        mine = {(site, key) for key in own}
        kept.append({(site, key) for key in needed} <= fresh and not mine & held)
        held.update(mine)
        held.update((site, key) for key in shared)
    return kept[: len(events)], kept[len(events) :]


def exposure_rows(decisions: Iterable[DecisionRecord]) -> list[Row]:
    """The exposures the stored decisions propose, ``(site, rule, visitor, variant, first)``:
    per site, visitor and rule the earliest matched verdict (the control too) of a known
    visitor, sorted; the database keeps the ones it did not have."""
    first: dict[tuple[str, str, str], tuple[int, str]] = {}
    for d in decisions:
        if d.visitor == "-":
            continue
        for v in d.verdicts:
            if v.matched:
                held = first.get((d.site, d.visitor, v.rule))
                if held is None or d.at < held[0]:
                    first[(d.site, d.visitor, v.rule)] = (d.at, v.variant or "")
    return [
        (site, rule, visitor, variant, at)
        for (site, visitor, rule), (at, variant) in sorted(first.items())
    ]


def conversion_rows(events: Iterable[EventRecord], goals: Goals) -> list[Conversion]:
    """What the stored events may convert, ``(site, visitor, rule, at, value, goal)``: a
    ``convert`` its rule, a page event or trigger with a name the rules whose goal it is
    (see :class:`Tally`'s ``attribute`` for which exposures). Only a positive value is
    revenue: the browser claims it, and a negative one would take from a variant's."""
    rows: list[Conversion] = []
    for e in events:
        if e.visitor == "-":
            continue
        if e.type == "convert":
            rules: Iterable[str] = (e.rule,) if e.rule is not None else ()
        elif e.type in ("event", "trigger") and e.name is not None:
            rules = goals.get(e.site, {}).get(e.name, ())
        else:
            continue
        value = e.value if e.value is not None and e.value > 0 else None
        goal = e.type != "convert"
        rows.extend((e.site, e.visitor, rule, e.at, value, goal) for rule in rules)
    return rows


def exposures_of(candidates: Iterable[Conversion]) -> list[Row]:
    """The ``(site, visitor, rule)`` the candidates name, each once, sorted (PostgreSQL
    locks them in that order)."""
    return sorted({(site, visitor, rule) for site, visitor, rule, *_ in candidates})


def goal_rows(goals: Goals) -> list[Row]:
    """The goals as ``(site, name, rule)`` rows (for the backfill)."""
    return sorted(
        (site, name, rule) for site, names in goals.items() for name, rules in names.items()
        for rule in rules
    )  # fmt: skip


class Tally:
    """The deltas one group adds to ``rollups``, per (site, rule, variant, day)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str, int], list[float]] = {}

    def add(self, site: str, rule: str, variant: str, at: int, column: str, by: float = 1) -> None:
        """Add ``by`` to ``column`` on the day of ``at`` (epoch ms)."""
        key = (site, rule, variant, _day(at))
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0] * len(COUNTS)
        counts[_COLUMN[column]] += by

    def activity(self, events: Iterable[EventRecord], decisions: Iterable[DecisionRecord]) -> None:
        """The stored records' activity, on the day it happened: decisions per matched
        verdict; impressions, clicks and dismissals of a rule's variant."""
        for d in decisions:
            for v in d.verdicts:
                if v.matched:
                    self.add(d.site, v.rule, v.variant or "", d.at, "decisions")
        for e in events:
            column = _ACTIVITY.get(e.type)
            if column is not None and e.rule is not None and e.variant is not None:
                if column == "clicks" and click_keys(e) is not None:
                    continue  # counted once per decision by store.product_rollups
                self.add(e.site, e.rule, e.variant, e.at, column)

    def exposed(self, rows: Iterable[Sequence[Any]]) -> None:
        """The new exposures, ``(site, rule, variant, first)``: a visitor each."""
        for site, rule, variant, first in rows:
            self.add(site, rule, variant, first, "visitors")

    def attribute(
        self, exposures: Iterable[Sequence[Any]], candidates: Iterable[Conversion]
    ) -> list[Row]:
        """Convert the ``exposures`` read (``site, visitor, rule, variant, first, converted,
        revenue``) by the ``candidates`` after their first (a ``convert`` at it too: a goal
        event at it came in the call that exposed the visitor): an unconverted one at the
        earliest (a conversion), and each by the sum of the values (its revenue, and
        revenue_sq by new² - old², so the days' sum is the sum of each visitor's square).
        Returns the changed rows, ``(converted, revenue, site, visitor, rule)``."""
        by: dict[tuple[str, str, str], list[tuple[int, float | None, bool]]] = {}
        for site, visitor, rule, at, value, goal in candidates:
            by.setdefault((site, visitor, rule), []).append((at, value, goal))
        changed: list[Row] = []
        for site, visitor, rule, variant, first, converted, revenue in exposures:
            after = [
                (at, value)
                for at, value, goal in by.get((site, visitor, rule), ())
                if at > first or (at == first and not goal)
            ]
            grew = sum(value for _, value in after if value is not None)
            if after and converted is None:
                converted = min(at for at, _ in after)
                self.add(site, rule, variant, first, "conversions")
            elif not grew:
                continue
            if grew:
                self.add(site, rule, variant, first, "revenue", grew)
                self.add(site, rule, variant, first, "revenue_sq", 2 * revenue * grew + grew * grew)
            changed.append((converted, revenue + grew, site, visitor, rule))
        return changed

    def rows(self) -> list[Row]:
        """``(site, rule, variant, day, *COUNTS)`` per key, sorted (a fixed lock order)."""
        return [
            (*key, *(int(c) for c in counts[:_INTEGERS]), *map(float, counts[_INTEGERS:]))
            for key, counts in sorted(self._counts.items())
        ]


def _j(i: int) -> str:
    """Column ``i`` of a SQLite JSON row: json_extract, not ``->>`` (SQLite 3.38), so the
    SQLite that RETURNING needs (3.35) is enough."""
    return f"json_extract(x.value, '$[{i}]')"


# The statements each engine runs, one per step per group. SQLite takes the rows as one JSON
# array (``json_each``), PostgreSQL as one array per column (``unnest``): one statement, one
# round trip, however many rows. (``WHERE true``: SQLite's parser needs it between a SELECT
# and ON CONFLICT.) Each returns what it changed, which the Tally counts.
KEYS_SQLITE = (
    "INSERT INTO record_keys (site, key, at)"
    f" SELECT {_j(0)}, {_j(1)}, {_j(2)} FROM json_each(?) AS x"
    " WHERE true ON CONFLICT DO NOTHING RETURNING site, key"
)
KEYS_POSTGRES = (
    "INSERT INTO record_keys (site, key, at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])"
    " ON CONFLICT DO NOTHING RETURNING site, key"
)
EXPOSE_SQLITE = (
    "INSERT INTO exposures (site, rule, visitor, variant, first)"
    f" SELECT {_j(0)}, {_j(1)}, {_j(2)}, {_j(3)}, {_j(4)} FROM json_each(?) AS x"
    " WHERE true ON CONFLICT DO NOTHING RETURNING site, rule, variant, first"
)
EXPOSE_POSTGRES = (
    "INSERT INTO exposures (site, rule, visitor, variant, first)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
    " ON CONFLICT DO NOTHING RETURNING site, rule, variant, first"
)
# Conversions: the group reads the exposures its candidates name (PostgreSQL locks them, for
# nodes converting the same visitor at once), works out in Python what changes (see
# Tally.attribute), and writes back only the rows that changed, by primary key.
EXPOSED_SQLITE = (
    "SELECT e.site, e.visitor, e.rule, e.variant, e.first, e.converted, e.revenue"
    " FROM json_each(?) AS x CROSS JOIN exposures AS e"
    f" WHERE e.site = {_j(0)} AND e.visitor = {_j(1)} AND e.rule = {_j(2)}"
)
EXPOSED_POSTGRES = (
    "SELECT e.site, e.visitor, e.rule, e.variant, e.first, e.converted, e.revenue"
    " FROM unnest($1::text[], $2::text[], $3::text[]) AS x(site, visitor, rule)"
    " JOIN exposures AS e ON e.site = x.site AND e.visitor = x.visitor AND e.rule = x.rule"
    " ORDER BY e.site, e.visitor, e.rule FOR UPDATE OF e"
)
ATTRIBUTE = (
    "UPDATE exposures SET converted = ?, revenue = ? WHERE site = ? AND visitor = ? AND rule = ?"
)
ATTRIBUTE_POSTGRES = (
    "UPDATE exposures AS e SET converted = x.converted, revenue = x.revenue"
    " FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::text[])"
    " AS x(converted, revenue, site, visitor, rule)"
    " WHERE e.site = x.site AND e.visitor = x.visitor AND e.rule = x.rule"
)
UPSERT_ROLLUPS_POSTGRES = UPSERT_ROLLUPS.split(" VALUES ")[0] + (
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[],"
    + "".join(f" ${i}::bigint[]," for i in range(5, 5 + _INTEGERS))
    + f" ${5 + _INTEGERS}::float8[], ${6 + _INTEGERS}::float8[])"
    + " ON CONFLICT"
    + UPSERT_ROLLUPS.split(" ON CONFLICT")[1]
)
# Reads, both engines (``?`` numbered for PostgreSQL); sums cast back to integers.
RESULTS = (
    "SELECT variant, "
    + ", ".join(
        f"CAST(SUM({c}) AS BIGINT)" if i < _INTEGERS else f"SUM({c})" for i, c in enumerate(COUNTS)
    )
    + " FROM rollups WHERE site = ? AND rule = ? GROUP BY variant ORDER BY variant"
)
REPORT = (
    f"SELECT day, variant, {', '.join(COUNTS)} FROM rollups"
    " WHERE site = ? AND rule = ? AND day >= ? AND day < ? ORDER BY day, variant"
)


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column, for PostgreSQL's ``unnest``."""
    return [[row[i] for row in rows] for i in range(width)]


def variant_counts(row: Sequence[Any]) -> VariantCounts:
    """A row of RESULTS."""
    counts = dict(zip(COUNTS, row[1:], strict=True))
    return VariantCounts(variant=row[0], **counts)


def day_counts(row: Sequence[Any]) -> DayCounts:
    """A row of REPORT."""
    return DayCounts(*row)
