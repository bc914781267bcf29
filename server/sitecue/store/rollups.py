"""Rollups: per site, rule, variant and UTC day, the counts reports read, kept by the writer
in the same transaction as the records, so a report reads a few rows however large the logs.

The engines run the statements; this module holds what both share: which records a group
stores (idempotency through ``record_keys``), which exposures and conversions it proposes,
and the deltas it adds to ``rollups``, summed in Python so each group ends with one upsert.

Attribution: a visitor is exposed to a rule at their first matched verdict (the control
too), kept in ``exposures`` (one row per site, rule and visitor: distinct visitors are
exact). Visitors, conversions and revenue count on that first day (the cohort's), so a day's
conversion rate is of its new visitors; decisions, impressions, clicks, dismissals and
submissions count on the day they happen. A goal reached before the exposure does not count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from .base import DecisionRecord, EventRecord, Row, VariantCounts

__all__ = [
    "COUNTS",
    "DAY_MS",
    "UPSERT_ROLLUPS",
    "DayCounts",
    "Goals",
    "Tally",
    "conversion_rows",
    "exposure_rows",
    "goal_rows",
    "key_rows",
    "stored",
]

# site -> goal event name -> the ids of the rules whose ``goal`` it is.
Goals = Mapping[str, Mapping[str, tuple[str, ...]]]
DAY_MS = 86_400_000  # a day number is epoch ms // DAY_MS (UTC)
# What a stored event may convert: (site, visitor, rule, at, value).
Conversion = tuple[str, str, str, int, float | None]

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
        return (*mine, f"{e.type} {e.decision}")
    return mine


def _decision_keys(d: DecisionRecord) -> tuple[str, ...]:
    # Prefixed: a decision's key is a call id, which an event id may equal.
    return (f"decision {d.key}",) if d.key is not None else ()


def key_rows(events: Sequence[EventRecord], decisions: Sequence[DecisionRecord]) -> list[Row]:
    """The ``(site, key, at)`` rows of ``record_keys`` the group inserts, each key once,
    sorted (nodes inserting at once take the rows' locks in the same order)."""
    rows: dict[tuple[str, str], int] = {}
    for record, keys in [(e, _event_keys(e)) for e in events] + [
        (d, _decision_keys(d)) for d in decisions
    ]:
        for key in keys:
            rows.setdefault((record.site, key), record.at)
    return [(site, key, at) for (site, key), at in sorted(rows.items())]


def stored(
    events: Sequence[EventRecord],
    decisions: Sequence[DecisionRecord],
    new: Iterable[tuple[str, str]],
) -> tuple[list[bool], list[bool]]:
    """Which events and decisions the group stores, given the ``(site, key)`` that were new
    in ``record_keys``: a record iff all its keys were new and no record before it in the
    group had one of them (as if the group's records were written one after the other)."""
    fresh = set(new)
    taken: set[tuple[str, str]] = set()

    def keep(site: str, keys: tuple[str, ...]) -> bool:
        mine = {(site, key) for key in keys}
        ok = mine <= fresh and not mine & taken
        taken.update(mine)
        return ok

    kept_events = [keep(e.site, _event_keys(e)) for e in events]
    return kept_events, [keep(d.site, _decision_keys(d)) for d in decisions]


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
    """What the stored events may convert, ``(site, visitor, rule, at, value)``: a
    ``convert`` its rule, a page event or trigger with a name the rules whose goal it is.
    The database converts an exposure whose first is at or before ``at``."""
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
        rows.extend((e.site, e.visitor, rule, e.at, e.value) for rule in rules)
    return rows


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
                self.add(e.site, e.rule, e.variant, e.at, column)

    def exposed(self, rows: Iterable[Sequence[Any]]) -> None:
        """The new exposures, ``(site, rule, variant, first)``: a visitor each."""
        for site, rule, variant, first in rows:
            self.add(site, rule, variant, first, "visitors")

    def converted(self, rows: Iterable[Sequence[Any]]) -> None:
        """The exposures converted now, ``(site, rule, variant, first)``."""
        for site, rule, variant, first in rows:
            self.add(site, rule, variant, first, "conversions")

    def revenue(self, rows: Iterable[Sequence[Any]], candidates: Iterable[Conversion]) -> None:
        """The exposures whose revenue grew, ``(site, visitor, rule, variant, first,
        revenue)`` with the new revenue: each grew by the values of its candidates
        (``conversion_rows``) at or after its first, so revenue_sq grows by new² - old²."""
        values: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
        for site, visitor, rule, at, value in candidates:
            if value is not None:
                values.setdefault((site, visitor, rule), []).append((at, value))
        for site, visitor, rule, variant, first, revenue in rows:
            grew = sum(v for at, v in values.get((site, visitor, rule), ()) if at >= first)
            old = revenue - grew
            self.add(site, rule, variant, first, "revenue", grew)
            self.add(site, rule, variant, first, "revenue_sq", 2 * old * grew + grew * grew)

    def rows(self) -> list[Row]:
        """``(site, rule, variant, day, *COUNTS)`` per key, sorted (a fixed lock order)."""
        return [
            (*key, *(int(c) for c in counts[:_INTEGERS]), *map(float, counts[_INTEGERS:]))
            for key, counts in sorted(self._counts.items())
        ]


# The statements each engine runs, one per step per group. SQLite takes the rows as one JSON
# array (``json_each``), PostgreSQL as one array per column (``unnest``): one statement, one
# round trip, however many rows. (``WHERE true``: SQLite's parser needs it between a SELECT
# and ON CONFLICT.) Each returns what it changed, which the Tally counts.
_J = "x.value ->> "  # a column of a SQLite JSON row
KEYS_SQLITE = (
    f"INSERT INTO record_keys (site, key, at) SELECT {_J}0, {_J}1, {_J}2 FROM json_each(?) AS x"
    " WHERE true ON CONFLICT DO NOTHING RETURNING site, key"
)
KEYS_POSTGRES = (
    "INSERT INTO record_keys (site, key, at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])"
    " ON CONFLICT DO NOTHING RETURNING site, key"
)
EXPOSE_SQLITE = (
    "INSERT INTO exposures (site, rule, visitor, variant, first)"
    f" SELECT {_J}0, {_J}1, {_J}2, {_J}3, {_J}4 FROM json_each(?) AS x"
    " WHERE true ON CONFLICT DO NOTHING RETURNING site, rule, variant, first"
)
EXPOSE_POSTGRES = (
    "INSERT INTO exposures (site, rule, visitor, variant, first)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
    " ON CONFLICT DO NOTHING RETURNING site, rule, variant, first"
)
# An exposure converts at the earliest candidate at or after its first exposure, once.
# Several candidates of one exposure are folded first: an UPDATE changes a row only once.
_CANDIDATES_SQLITE = (
    f"SELECT {_J}0 AS site, {_J}1 AS visitor, {_J}2 AS rule, {_J}3 AS at, {_J}4 AS value"
    " FROM json_each(?) AS x"
)
_CANDIDATES_POSTGRES = (
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::float8[])"
    " AS x(site, visitor, rule, at, value)"
)
_CONVERT = """
UPDATE exposures AS e SET converted = c.at FROM (
    SELECT x.site, x.visitor, x.rule, MIN(x.at) AS at FROM ({candidates}) AS x
    JOIN exposures AS f ON f.site = x.site AND f.visitor = x.visitor AND f.rule = x.rule
    WHERE f.converted IS NULL AND f.first <= x.at
    GROUP BY x.site, x.visitor, x.rule
) AS c WHERE e.site = c.site AND e.visitor = c.visitor AND e.rule = c.rule
RETURNING e.site, e.rule, e.variant, e.first
"""
_REVENUE = """
UPDATE exposures AS e SET revenue = e.revenue + c.value FROM (
    SELECT x.site, x.visitor, x.rule, SUM(x.value) AS value FROM ({candidates}) AS x
    JOIN exposures AS f ON f.site = x.site AND f.visitor = x.visitor AND f.rule = x.rule
    WHERE f.first <= x.at AND x.value IS NOT NULL
    GROUP BY x.site, x.visitor, x.rule
) AS c WHERE e.site = c.site AND e.visitor = c.visitor AND e.rule = c.rule
RETURNING e.site, e.visitor, e.rule, e.variant, e.first, e.revenue
"""


def _sqlite(sql: str) -> str:
    """SQLite's RETURNING names the updated table's columns bare."""
    head, returning = sql.split("RETURNING ")
    return head.format(candidates=_CANDIDATES_SQLITE) + "RETURNING " + returning.replace("e.", "")


CONVERT_SQLITE = _sqlite(_CONVERT)
CONVERT_POSTGRES = _CONVERT.format(candidates=_CANDIDATES_POSTGRES)
REVENUE_SQLITE = _sqlite(_REVENUE)
REVENUE_POSTGRES = _REVENUE.format(candidates=_CANDIDATES_POSTGRES)
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
