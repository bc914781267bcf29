"""The recommendations' job: a background task on every node (and ``sitecue recommend run``)
that turns each site's product events into the lists the workers recommend from.

Incremental: each run counts only the events after the site's checkpoint (by id), a batch
at a time: each batch's counts (see sitecue.recommend.counting) and the checkpoint commit
in one transaction, so an event counts exactly once, and memory is bounded by the batch
whatever the backlog. Then it recomputes, from the stored counts, each product's nearest
neighbours (viewed together, bought together: score = pairs / sqrt(viewers(a) *
viewers(b)), cosine, so a bestseller seen with everything does not win every slot; only
pairs of at least ``min_support`` visitors) and the popular lists (overall and per
category, over ``popular_over``; a cart counts as three views, a purchase as five), and
publishes the lists that changed, bumping the site's version so that every worker reloads
it (see sitecue.recommend.index). Counting runs every time; the lists are recomputed at
most every LISTS_EVERY_MS (and on a new day, as popularity's window moves on), from the
pairs the batches' deltas are first merged into (see store.recommend).

One node at a time runs a site: a run takes the site's lease in the store (renewed with
every batch, lost if it stalls for LEASE_MS), and a batch commits only while the lease is
its own. Ids on PostgreSQL can commit out of order (a writer may take id 100 and commit
after another took 101), so a run counts up to an id the previous run saw at least a few
seconds ago (see store.recommend.Horizon); on SQLite, whose writers take turns, up to the
newest. Records spooled during an outage arrive late with new ids and are counted then.

Nothing here runs on a request: decide only reads the index a worker holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import os
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import msgspec

from ..catalog import upsert_page_products
from ..settings import positive, setting
from ..store.recommend import (
    KINDS,
    Checkpoint,
    Kind,
    ListChanges,
    PairKind,
    ProductEvent,
    decode_pairs,
)
from .counting import DAY_MS, Counter, Windows, kind_of

if TYPE_CHECKING:
    from ..config import Catalog
    from ..rules import CompiledSite
    from ..store import Product, Store

__all__ = [
    "BATCH",
    "EVERY_S",
    "LEASE_MS",
    "NEIGHBOURS",
    "POPULAR",
    "ApplyPages",
    "Outcome",
    "RecommendJob",
    "every_from",
    "run_sites",
]

log = logging.getLogger("sitecue")

EVERY_S = 60.0  # SITECUE_RECOMMEND_EVERY's default
BATCH = 5_000  # events per transaction: a few tens of ms of the writer's time
PAGE = 20_000  # pairs read at a time
# A node that stops mid-run holds the site this long: long enough for a run's longest step
# without a commit (reading every pair to compute the lists), short enough to not matter.
LEASE_MS = 600_000
NEIGHBOURS = 20  # per product and kind
POPULAR = 50  # per list
PRUNE = 1_000  # visitors' records forgotten per statement
PRUNE_ROUNDS = 20  # statements per kind and publication of the lists
# Distinct pairs merged per transaction. Larger ones pass over the pairs' table fewer times
# (400,000 took 13% less CPU over a backlog of a million events) but hold SQLite's write
# lock for up to 10 s on a loaded machine, and 50 MB more: not worth it.
MERGE = 100_000
# The lists are recomputed (from every pair) at most this often, and on a new day; the
# events keep being counted every run meanwhile.
LISTS_EVERY_MS = 5 * 60_000
_items = msgspec.json.Encoder().encode


class ApplyPages(Protocol):
    """The catalogue's ``upsert_page_products`` (sitecue.catalog): takes the products
    pages described, once ``confirm`` visitors agree; returns the ids it wrote."""

    def __call__(
        self,
        store: Store,
        site: str,
        described: Sequence[tuple[str, str, str]],
        confirm: int,
        now: int | None = None,
    ) -> Awaitable[list[str]]: ...


def every_from(env: Mapping[str, str]) -> float:
    """Seconds between runs, from ``SITECUE_RECOMMEND_EVERY`` (fails fast naming it)."""
    return float(
        setting(None, env, "SITECUE_RECOMMEND_EVERY", positive(float), EVERY_S, "seconds above 0")
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Outcome(msgspec.Struct):
    """What a run did for one site: events counted, batches committed, whether the lists
    changed (and their version after), or why it did nothing."""

    site: str
    events: int = 0
    batches: int = 0
    changed: bool = False
    version: int = 0
    seconds: float = 0.0
    skipped: str | None = None


class RecommendJob:
    """Runs every site of ``sites()`` that has a ``catalog``, every ``every_s`` seconds and
    once at start; ``run`` does one round (what ``sitecue recommend run`` calls)."""

    def __init__(
        self,
        store: Store,
        sites: Callable[[], Mapping[str, CompiledSite]],
        *,
        every_s: float = EVERY_S,
        clock: Callable[[], int] = _now_ms,
        batch: int = BATCH,
        apply_pages: ApplyPages = upsert_page_products,
        published: Callable[[], None] = lambda: None,
        lists_every_ms: int = LISTS_EVERY_MS,
    ) -> None:
        self.store = store
        self.sites = sites
        self.every_s = every_s
        self.clock = clock
        self.batch = batch
        self.apply_pages = apply_pages
        self.published = published  # told when a run changed some site's lists
        self.lists_every_ms = lists_every_ms
        self.holder = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sitecue-recommend")

    async def stop(self) -> None:
        """Stop after the batch under way (the next run goes on from its checkpoint)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.run()
            except Exception as err:  # the store is down, say: at the next round
                log.warning("recommend: run failed: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.every_s)

    async def run(self, only: str | None = None, *, once: bool = False) -> list[Outcome]:
        """One round over the sites with a catalog (or ``only``); ``once``: a one-off run
        (the command line's), which waits the few seconds it takes on PostgreSQL for the
        newest events to be countable, and publishes the lists whenever events were
        counted."""
        outcomes = []
        for name, site in sorted(self.sites().items()):
            catalog = site.config.catalog
            if catalog is None or (only is not None and name != only) or self._stopping:
                continue
            outcome = await self.run_site(name, catalog, once=once)
            outcomes.append(outcome)
            if outcome.changed:
                self.published()
            if outcome.events or outcome.changed:
                log.info(
                    "recommend: %s: %d events in %d batches, lists %s (version %d), %.1f s",
                    name, outcome.events, outcome.batches,
                    "changed" if outcome.changed else "unchanged", outcome.version,
                    outcome.seconds,
                )  # fmt: skip
        return outcomes

    async def run_site(self, site: str, catalog: Catalog, *, once: bool = False) -> Outcome:
        """Count the site's new events and publish its lists (see the module docstring)."""
        started = time.perf_counter()
        now = self.clock()
        state = await self.store.recommend_claim(site, self.holder, now, LEASE_MS)
        if state is None:
            return Outcome(site, skipped="another node is running it")
        outcome = Outcome(site, version=state.version)
        horizon = await self.store.recommend_horizon(site)
        seen, seen_at = state.seen, state.seen_at
        if seen <= state.done:  # nothing observed is pending: this observation is next
            seen, seen_at = horizon.id, now
        if once and seen > state.done and now - seen_at < horizon.settle_ms:
            await asyncio.sleep((horizon.settle_ms - (now - seen_at)) / 1000)
        ready = seen > state.done and self.clock() - seen_at >= horizon.settle_ms
        upto = seen if ready else state.done
        products = await self.store.all_products(site)
        known = {p.id for p in products}
        done = await self._count(site, catalog, state, upto, known, outcome)
        if done is None:
            outcome.skipped = "the lease was lost to another node"
            return outcome
        if ready and horizon.id > seen:  # what this run saw, for the next to count
            seen, seen_at = horizon.id, now
        windows = Windows.of(catalog)
        day = now // DAY_MS
        published = state.published
        counted = done > state.listed and (  # the first events listed at once
            once or not state.listed or now - published >= self.lists_every_ms
        )
        recompute = counted or not published or published // DAY_MS != day
        changes = ListChanges(
            seen, seen_at, now if recompute else published, done if recompute else state.listed
        )
        if recompute:
            if not await self._merge(site):
                outcome.skipped = "the lease was lost to another node"
                return outcome
            if len(known) != len(products) or outcome.events:
                products = await self.store.all_products(site)
            lists = await self._lists(site, catalog, products, day - windows.popular_days + 1)
            old = await self.store.recommend_lists(site)
            changes.upserts = [(n, items) for n, items in lists.items() if old.get(n) != items]
            changes.deletes = sorted(set(old) - set(lists))
        if not await self.store.recommend_publish(site, self.holder, changes):
            outcome.skipped = "the lease was lost to another node"
            return outcome
        outcome.changed = bool(changes.upserts or changes.deletes)
        outcome.version = state.version + outcome.changed
        if recompute:  # with the lists: a few minutes' records at a time, not every run
            await self._prune(site, windows, now, day - windows.popular_days)
        outcome.seconds = time.perf_counter() - started
        return outcome

    async def _count(
        self,
        site: str,
        catalog: Catalog,
        state: Checkpoint,
        upto: int,
        known: set[str],
        outcome: Outcome,
    ) -> int | None:
        """Count the events ``state.done < id <= upto`` a batch at a time; the checkpoint
        reached, or None when the lease was lost (that batch is not committed)."""
        done = state.done
        while done < upto and not self._stopping:
            events = await self.store.recommend_events(site, done, upto, self.batch)
            last = events[-1].id if len(events) == self.batch else upto
            if catalog.from_pages:
                known.update(await self._pages(site, catalog, events))
            wanted: dict[Kind, set[str]] = {kind: set() for kind in KINDS}
            kinds = [kind_of(event, catalog) for event in events]
            for event, kind in zip(events, kinds, strict=True):
                if kind is not None:
                    wanted[kind].add(event.visitor)
            records: dict[tuple[Kind, str], bytes] = {}
            for kind, visitors in wanted.items():
                if visitors:
                    found = await self.store.recommend_visitors(site, kind, sorted(visitors))
                    records.update({(kind, v): blob for v, blob in found.items()})
            counter = Counter(catalog, known, records)
            for event, kind in zip(events, kinds, strict=True):
                if kind is not None:
                    counter.add(event, kind)
            lease_until = self.clock() + LEASE_MS
            if not await self.store.recommend_commit(
                site, self.holder, counter.batch(last), lease_until
            ):
                return None
            done = last
            outcome.events += len(events)
            outcome.batches += 1
        return done

    async def _merge(self, site: str) -> bool:
        """Sum the batches' pair deltas into the pairs, MERGE distinct pairs a transaction
        (memory stays bounded however many batches wait); False if the lease was lost."""
        after = 0
        while True:
            summed: defaultdict[str, int] = defaultdict(int)
            while len(summed) < MERGE:
                deltas = await self.store.recommend_deltas(site, after, 10)
                for after, blob in deltas:  # noqa: B007 (the last id is the one merged up to)
                    for pair, n in decode_pairs(blob):
                        summed[pair] += n
                if len(deltas) < 10:
                    break
            if not summed and not deltas:
                return True
            full = len(summed) >= MERGE
            rows = []
            names: dict[str, str] = {}
            one = names.setdefault  # one string per id (and kind), not one per row
            for pair in sorted(summed):  # in key order: each page of the pairs written once
                kind, a, b = pair.split(" ")
                rows.append((one(kind, kind), one(a, a), one(b, b), summed[pair]))
            summed.clear()  # the peak is the rows, not the rows and the sums
            if not await self.store.recommend_merge(
                site, self.holder, after, rows, self.clock() + LEASE_MS
            ):
                return False
            if not full:
                return True

    async def _pages(self, site: str, catalog: Catalog, events: list[ProductEvent]) -> list[str]:
        """Hand the products pages described to the catalogue (see ApplyPages)."""
        described = [
            (e.products[0], e.detail, e.visitor)
            for e in events
            if e.type == "product_view" and e.detail is not None and e.products
        ]
        if not described:
            return []
        return await self.apply_pages(self.store, site, described, catalog.confirm, self.clock())

    async def _lists(
        self, site: str, catalog: Catalog, products: list[Product], since_day: int
    ) -> dict[str, str]:
        """Every list the site's index loads, by name, as JSON ``[[id, score], …]``."""
        by_id = {p.id: p for p in products}
        lists: dict[str, str] = {}
        kinds: tuple[PairKind, ...] = ("viewed", "bought")
        for kind in kinds:
            for product, best in (await self._neighbours(site, kind, catalog, by_id)).items():
                lists[f"{kind}:{product}"] = _items(best).decode()
        popularity = await self.store.recommend_popularity(site, since_day)
        ranked = sorted(
            ((score, p) for p, score in popularity.items() if p in by_id and score > 0),
            key=lambda sp: (-sp[0], sp[1]),
        )
        overall = [[p, score] for score, p in ranked[:POPULAR]]
        if overall:
            lists["popular"] = _items(overall).decode()
        categories: dict[str, list[list[object]]] = {}
        for score, p in ranked:
            category = by_id[p].category
            if category is not None:
                top = categories.setdefault(category, [])
                if len(top) < POPULAR:
                    top.append([p, score])
        for category, top in categories.items():
            lists[f"popular:{category}"] = _items(top).decode()
        return lists

    async def _neighbours(
        self, site: str, kind: PairKind, catalog: Catalog, by_id: Mapping[str, Product]
    ) -> dict[str, list[list[object]]]:
        """Each product's best NEIGHBOURS of ``kind``, best first (score, then id)."""
        totals = await self.store.recommend_totals(site, kind)
        heaps: dict[str, list[tuple[float, str]]] = {}

        def push(a: str, b: str, score: float) -> None:
            heap = heaps.setdefault(a, [])
            if len(heap) < NEIGHBOURS:
                heapq.heappush(heap, (score, b))
            elif (score, b) > heap[0]:
                heapq.heapreplace(heap, (score, b))

        after = ("", "")
        while True:
            page = await self.store.recommend_pairs(site, kind, catalog.min_support, after, PAGE)
            for a, b, n in page:
                if a in by_id and b in by_id:
                    score = round(n / math.sqrt(totals.get(a, n) * totals.get(b, n)), 4)
                    push(a, b, score)
                    push(b, a, score)
            if len(page) < PAGE:
                break
            after = (page[-1][0], page[-1][1])
        return {
            a: [[b, s] for s, b in sorted(heap, key=lambda sb: (-sb[0], sb[1]))]
            for a, heap in heaps.items()
        }

    async def _prune(self, site: str, windows: Windows, now: int, before_day: int) -> None:
        """Forget the visitors' records past their kind's window, and old popularity days,
        a short statement at a time, at most PRUNE_ROUNDS of them a kind."""
        for kind in KINDS:
            for _ in range(PRUNE_ROUNDS):  # the rest (after a backlog) at the next lists
                gone = await self.store.recommend_prune(
                    site, kind, now - windows.keep[kind], before_day, PRUNE
                )
                if gone < PRUNE or self._stopping:
                    break


async def run_sites(
    store: Store,
    sites: Mapping[str, CompiledSite],
    only: str | None = None,
    *,
    clock: Callable[[], int] = _now_ms,
) -> list[Outcome]:
    """One round now, waiting for the newest events to be countable: what ``sitecue
    recommend run`` does."""
    job = RecommendJob(store, lambda: sites, clock=clock, every_s=every_from(os.environ))
    return await job.run(only, once=True)
