"""The migration that adds the rollups (see :mod:`sitecue.store.rollups`) to a store, on
each engine: the tables, and exposures and rollups rebuilt from the logs already kept,
counted as the writer would have counted them as they came, in one transaction.

As the writer: an exposure is a known visitor's earliest matched verdict of a rule (the
control too); feedback on a decision counts once per type (the first stored); an exposed
visitor converts by a ``convert`` of the rule or by one of the rule's goal events (the
``goals`` given, as configured now) at or after the first exposure, whose values are the
visitor's revenue. Idempotency moves to ``record_keys``: the old unique indexes go (a
PostgreSQL partitioned table could not keep them).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

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
    SELECT d.site AS site, v.value ->> 'rule' AS rule,
           COALESCE(v.value ->> 'variant', '') AS variant, d.visitor AS visitor, d.at AS at,
           d.id AS id
    FROM decisions AS d, json_each(d.verdicts) AS v WHERE v.value ->> 'matched' = 1
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
SELECT site, visitor, rule, at, value FROM kept
WHERE type = 'convert' AND rule IS NOT NULL AND visitor <> '-'
UNION ALL
SELECT k.site, k.visitor, g.rule, k.at, k.value
FROM kept AS k JOIN goal_rules AS g ON g.site = k.site AND g.name = k.name
WHERE k.type IN ('event', 'trigger') AND k.visitor <> '-';
CREATE INDEX converting_by ON converting (site, visitor, rule, at);
UPDATE exposures SET
    converted = (
        SELECT MIN(c.at) FROM converting AS c WHERE c.site = exposures.site
          AND c.visitor = exposures.visitor AND c.rule = exposures.rule
          AND c.at >= exposures.first),
    revenue = COALESCE((
        SELECT SUM(c.value) FROM converting AS c WHERE c.site = exposures.site
          AND c.visitor = exposures.visitor AND c.rule = exposures.rule
          AND c.at >= exposures.first), 0);
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


def sqlite_rollups(db: sqlite3.Connection, goals: Goals) -> None:
    """The migration on SQLite, inside the migration's transaction."""
    tables = _TABLES.format(bigint="INTEGER", real="REAL", without_rowid=" WITHOUT ROWID")
    for statement in tables.split(";"):
        db.execute(statement)
    db.executemany(_INSERT_GOAL.format("?, ?, ?"), goal_rows(goals))
    for statement in _BACKFILL.format(verdicts=_VERDICTS_SQLITE).split(";"):
        db.execute(statement)


async def postgres_rollups(db: asyncpg.Connection, goals: Goals) -> None:
    """The migration on PostgreSQL, inside the migration's transaction."""
    await db.execute(
        _TABLES.format(bigint="BIGINT", real="DOUBLE PRECISION", without_rowid="")
        # A temporary table of the transaction only: the pool's connection outlives it.
        .replace("(site TEXT NOT NULL, name TEXT NOT NULL, rule TEXT NOT NULL)",
                 "(site TEXT NOT NULL, name TEXT NOT NULL, rule TEXT NOT NULL) ON COMMIT DROP")
    )  # fmt: skip
    await db.executemany(_INSERT_GOAL.format("$1, $2, $3"), goal_rows(goals))
    await db.execute(_BACKFILL.format(verdicts=_VERDICTS_POSTGRES))
