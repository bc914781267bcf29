"""Who a visitor is: typed offsite attributes, and the state of a person rebuilt from their
durable history when a browser is identified by an email token (:mod:`sitecue.tokens`).

Trust comes only from a token: a browser it identifies is linked as verified, and only
verified browsers' history is recounted, exported or erased as the person's. A contact
merely claimed by page JavaScript (``sitecue('identify', …)``) is linked unverified: it can
neither read nor change what the person's verified browsers hold. Identification reads the
database (the one time a decision does), a bounded amount, with the recount on a thread.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .config import AttributeType
from .errors import BadRequest
from .refresh import refresh
from .rules import CompiledSite
from .state import Counter, VisitorState, day_of
from .store import EventRecord, PageView, Store, TokenUse
from .tokens import MAX_CONTACT_ID, TokenCodec
from .webhooks import messages

__all__ = [
    "MAX_CONTACT_ID",
    "check_attributes",
    "identify",
    "rebuild",
]


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "number": (int, float),
    "string": (str,),
}


def check_attributes(declared: Mapping[str, AttributeType], values: Any, path: str) -> None:
    """Refuse attributes the site does not declare, or of another type, naming the first
    mistake (``attributes.loyalty_tier: expected a string, got 5``)."""
    if not isinstance(values, dict):
        raise BadRequest(f"{path}: expected an object of attributes")
    for name, value in values.items():
        kind = declared.get(name)
        if kind is None:
            known = ", ".join(sorted(declared)) or "none are declared"
            raise BadRequest(f"{path}.{name}: expected an attribute the site declares ({known})")
        if value is None:
            continue  # a known attribute may be cleared
        ok = isinstance(value, _PYTHON_TYPES[kind]) and not (
            kind == "number" and isinstance(value, bool)
        )
        if not ok:
            raise BadRequest(f"{path}.{name}: expected a {kind}, got {value!r}")


# An absolute URL's path, as urlsplit finds it (the page context's page.path), without its
# cost; anything else (no scheme, tabs or newlines that urlsplit strips, an IPv6 host that it
# checks) goes to urlsplit.
_URL_PATH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\[\]\t\r\n]*(/[^?#\t\r\n]*)?(?:[?#]|\Z)")
RECOUNT_GAP_MS = 60_000  # a browser's history is recounted at most once a minute per token
_QUARTER_HOUR_MS = 900_000


def _path(url: str) -> str:
    match = _URL_PATH.match(url)
    if match:
        return match[1] or "/"
    try:
        return urlsplit(url).path or "/"
    except ValueError:  # such as an unclosed IPv6 bracket: no path worth counting
        return "/"


def _day_cache(site: CompiledSite) -> Callable[[int], int]:
    """day_of in the site's zone, computed once per quarter hour: every zone in use today
    changes its offset (and so its midnight) only on a quarter hour."""
    days: dict[int, int] = {}

    def day(at: int) -> int:
        block = at // _QUARTER_HOUR_MS
        found = days.get(block)
        if found is None:
            found = days[block] = day_of(block * _QUARTER_HOUR_MS, site.zone)
        return found

    return day


def rebuild(
    site: CompiledSite,
    state: VisitorState,
    events: list[EventRecord],
    pageviews: list[PageView],
) -> None:
    """Recount the person's triggers and what each rule did to them from the durable
    history of their verified browsers (``events``, oldest first, and ``pageviews``, this
    browser's included), in place of this browser's own counts. The session counts stay
    this browser's: a session does not span devices. Pure CPU work on its arguments, so it
    may run on a thread."""
    session = {name: c.session for name, c in state.triggers.items()}
    session_sums = {name: c.session for name, c in state.sums.items()}
    state.sums = {}
    triggers: dict[str, Counter] = {}
    day = _day_cache(site)

    def count(name: str, at: int, value: float | None = None) -> None:
        if name in site.windows:
            counter = triggers.get(name)
            if counter is None:
                counter = triggers[name] = Counter()
            counter.add(day(at))
            if value is not None and name in site.sums:  # a purchase's amount, say
                state.add_value(name, day(at), value)

    seen: dict[str, tuple[str, ...]] = {}  # url -> the page-view triggers it fires
    for view in pageviews:
        fired = seen.get(view.url)
        if fired is None:
            page = {"page": {"path": _path(view.url)}}
            fired = seen[view.url] = tuple(
                name for name, matches in site.pageview_triggers if matches(page)
            )
        for name in fired:
            count(name, view.at)
    mine, state.rules = state.rules, {}
    rules = {r.id: r for r in site.rules}
    for event in events:  # oldest first
        if event.name in site.stop_goals and event.type in ("event", "trigger"):
            # A goal reached on any of the person's devices stops the rules that stop after it.
            state.goals[event.name] = min(state.goals.get(event.name, event.at), event.at)
        if event.type == "trigger" and event.name:
            count(event.name, event.at, event.value)
        elif event.type == "event":  # a goal converts every rule the person was shown
            for rule_id, memory in state.rules.items():
                if rules[rule_id].rule.goal == event.name and memory.last_shown:
                    memory.converted = memory.converted or event.at
        elif event.rule in rules and event.variant:
            memory = state.rule(event.rule)
            memory.variant = memory.variant or event.variant
            if event.type == "impression":
                memory.shown.add(day(event.at))
                memory.last_shown = max(memory.last_shown, event.at)
            elif event.type == "dismiss":
                memory.dismissed = memory.dismissed or event.at
            elif event.type == "convert":
                memory.converted = memory.converted or event.at
    for rule_id in mine.keys() | state.rules.keys():
        # The person's variant (their first, on any device) wins over this browser's, so
        # they see the same one everywhere; this browser's session counts stay its own.
        memory, own = state.rule(rule_id), mine.get(rule_id)
        memory.shown.session = own.shown.session if own else 0
        if own is not None:
            memory.variant = memory.variant or own.variant
            memory.last_impression = own.last_impression
    for name, counter in triggers.items():
        counter.session = session.get(name, 0)
    for name, sums in state.sums.items():
        sums.session = session_sums.get(name, 0)
    state.triggers = triggers


class _Recounts:
    """When each (site, token, browser) last had its history recounted, in this process.
    A browser that re-sends its link without its state cookie would otherwise buy a full
    recount (a tenth of a second of CPU) per request; within RECOUNT_GAP_MS it is identified
    again without one. The browser limit per token bounds the keys per token; the map
    forgets its oldest entries past ``size``."""

    def __init__(self, size: int = 10_000) -> None:
        self._last: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._size = size

    def due(self, key: tuple[str, str, str], now: int) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < RECOUNT_GAP_MS:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self._size:
            self._last.popitem(last=False)
        return True


_recounts = _Recounts()


async def identify(
    store: Store,
    tokens: TokenCodec,
    site: CompiledSite,
    state: VisitorState,
    token: str | None,
    claimed: str | None,
    now: int,
) -> None:
    """Link this browser to the contact its email token names: count it among the token's
    browsers, store the verified link, recount the person's history across their verified
    browsers, and take a snapshot of their attributes and server-side event counts. A
    contact merely ``claimed`` by page JavaScript is linked unverified: it never unlocks
    attributes or another browser's history. A bad token, or one that has identified as
    many other browsers as the site allows, raises TokenRejected; the visit goes on as it
    was."""
    if token:
        held = tokens.read(site.name, token, now // 1000)
        if held.contact == state.contact and state.verified:
            return  # the same link clicked again
        # A forwarded link identifies its recipient too: only so many browsers per token.
        use = TokenUse(
            site.name, held.fingerprint, state.visitor, held.contact, now, held.expires * 1000
        )
        if not await store.use_token(use, site.config.identify.browsers_per_token):
            raise tokens.refuse("too many browsers")
        told = messages.contact_identified(
            site, held.contact, state.visitor, now, key=f"{held.fingerprint}:{state.visitor}"
        )
        await store.link(site.name, state.visitor, held.contact, now, verified=True, messages=told)
        if _recounts.due((site.name, held.fingerprint, state.visitor), now):
            history = await store.history(site.name, held.contact)
            # The recount is CPU work over up to HISTORY_BROWSERS x HISTORY_RECORDS rows: on
            # a thread, so the event loop keeps answering other requests meanwhile.
            await asyncio.to_thread(rebuild, site, state, history.events, history.pageviews)
        state.contact, state.verified = held.contact, True
        # The attributes, and the person's server-side events (what the site's systems
        # reported: they count for every browser of theirs), as a refresh reads them.
        await refresh(store, site, state, now)
    elif claimed and claimed != state.contact:
        await store.link(site.name, state.visitor, claimed, now, verified=False)
        state.contact, state.verified, state.attributes = claimed, False, {}
        state.snapshot = None  # a claim unlocks nothing the site's systems hold
        if state.products is not None:
            state.products.server = b""  # nor what the claimed person bought
