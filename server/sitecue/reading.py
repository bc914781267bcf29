"""Reading time: the active seconds the tag measures on each page view, credited to the
visitor's state, and what conditions read of it.

The tag counts a moment while the tab is visible and the visitor gave input (scroll, key,
pointer) within the last 30 seconds, and reports the whole seconds it has not reported yet
(``read``) with its next call to decide, or in a beacon to events when the page is hidden or
left. Conditions read ``reading.minutes.<window>`` (the sum) and
``reading.average_seconds.<window>`` (per page view) over the same windows as triggers:

    {"reading.minutes.7d": {"$gte": 30}}            read 30 minutes this week
    {"reading.average_seconds.30d": {"$gt": 90}}    over a minute and a half a page, this month

The visitor's clock is not trusted. A report is credited at most the time the server saw pass
since the last credited one (or since it first saw the visitor), and at most MAX_REPORT_S, so
no page claims ten hours in a minute and two tabs do not read two minutes in one; a retried
call (the same ``call`` id) credits nothing again. Seconds count on the day the server
receives them, as triggers do. Kept only in the state cookie, and only where some rule reads
reading time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .state import Counter, VisitorState

__all__ = ["MAX_REPORT_S", "METRICS", "context", "credit", "forget", "record"]

MAX_REPORT_S = 3600
"""One report credits at most an hour, however long the server last heard of the visitor."""
METRICS = ("minutes", "average_seconds")
"""What ``reading.<metric>.<window>`` may name."""


def credit(state: VisitorState, seconds: int, today: int, now: int) -> int:
    """Credit up to ``seconds`` of reading to ``today``; return the seconds credited. At most
    the wall-clock time since the last credit (or since the visitor was first seen): what one
    browser reports across its tabs never adds up to more than the time that passed."""
    since = state.read_at or state.first_seen or now
    allowed = min(max(now - since, 0) // 1000, MAX_REPORT_S)
    n = min(seconds, allowed)
    if n > 0:
        if state.read is None:
            state.read = Counter()
        state.read.add(today, n)
        state.read_at = now
    return n


def record(
    state: VisitorState,
    windows: Mapping[str, frozenset[str]],
    seconds: int,
    pageview: bool,
    days: int,
    today: int,
    now: int,
) -> None:
    """A decide call of a site whose rules read reading time (``windows``, by metric):
    credit what it reports, count the page view where some rule reads an average (page
    views are only its denominator), and forget day buckets older than ``days`` (the
    longest day window read; 0 keeps none)."""
    if seconds:
        credit(state, seconds, today, now)
    if "average_seconds" not in windows:
        state.views = None
    elif pageview:
        if state.views is None:
            state.views = Counter()
        state.views.add(today)
    for counter in (state.read, state.views):
        if counter is not None:
            counter.forget_before(today - days + 1)


def forget(state: VisitorState) -> None:
    """Drop reading time from the state of a site whose rules no longer read it."""
    if state.read is not None or state.views is not None or state.read_at:
        state.read, state.views, state.read_at = None, None, 0


def context(
    state: VisitorState, windows: Mapping[str, frozenset[str]], today: int
) -> dict[str, Any]:
    """``reading.*`` for conditions: the windows some rule reads of each metric."""
    out: dict[str, dict[str, float]] = {}
    for metric, read in windows.items():
        values = out[metric] = {}
        for window in read:
            seconds = state.read.count(window, today) if state.read is not None else 0
            if metric == "minutes":
                values[window] = seconds / 60
            else:
                views = state.views.count(window, today) if state.views is not None else 0
                values[window] = seconds / views if views else 0
    return out
