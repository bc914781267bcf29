"""Retention's statements: expired raw decisions and events deleted a small batch at a time,
and the idempotency keys past their use.

A batch is one short transaction (SQLite: one turn of the store's write lock), so the
writer's groups go between two batches and a request never waits behind a long delete.
Decisions are found through their time-ordered ids (:mod:`sitecue.ids`: an id starts with
the hex epoch milliseconds of its ``at``), a range of the primary key, so no index is kept
for retention alone; events through their ``(site, at)`` index.

Only ``events`` and ``decisions`` (and ``record_keys``, and ``product_clicks`` past their
attribution window: see store.product_rollups) are ever deleted from: rollups (product and
strategy rollups too), first exposures, contacts and form submissions are kept.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["KEYS_KEEP_MS", "Cutoffs", "Rotation", "Table", "id_bound"]

Table = Literal["decisions", "events"]
"""The two raw logs that expire."""

KEYS_KEEP_MS = 2 * 86_400_000
"""How long an idempotency key (``record_keys``) is kept: a retry comes within minutes, and
feedback dated more than a day back, or on a decision issued before yesterday (the day is
in its id), is refused anyway, so a "<type> <decision>" key is never needed longer."""


class Cutoffs(msgspec.Struct, frozen=True):
    """One site's cutoffs (epoch ms): its decisions and events older than these go."""

    decisions: int
    events: int


class Rotation(msgspec.Struct, frozen=True):
    """What a round of partition upkeep did (PostgreSQL; SQLite has no partitions): day
    partitions created (ahead, or for rows the default partition caught), dropped (every
    row in them expired), and rows moved out of the default partition."""

    created: list[str] = []
    dropped: list[str] = []
    moved: int = 0


def id_bound(before: int) -> str:
    """The smallest decision id made at or after ``before`` (epoch ms): every id made
    earlier sorts below it."""
    return f"{before:011x}"


# One batch each, oldest first; the ``at`` test holds on its own (a row is never deleted
# early), the id range only bounds the scan.
EXPIRE = {
    "decisions": (
        "DELETE FROM decisions WHERE site = ? AND id IN (SELECT id FROM decisions"
        " WHERE site = ? AND id < ? AND at < ? ORDER BY id LIMIT ?)"
    ),
    "events": (
        "DELETE FROM events WHERE id IN (SELECT id FROM events"
        " WHERE site = ? AND at < ? ORDER BY at LIMIT ?)"
    ),
}
PRUNE_KEYS = (
    "DELETE FROM record_keys WHERE (site, key) IN (SELECT site, key FROM record_keys"
    " WHERE at < ? ORDER BY at LIMIT ?)"
)


def expire_args(table: Table, site: str, before: int, limit: int) -> tuple[object, ...]:
    """The arguments of ``EXPIRE[table]``."""
    if table == "decisions":
        return (site, site, id_bound(before), before, limit)
    return (site, before, limit)
