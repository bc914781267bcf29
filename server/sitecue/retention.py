"""Retention: a background task on every node that deletes each site's raw decisions and
events once they are older than its ``retention`` (90 days and 400 days by default), and
the idempotency keys older than two days.

It works in small batches, each one short transaction (on SQLite one turn of the write
lock), and yields between them, so the writer's groups (and the requests waiting on them)
go in between: no batch holds the writer for more than a few milliseconds (BATCH is sized
for well under 50 ms; ``bench/retention.py`` measures it). On SQLite the freed pages are
then given back to the file system in bounded steps (incremental vacuum); on PostgreSQL
whole days go at once, by dropping their partitions (see :mod:`sitecue.store.partitions`).

Rollups (product and strategy rollups too), first exposures, contacts and form submissions
are never touched: reports and experiment results outlive the raw log (recommendation
clicks go once past their 7-day attribution window: they can credit nothing more). A site
missing from this node's config keeps its records (a node with an older config must not
delete what a newer one keeps). Any number of nodes and workers run it together: each
delete is idempotent, and partitions are changed by one node at a time.

The clock is injected, so tests move time instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

import msgspec

from .store import Store
from .store.product_rollups import ATTRIBUTION_MS
from .store.retention import KEYS_KEEP_MS, Cutoffs, Rotation, Table

if TYPE_CHECKING:
    from .config import Retention as RetentionConfig
    from .rules import CompiledSite

__all__ = [
    "BATCH",
    "DELAY_S",
    "EVERY_S",
    "PACE",
    "PAGES",
    "Retention",
    "Round",
    "cutoffs",
    "duration_ms",
]

log = logging.getLogger("sitecue")

BATCH = 100  # rows per delete: a few milliseconds of the writer's time (bench/retention.py)
PAGES = 64  # pages per vacuum step (256 KiB of 4 KiB pages)
# After each batch, a pause as long as the batch took: retention takes at most half of the
# writer's time, and SQLite's checkpoints copy its log beside the writers meanwhile.
PACE = 1.0
EVERY_S = 3600.0  # a round an hour: retention counts in days
DELAY_S = 300.0  # the first round's deletes, after a start (partitions are made at once)
_TABLES: tuple[Table, ...] = ("decisions", "events")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def duration_ms(text: str) -> int:
    """A retention duration of the config (``90d``, ``36h``) in milliseconds."""
    return int(text[:-1]) * _UNIT_MS[text[-1]]


def cutoffs(retention: Mapping[str, RetentionConfig], now: int) -> dict[str, Cutoffs]:
    """Each site's cutoffs at ``now``: its records made before them have expired."""
    return {
        site: Cutoffs(now - duration_ms(r.decisions), now - duration_ms(r.events))
        for site, r in retention.items()
    }


class Round(msgspec.Struct):
    """What one round did: rows deleted per table, keys pruned, partitions changed, the free
    pages left in the file (SQLite), and the time (seconds) of each delete batch and each
    vacuum step: the store call's whole time, an upper bound of how long it held the
    writer."""

    deleted: dict[str, int] = msgspec.field(default_factory=lambda: dict.fromkeys(_TABLES, 0))
    keys: int = 0
    clicks: int = 0  # recommendation clicks past their attribution window
    rotation: Rotation = Rotation()
    free_pages: int = 0
    batches: list[float] = msgspec.field(default_factory=list)
    steps: list[float] = msgspec.field(default_factory=list)


class Retention:
    """Expires the raw records of every site of ``sites()`` (read at each round, so a
    reload's retention applies from the next one)."""

    def __init__(
        self,
        store: Store,
        sites: Callable[[], Mapping[str, CompiledSite]],
        *,
        clock: Callable[[], int] = _now_ms,
        every_s: float = EVERY_S,
        delay_s: float = DELAY_S,
        batch: int = BATCH,
        pages: int = PAGES,
        pace: float = PACE,
    ) -> None:
        self.store = store
        self.sites = sites
        self.clock = clock
        self.every_s = every_s
        self.delay_s = delay_s
        self.batch = batch
        self.pages = pages
        self.pace = pace
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sitecue-retention")

    async def stop(self) -> None:
        """Stop after the batch under way (a round cut short goes on at the next one)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def run_once(self) -> Round:
        """One round: partitions first (whole days, on PostgreSQL), then the batches of
        each site's expired decisions and events, the old keys, and the free pages."""
        now = self.clock()
        done = Round()
        keep = self._cutoffs(now)
        started = time.perf_counter()
        done.rotation = await self.store.rotate_partitions(now, keep)
        for table in _TABLES:
            for site, cut in sorted(keep.items()):
                done.deleted[table] += await self._batches(
                    done, partial(self.store.expire, table, site, getattr(cut, table))
                )
        done.keys = await self._batches(
            done, partial(self.store.prune_record_keys, now - KEYS_KEEP_MS)
        )
        done.clicks = await self._batches(
            done, partial(self.store.prune_product_clicks, now - ATTRIBUTION_MS)
        )
        done.free_pages = await self._reclaim(done)
        log.info(
            "retention: deleted %d decisions and %d events, %d keys; partitions +%d -%d;"
            " %.1f s",
            done.deleted["decisions"], done.deleted["events"], done.keys,
            len(done.rotation.created), len(done.rotation.dropped),
            time.perf_counter() - started,
        )  # fmt: skip
        return done

    async def _batches(self, done: Round, batch: Callable[[int], Awaitable[int]]) -> int:
        """Run ``batch(limit)`` until it finds nothing left; the total deleted. (A short
        batch does not mean the end: on PostgreSQL a batch takes one partition's rows.)"""
        total = 0
        while not self._stopping:
            t0 = time.perf_counter()
            n = await batch(self.batch)
            done.batches.append(time.perf_counter() - t0)
            total += n
            if n == 0:
                break
            await self._pause(done.batches[-1])
        return total

    async def _reclaim(self, done: Round) -> int:
        """Give the free pages back a step at a time (SQLite); how many are left."""
        left = -1
        while not self._stopping:
            t0 = time.perf_counter()
            now_left = await self.store.reclaim(self.pages)
            done.steps.append(time.perf_counter() - t0)
            if now_left <= 0 or now_left == left:  # none left, or none could go
                return now_left
            left = now_left
            await self._pause(done.steps[-1])
        return max(left, 0)

    async def _pause(self, took: float) -> None:
        """Let the writer's next groups go (and, for ``pace`` times as long as the batch
        took, whatever else waits) before the next batch."""
        await asyncio.sleep(took * self.pace)

    def _cutoffs(self, now: int) -> dict[str, Cutoffs]:
        return cutoffs({name: site.config.retention for name, site in self.sites().items()}, now)

    async def _run(self) -> None:
        # At start, only the partitions (the coming days' must exist); the deletes begin a
        # while later, once the node has warmed up.
        wait = self.delay_s
        try:
            now = self.clock()
            await self.store.rotate_partitions(now, self._cutoffs(now))
        except Exception as err:  # the store is down, say: at the next round
            log.warning("retention: partitions not made: %s", err)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            if self._stopping:
                return
            try:
                await self.run_once()
            except Exception as err:  # the store is down, say: at the next round
                log.warning("retention: round failed: %s", err)
            wait = self.every_s
