"""The migration that adds the rollups (see :mod:`sitecue.store.rollups`) to a store, on
each engine: the tables, and exposures and rollups rebuilt from the logs already kept,
counted as the writer would have counted them as they came, in one transaction.

As the writer: an exposure is a known visitor's earliest matched verdict of a rule (the
control too); feedback on a decision counts once per type (the first stored); an exposed
visitor converts by a ``convert`` of the rule at or after the first exposure, or by one of
the rule's goal events (the ``goals`` given, as configured now) strictly after it (one at it
came in the call that exposed them), whose positive values are the visitor's revenue.
Idempotency moves to ``record_keys``: the old unique indexes go (a PostgreSQL partitioned
table could not keep them), and the keys of the records of the last ``KEYS_KEEP_MS`` (what
retention keeps) are made from their ``idempotency_key`` as the writer makes them, so a retry
that spans the upgrade is not stored twice.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from ..errors import StoreUnavailable
from .retention import KEYS_KEEP_MS
from .rollups import DAY_MS, FEEDBACK, Goals, goal_rows

if TYPE_CHECKING:
    import asyncpg

__all__ = ["postgres_rollups", "sqlite_rollups"]

_TABLES = """
CREATE TABLE record_keys (
    site TEXT NOT NULL, key TEXT NOT NULL, at {bigint} NOT NULL,
    PRIMARY KEY (site, key)
){without_rowid};
CREATE INDEX record_keys_at ON record_keys (at);
CREATE TABLE exposures (
    site TEXT NOT NULL, rule TEXT NOT NULL, visitor TEXT NOT NULL, variant TEXT NOT NULL,
    first {bigint} NOT NULL, converted {bigint}, revenue {real} NOT NULL DEFAULT 0,
    PRIMARY KEY (site, visitor, rule)
){without_rowid};
CREATE TABLE rollups (
    site TEXT NOT NULL, rule TEXT NOT NULL, variant TEXT NOT NULL, day INTEGER NOT NULL,
    decisions {bigint} NOT NULL DEFAULT 0, visitors {bigint} NOT NULL DEFAULT 0,
    impressions {bigint} NOT NULL DEFAULT 0, clicks {bigint} NOT NULL DEFAULT 0,
    dismissals {bigint} NOT NULL DEFAULT 0, submissions {bigint} NOT NULL DEFAULT 0,
    conversions {bigint} NOT NULL DEFAULT 0,
    revenue {real} NOT NULL DEFAULT 0, revenue_sq {real} NOT NULL DEFAULT 0,
    PRIMARY KEY (site, rule, variant, day)
){without_rowid};
DROP INDEX events_once;
DROP INDEX decisions_once;
CREATE TEMP TABLE goal_rules (site TEXT NOT NULL, name TEXT NOT NULL, rule TEXT NOT NULL)
"""
_FEEDBACK = ", ".join(f"'{t}'" for t in FEEDBACK)

# Each engine's spelling of: a decision's matched verdicts, (site, rule, variant, visitor,
# at, id) per verdict; and a boolean as 0 or 1.
_VERDICTS_SQLITE = """
    SELECT d.site AS site, json_extract(v.value, '$.rule') AS rule,
           COALESCE(json_extract(v.value, '$.variant'), '') AS variant,
           d.visitor AS visitor, d.at AS at, d.id AS id
    FROM decisions AS d, json_each(d.verdicts) AS v
    WHERE json_extract(v.value, '$.matched') = 1
"""
_VERDICTS_POSTGRES = """
    SELECT d.site AS site, v ->> 'rule' AS rule, COALESCE(v ->> 'variant', '') AS variant,
           d.visitor AS visitor, d.at AS at, d.id AS id
    FROM decisions AS d, jsonb_array_elements(d.verdicts) AS v
    WHERE (v ->> 'matched')::boolean
"""

_BACKFILL = f"""
INSERT INTO exposures (site, rule, visitor, variant, first)
SELECT site, rule, visitor, variant, at FROM (
    SELECT m.*, ROW_NUMBER() OVER (PARTITION BY site, visitor, rule ORDER BY at, id) AS n
    FROM ({{verdicts}}) AS m WHERE visitor <> '-'
) AS firsts WHERE n = 1;
CREATE TEMP TABLE kept AS
SELECT site, visitor, type, at, name, rule, variant, value FROM (
    SELECT e.*, ROW_NUMBER() OVER (PARTITION BY site, type, decision ORDER BY id) AS n
    FROM events AS e WHERE type IN ({_FEEDBACK}) AND decision IS NOT NULL
) AS once WHERE n = 1
UNION ALL
SELECT site, visitor, type, at, name, rule, variant, value FROM events
WHERE NOT (type IN ({_FEEDBACK}) AND decision IS NOT NULL);
CREATE TEMP TABLE converting AS
SELECT site, visitor, rule, at, value, 0 AS goal FROM kept
WHERE type = 'convert' AND rule IS NOT NULL AND visitor <> '-'
UNION ALL
SELECT k.site, k.visitor, g.rule, k.at, k.value, 1
FROM kept AS k JOIN goal_rules AS g ON g.site = k.site AND g.name = k.name
WHERE k.type IN ('event', 'trigger') AND k.visitor <> '-';
CREATE INDEX converting_by ON converting (site, visitor, rule, at);
UPDATE exposures SET
    converted = (
        SELECT MIN(c.at) FROM converting AS c WHERE c.site = exposures.site
          AND c.visitor = exposures.visitor AND c.rule = exposures.rule
          AND (c.at > exposures.first OR (c.at = exposures.first AND c.goal = 0))),
    revenue = COALESCE((
        SELECT SUM(c.value) FROM converting AS c WHERE c.site = exposures.site
          AND c.visitor = exposures.visitor AND c.rule = exposures.rule
          AND (c.at > exposures.first OR (c.at = exposures.first AND c.goal = 0))
          AND c.value > 0), 0);
INSERT INTO rollups (site, rule, variant, day, decisions, visitors, impressions, clicks,
                     dismissals, submissions, conversions, revenue, revenue_sq)
SELECT site, rule, variant, day, SUM(decisions), SUM(visitors), SUM(impressions), SUM(clicks),
       SUM(dismissals), SUM(submissions), SUM(conversions), SUM(revenue), SUM(revenue_sq)
FROM (
    SELECT site, rule, variant, at / {DAY_MS} AS day, 1 AS decisions, 0 AS visitors,
           0 AS impressions, 0 AS clicks, 0 AS dismissals, 0 AS submissions,
           0 AS conversions, 0.0 AS revenue, 0.0 AS revenue_sq
    FROM ({{verdicts}}) AS m
    UNION ALL
    SELECT site, rule, variant, first / {DAY_MS}, 0, 1, 0, 0, 0, 0,
           CASE WHEN converted IS NULL THEN 0 ELSE 1 END, revenue, revenue * revenue
    FROM exposures
    UNION ALL
    SELECT site, rule, variant, at / {DAY_MS}, 0, 0,
           CASE WHEN type = 'impression' THEN 1 ELSE 0 END,
           CASE WHEN type = 'click' THEN 1 ELSE 0 END,
           CASE WHEN type = 'dismiss' THEN 1 ELSE 0 END, 0, 0, 0.0, 0.0
    FROM kept
    WHERE type IN ('impression', 'click', 'dismiss') AND rule IS NOT NULL
      AND variant IS NOT NULL
    UNION ALL
    SELECT site, rule, variant, at / {DAY_MS}, 0, 0, 0, 0, 0, 1, 0, 0.0, 0.0 FROM submissions
) AS deltas GROUP BY site, rule, variant, day;
DROP TABLE converting;
DROP TABLE kept;
DROP TABLE goal_rules
"""
_INSERT_GOAL = "INSERT INTO goal_rules (site, name, rule) VALUES ({})"

# The keys the writer makes (rollups.key_rows) of the records at or after a cutoff (``?``):
# an event's own, a decision's prefixed, and feedback's per decision; each once, at its
# earliest record.
_KEYS = f"""
INSERT INTO record_keys (site, key, at)
SELECT site, key, MIN(at) FROM (
    SELECT site, idempotency_key AS key, at FROM events
    WHERE idempotency_key IS NOT NULL AND at >= ?
    UNION ALL
    SELECT site, 'decision ' || idempotency_key, at FROM decisions
    WHERE idempotency_key IS NOT NULL AND at >= ?
    UNION ALL
    SELECT site, type || ' ' || decision, at FROM events
    WHERE type IN ({_FEEDBACK}) AND decision IS NOT NULL AND at >= ?
) AS made GROUP BY site, key
"""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _keys_since() -> int:
    """The cutoff of the keys made (epoch ms): retention's, from now."""
    return _now_ms() - KEYS_KEEP_MS


# Goal events the backfill would credit to rules by the goals: without them it cannot start.
_GOAL_EVENTS = "SELECT EXISTS (SELECT 1 FROM events WHERE type IN ('event', 'trigger'))"


def _needs_goals() -> StoreUnavailable:
    return StoreUnavailable(
        "cannot add the rollups to this database yet: its goal events are credited to rules"
        " by the sites' goals, once, so the first start after the upgrade needs a config"
        " that loads (see sitecue check)"
    )


def sqlite_rollups(db: sqlite3.Connection, goals: Goals | None) -> None:
    """The migration on SQLite, inside the migration's transaction. ``goals`` None: not
    known (the config did not load), refused when the logs hold goal events to credit."""
    if goals is None and db.execute(_GOAL_EVENTS).fetchone()[0]:
        raise _needs_goals()
    tables = _TABLES.format(bigint="INTEGER", real="REAL", without_rowid=" WITHOUT ROWID")
    for statement in tables.split(";"):
        db.execute(statement)
    db.executemany(_INSERT_GOAL.format("?, ?, ?"), goal_rows(goals or {}))
    for statement in _BACKFILL.format(verdicts=_VERDICTS_SQLITE).split(";"):
        db.execute(statement)
    db.execute(_KEYS, (_keys_since(),) * 3)


async def postgres_rollups(db: asyncpg.Connection, goals: Goals | None) -> None:
    """The migration on PostgreSQL, inside the migration's transaction (``goals`` as for
    SQLite)."""
    if goals is None and await db.fetchval(_GOAL_EVENTS):
        raise _needs_goals()
    await db.execute(
        _TABLES.format(bigint="BIGINT", real="DOUBLE PRECISION", without_rowid="")
        # A temporary table of the transaction only: the pool's connection outlives it.
        .replace("(site TEXT NOT NULL, name TEXT NOT NULL, rule TEXT NOT NULL)",
                 "(site TEXT NOT NULL, name TEXT NOT NULL, rule TEXT NOT NULL) ON COMMIT DROP")
    )  # fmt: skip
    await db.executemany(_INSERT_GOAL.format("$1, $2, $3"), goal_rows(goals or {}))
    await db.execute(_BACKFILL.format(verdicts=_VERDICTS_POSTGRES))
    since = _keys_since()
    await db.execute(_KEYS.replace("?", "$1"), since)
