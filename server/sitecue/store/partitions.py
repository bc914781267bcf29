"""PostgreSQL's raw logs, partitioned by day: ``events`` and ``decisions`` are partitioned by
RANGE on ``at``, one partition per UTC day (``events_d20261126``), so that a day whose every
row has expired goes with one DROP TABLE instead of a million deletes and the vacuuming
after them.

A DEFAULT partition catches any row whose day has no partition yet (the clock far ahead,
a record spooled through a long outage, a day dropped before): an insert is never refused.
Retention's rounds (every node runs them; one at a time does this upkeep, under an
advisory lock) keep the partitions of the coming days made ahead, move what the default
caught into day partitions of its own, and drop the days nobody needs.

Each change to the partitions waits for its locks at most LOCK_WAIT_MS (a lock_timeout),
or gives up until the next round: a DROP needs the parent table to itself for a moment,
and inserts queue behind it while it waits. Creating a partition does not stop inserts
(CREATE TABLE, then ATTACH PARTITION, which takes only a SHARE UPDATE EXCLUSIVE lock on
the parent; the default partition is locked while it is checked, and it is kept empty).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import asyncpg

from .retention import Cutoffs, Rotation, Table, id_bound

__all__ = ["AHEAD_DAYS", "DAY_MS", "LOCK_WAIT_MS", "MIGRATION", "expire", "rotate"]

log = logging.getLogger("sitecue")

DAY_MS = 86_400_000
AHEAD_DAYS = 3  # partitions exist for today and this many days after it
LOCK_WAIT_MS = 20
_TRIES = 5  # a busy table's partition change is tried this many times a round
_T = TypeVar("_T")
_UPKEEP_LOCK = 0x5C11  # the advisory lock one node holds while it changes partitions
_TABLES: tuple[Table, ...] = ("decisions", "events")

# Appended after the rollups' migration (which moved idempotency into record_keys: a
# partitioned table can have no unique index without its partition key). The rows move
# into their days in this one transaction; the indexes are built after, on each partition.
# A decision's id stays unique with its ``at`` (the partition key), which the id encodes:
# a record written twice fails its group, as on SQLite (its primary key).
MIGRATION = f"""
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE decisions RENAME TO decisions_unpartitioned;
CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (at);
CREATE TABLE decisions (LIKE decisions_unpartitioned INCLUDING DEFAULTS)
    PARTITION BY RANGE (at);
DO $$
DECLARE
    t text;
    d bigint;
    today bigint := floor(extract(epoch FROM now()) / 86400);
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'decisions'] LOOP
        FOR d IN EXECUTE format(
            'SELECT DISTINCT floor(at / {DAY_MS}.0)::bigint FROM %I'
            ' UNION SELECT generate_series($1, $1 + {AHEAD_DAYS})', t || '_unpartitioned'
        ) USING today LOOP
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                t || '_d' || to_char(to_timestamp(d * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD'),
                t, d * {DAY_MS}, (d + 1) * {DAY_MS}
            );
        END LOOP;
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t);
        EXECUTE format('INSERT INTO %I SELECT * FROM %I', t, t || '_unpartitioned');
    END LOOP;
END $$;
ALTER SEQUENCE events_id_seq OWNED BY events.id;
DROP TABLE events_unpartitioned;
DROP TABLE decisions_unpartitioned;
CREATE INDEX events_visitor ON events (site, visitor, at);
CREATE INDEX events_expiry ON events (site, at);
CREATE UNIQUE INDEX decisions_id ON decisions (site, id, at);
CREATE INDEX decisions_visitor ON decisions (site, visitor, id);
"""

_LOCK_WAIT = f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'"
_BOUNDS = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")
_PARTITIONS = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass
"""


def _name(table: Table, day: int) -> str:
    return f"{table}_d{datetime.fromtimestamp(day * 86_400, UTC):%Y%m%d}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _partitions(db: asyncpg.Connection, table: Table) -> list[tuple[str, int, int]]:
    """The table's range partitions as (name, from, to), oldest first (not the default)."""
    found = []
    for name, bound in await db.fetch(_PARTITIONS, table):
        if m := _BOUNDS.search(bound):
            found.append((str(name), int(m[1]), int(m[2])))
    return sorted(found, key=lambda p: p[1])


async def _sites(db: asyncpg.Connection, partition: str) -> set[str]:
    """The sites with rows in the partition: one index probe per site (a loose scan of an
    index that starts with the site), however many rows each has."""
    p = _ident(partition)
    rows = await db.fetch(
        f"WITH RECURSIVE s(site) AS ((SELECT site FROM {p} ORDER BY site LIMIT 1) UNION ALL"
        f" SELECT (SELECT site FROM {p} WHERE site > s.site ORDER BY site LIMIT 1) FROM s"
        " WHERE s.site IS NOT NULL) SELECT site FROM s WHERE site IS NOT NULL"
    )
    return {row[0] for row in rows}


def _droppable(sites: set[str], to: int, keep: Mapping[str, int]) -> bool:
    """Whether no row of a partition ending at ``to`` is still kept: each site in it is
    configured and past its cutoff there (an empty one: past every site's)."""
    if not sites:
        return bool(keep) and to <= min(keep.values())
    return all(site in keep and to <= keep[site] for site in sites)


async def _create(db: asyncpg.Connection, table: Table, day: int) -> int:
    """Make the day's partition, moving into it what the default partition caught of that
    day; how many rows moved."""
    name, lo, hi = _ident(_name(table, day)), day * DAY_MS, (day + 1) * DAY_MS
    async with db.transaction():
        await db.execute(_LOCK_WAIT)
        # No row of the day may reach the default between the move and the attach (which
        # checks the default for them): inserts routed there wait for this transaction.
        await db.execute(f"LOCK TABLE {table}_default IN SHARE MODE")
        await db.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
        status: str = await db.execute(
            f"WITH moved AS (DELETE FROM {table}_default WHERE at >= {lo} AND at < {hi}"
            f" RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
        await db.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})"
        )
    return int(status.split()[-1])


async def _drop(db: asyncpg.Connection, partition: str, to: int, keep: Mapping[str, int]) -> bool:
    """Drop the partition if, once nothing can be inserted into it, it still holds only
    expired rows."""
    async with db.transaction():
        await db.execute(_LOCK_WAIT)
        await db.execute(f"LOCK TABLE {_ident(partition)} IN ACCESS EXCLUSIVE MODE")
        if not _droppable(await _sites(db, partition), to, keep):
            return False
        await db.execute(f"DROP TABLE {_ident(partition)}")
    return True


async def _upkeep(
    db: asyncpg.Connection, table: Table, now: int, keep: Mapping[str, int]
) -> Rotation:
    created: list[str] = []
    dropped: list[str] = []
    moved = 0
    parts = await _partitions(db, table)

    def covered(day: int) -> bool:
        lo, hi = day * DAY_MS, (day + 1) * DAY_MS
        return any(a < hi and lo < b for _, a, b in parts)

    floor = min(keep.values(), default=None)
    caught = await db.fetch(f"SELECT DISTINCT floor(at / {DAY_MS}.0)::bigint FROM {table}_default")
    today = now // DAY_MS
    days = {*range(today, today + AHEAD_DAYS + 1)}
    # What the default caught of a day nobody keeps any more goes by expire() instead.
    days |= {int(d) for (d,) in caught if floor is None or (int(d) + 1) * DAY_MS > floor}
    for day in sorted(days):
        if covered(day):
            continue
        made = await _patiently(partial(_create, db, table, day))
        if made is None:
            log.info("retention: %s busy; its partition for day %d waits", table, day)
            continue
        moved += made
        created.append(_name(table, day))
    for name, _, hi in parts:
        if hi > now or not _droppable(await _sites(db, name), hi, keep):
            continue
        gone = await _patiently(partial(_drop, db, name, hi, keep))
        if gone is None:
            log.info("retention: %s busy; dropping %s waits", table, name)
        elif gone:
            dropped.append(name)
    return Rotation(created, dropped, moved)


async def _patiently(change: Callable[[], Awaitable[_T]]) -> _T | None:
    """The change's result, tried again a few times (a moment apart) while it cannot get
    its locks within LOCK_WAIT_MS; None if it never did (the next round tries again)."""
    for attempt in range(_TRIES):
        try:
            return await change()
        except asyncpg.LockNotAvailableError:
            await asyncio.sleep(0.05 * (attempt + 1))
    return None


async def rotate(pool: asyncpg.Pool, now: int, cutoffs: Mapping[str, Cutoffs]) -> Rotation:
    """One round of upkeep of both tables' partitions (see the module's docstring); nothing
    when another node is doing it."""
    async with pool.acquire() as db:
        if not await db.fetchval("SELECT pg_try_advisory_lock($1)", _UPKEEP_LOCK):
            return Rotation()
        try:
            rounds = [
                await _upkeep(db, t, now, {s: getattr(c, t) for s, c in cutoffs.items()})
                for t in _TABLES
            ]
        finally:
            await db.execute("SELECT pg_advisory_unlock($1)", _UPKEEP_LOCK)
    return Rotation(
        [n for r in rounds for n in r.created],
        [n for r in rounds for n in r.dropped],
        sum(r.moved for r in rounds),
    )


async def expire(pool: asyncpg.Pool, table: Table, site: str, before: int, limit: int) -> int:
    """One batch of retention's deletes: up to ``limit`` of the site's rows made before
    ``before``, all from one partition (found by one probe: the partitions that start at or
    after ``before`` are pruned, and each other is one index probe), by their tuple ids."""
    bound = " AND id < $3" if table == "decisions" else ""
    args: list[object] = [site, before] + ([id_bound(before)] if bound else [])
    async with pool.acquire() as db:
        partition = await db.fetchval(
            f"SELECT tableoid::regclass::text FROM {table} WHERE site = $1 AND at < $2{bound}"
            " LIMIT 1",
            *args,
        )
        if partition is None:
            return 0
        limit_at = f"${len(args) + 1}"
        async with db.transaction():
            # Not waiting for the log's flush: a batch lost in a crash is deleted again at
            # the next round, and the writers' commits do not queue behind its flush.
            await db.execute("SET LOCAL synchronous_commit TO OFF")
            status: str = await db.execute(
                f"DELETE FROM {partition} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {partition}"
                f" WHERE site = $1 AND at < $2{bound} LIMIT {limit_at}))",
                *args,
                limit,
            )
    return int(status.split()[-1])
