"""Fresh attributes with bounded staleness: what the site's systems know about an identified
person, carried in their browser's state cookie and read again once it is older than the
site's ``identify.refresh`` interval (15 minutes by default).

What is refreshed: the contact's attributes (a ``PATCH`` to the contact reaches the browser
within one interval), the products the person bought (where the site has a catalog: the
purchases of their verified browsers and the site's own purchase events, kept in
``state.products.server``, see sitecue.products) and the person's server-side event counts
(``POST /v1/contacts/{id}/events``), with the sums of their values for the triggers some rule sums,
kept per trigger and window in ``state.snapshot``, apart from the browser's own counters and
sums, which they add to (see ``decide._context``). Each refresh replaces them, so nothing is
counted twice however often the person is refreshed. They are as of the read: a day window
slides at the next refresh.

Who is refreshed: only a browser verified as the contact's (by an email token). An anonymous
visitor, or one whose page only claimed a contact id, never causes a read, so the ordinary
page view still reads no database. A verified browser causes at most one read per interval:
the time of the last read travels in the sealed cookie, which the visitor can neither read
nor alter. A replayed older cookie is still due, so each process also keeps, per browser,
when it last refreshed it, and refreshes it at most once per REFRESH_GAP_MS whatever cookie
it sends. A browser whose verified link is gone at the refresh (the person was erased, or
the link moved) loses the contact, its attributes and counts at once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import date, datetime
from datetime import time as midnight
from zoneinfo import ZoneInfo

from .config import duration_ms
from .errors import StoreUnavailable
from .products import server_keys
from .rules import CompiledSite
from .state import MAX_SUM, Products, Snapshot, VisitorState, day_of
from .store import Refreshed, Store

__all__ = [
    "REFRESH_GAP_MS",
    "apply",
    "due",
    "freshen",
    "interval_ms",
    "refresh",
    "server_counts",
    "server_sums",
]

log = logging.getLogger("sitecue")

DAY_MS = 86_400_000
REFRESH_GAP_MS = 60_000
"""Within one process, a browser is refreshed at most this often (or once per interval, if
that is shorter), even when it replays an older cookie that says it is due."""


def interval_ms(site: CompiledSite) -> int:
    """The site's refresh interval (``"15m"``) in milliseconds."""
    return duration_ms(site.config.identify.refresh)


def due(site: CompiledSite, state: VisitorState, now: int) -> bool:
    """Is this browser verified as a contact's, and its snapshot older than the interval?
    A snapshot from further in the future than the interval (a node's clock gone wrong) is
    due too, so a bad clock cannot freeze it."""
    if not (state.verified and state.contact):
        return False
    interval = interval_ms(site)
    age = now - (state.snapshot.at * 1000 if state.snapshot is not None else 0)
    return age >= interval or age < -interval


def _start_of(day: int, zone: ZoneInfo) -> int:
    """The first epoch-ms instant of a calendar day (a proleptic ordinal) in ``zone``."""
    return int(datetime.combine(date.fromordinal(day), midnight(), tzinfo=zone).timestamp() * 1000)


def server_counts(site: CompiledSite, found: Refreshed, now: int) -> dict[str, dict[str, int]]:
    """The person's server-side events per counted trigger and window some rule reads, as
    ``decide`` counts a browser's: the last N calendar days up to today in the site's zone,
    or ``total``. Server-side events belong to no browser's ``session``. Zeros are left out
    (the cookie carries only what adds to a count)."""
    today = day_of(now, site.zone)
    end = _start_of(today + 1, site.zone)
    times: dict[str, list[int]] = {}
    for name, at, _ in found.events:
        times.setdefault(name, []).append(at)
    counts: dict[str, dict[str, int]] = {}
    for name, windows in site.windows.items():
        mine: dict[str, int] = {}
        for window in sorted(windows):
            if window == "session":
                continue
            if window == "total":
                n = found.totals.get(name, 0)
            else:
                first = _start_of(today - int(window[:-1]) + 1, site.zone)
                n = sum(1 for at in times.get(name, ()) if first <= at < end)
            if n:
                mine[window] = n
        if mine:
            counts[name] = mine
    return counts


def server_sums(site: CompiledSite, found: Refreshed, now: int) -> dict[str, dict[str, int]]:
    """The sums of the person's server-side values (in hundredths, each value rounded as a
    browser's, see Refreshed) per trigger some rule sums and window it reads, over the same
    days as :func:`server_counts`, each within ±MAX_SUM. Zeros are left out."""
    if not site.sums:
        return {}
    today = day_of(now, site.zone)
    end = _start_of(today + 1, site.zone)
    values: dict[str, list[tuple[int, int]]] = {}
    for name, at, hundredths in found.events:
        if hundredths and name in site.sums:
            values.setdefault(name, []).append((at, hundredths))
    sums: dict[str, dict[str, int]] = {}
    for name, windows in site.sums.items():
        mine: dict[str, int] = {}
        for window in sorted(windows):
            if window == "session":
                continue
            if window == "total":
                total = found.sums.get(name, 0)
            else:
                first = _start_of(today - int(window[:-1]) + 1, site.zone)
                total = sum(h for at, h in values.get(name, ()) if first <= at < end)
            total = max(-MAX_SUM, min(MAX_SUM, total))
            if total:
                mine[window] = total
        if mine:
            sums[name] = mine
    return sums


def apply(site: CompiledSite, state: VisitorState, found: Refreshed | None, now: int) -> None:
    """Put what a refresh read found into ``state``; None (the browser is no longer verified
    as the contact's: erased, or linked to someone else) drops the contact, its attributes,
    its counts and sums."""
    if found is None:
        state.contact, state.verified, state.attributes = None, False, {}
        state.snapshot = None
        if state.products is not None:
            state.products.server = b""  # what the person bought is theirs, not this browser's
        return
    state.attributes = found.attributes
    if site.config.catalog is not None:
        # The person's purchases, as their verified browsers and the site's records say:
        # replaced at each refresh, so a purchase refunded and deleted drops out too.
        keys = server_keys(found.bought)
        if keys or state.products is not None:
            if state.products is None:
                state.products = Products()
            state.products.server = keys
    # The time rounded up to a whole second: never due before the whole interval.
    state.snapshot = Snapshot(
        -(-now // 1000), server_counts(site, found, now), server_sums(site, found, now)
    )


async def refresh(store: Store, site: CompiledSite, state: VisitorState, now: int) -> None:
    """Read the contact's attributes and server-side events (one statement) into
    ``state``, which must be verified as the contact's."""
    assert state.contact is not None
    names = sorted(site.windows)
    longest = max((site.trigger_days.get(name, 0) for name in names), default=0)
    # A day more than the longest window: a calendar day in the site's zone starts up to a
    # day before or after the same day in UTC.
    since = now - (longest + 1) * DAY_MS
    catalog = site.config.catalog
    purchase = catalog.purchase if catalog is not None else None
    # What the person bought within the site's ``catalog.bought_within``: the window in
    # which purchases are taken to belong together, and a bound on the rows read.
    bought_since = now - duration_ms(catalog.bought_within) if catalog is not None else now
    found = await store.refresh(
        site.name, state.visitor, state.contact, names, since, purchase, bought_since
    )
    _refreshes.seen((site.name, state.visitor), now)
    apply(site, state, found, now)


class _Refreshes:
    """When this process last refreshed each (site, browser); forgets the oldest past
    ``size``. A browser that replays a cookie from before its last refresh would otherwise
    buy one read per request."""

    def __init__(self, size: int = 10_000) -> None:
        self._last: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._size = size

    def allowed(self, key: tuple[str, str], now: int, gap: int) -> bool:
        last = self._last.get(key)
        return last is None or not 0 <= now - last < gap

    def seen(self, key: tuple[str, str], now: int) -> None:
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self._size:
            self._last.popitem(last=False)


_refreshes = _Refreshes()


async def freshen(store: Store, site: CompiledSite, state: VisitorState, now: int) -> bool:
    """Refresh a browser that is :func:`due`, unless this process refreshed it less than
    REFRESH_GAP_MS (or the interval, if shorter) ago. A store that cannot answer leaves the
    snapshot as it was (the decision goes on from the cookie) and is tried again after the
    gap. True when the state was refreshed."""
    gap = min(REFRESH_GAP_MS, interval_ms(site))
    if not _refreshes.allowed((site.name, state.visitor), now, gap):
        return False
    try:
        await refresh(store, site, state, now)
    except StoreUnavailable as err:
        _refreshes.seen((site.name, state.visitor), now)
        log.warning("refresh of visitor %s on %s put off: %s", state.visitor, site.name, err)
        return False
    return True
