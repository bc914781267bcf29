"""Realistic records of the demo sites (config/sites: news and shop), as the server writes
them: every decision made by the real decide() on a simulated visitor's state, with its
verdicts for every rule, a typical URL, the visitor's id and the call's idempotency key; the
triggers the tag reports (a paywall seen, an item added to the cart) with a re-decision; the
feedback on what was shown (impressions, clicks, dismissals, form conversions); and goal
events (subscribe; purchase with its value).

decide() runs on a pool of page views (seeded, so every run writes the same records); the
pool is replayed as often as ``n`` decisions need, each replay with new visitor, decision and
key ids, and every record's time spread evenly over ``days``.

    from traffic import page_views
    for events, decisions in page_views(1_000_000, days=90, batch=2000): ...
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sitecue.decide import Verdict, decide
from sitecue.ids import record_id
from sitecue.protocol import DecideRequest, Page, PageEvent
from sitecue.rules import CompiledSite, load_sites
from sitecue.state import VisitorState
from sitecue.store import DecisionRecord, EventRecord

__all__ = ["DAY_MS", "T0", "page_views"]

ROOT = Path(__file__).resolve().parent.parent
DAY_MS = 86_400_000
T0 = 1_793_664_000_000  # 2026-11-03 00:00 UTC: the demo's paywall rule is scheduled from 11-01
KEY = b"bench-decision-key"
POOL = 100_000  # page views decided for real; replayed with new ids for larger fills
VIEWS_PER_VISITOR = 6  # in the pool: returning readers hit the paywall meter and caps


@dataclass
class _View:
    """One call of the pool: its decision's fields and the events it brings, relative."""

    site: str
    visitor: int
    offset: int  # ms after the pool's start
    url: str
    pageview: bool
    verdicts: list[Verdict]
    # What the call brings: (type, ms after the call, name, rule, variant, decision, value)
    events: list[tuple[str, int, str | None, str | None, str | None, str | None, float | None]] = (
        field(default_factory=list)
    )


def _news_path(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.2:
        return "/news/"
    if r < 0.9:
        return f"/news/articles/{rng.randrange(1, 5000)}.html"
    if r < 0.95:
        return "/news/subscribe.html"
    return f"/news/section/{rng.choice(['politics', 'sport', 'culture', 'business'])}"


def _shop_path(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.25:
        return "/shop/"
    if r < 0.75:
        return f"/shop/products/{rng.randrange(1, 2000)}.html"
    if r < 0.9:
        return "/shop/cart.html"
    return "/shop/checkout.html"


_CAMPAIGN = "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly-digest"


def _pool(sites: dict[str, CompiledSite], size: int, seed: int) -> list[_View]:
    """``size`` calls of decide() over both demo sites, in time order, each visitor keeping
    their state between page views (sessions of a few views, a day or so apart)."""
    rng = random.Random(seed)
    visitors = max(1, size // VIEWS_PER_VISITOR)
    states: dict[int, VisitorState] = {}
    views: list[_View] = []
    span = DAY_MS  # the pool's own time: one day, 7-day windows fill up across sessions
    t = 0
    step = span // size
    while len(views) < size:
        t += step
        v = rng.randrange(visitors)
        name = "news" if v % 3 else "shop"
        site = sites[name]
        state = states.setdefault(v, VisitorState(visitor=f"pool-{v}"))
        origin = f"https://{name}.example"
        path = _news_path(rng) if name == "news" else _shop_path(rng)
        url = origin + path + (_CAMPAIGN if rng.random() < 0.08 else "")
        view_id = f"view-{len(views)}"
        calls: list[tuple[bool, list[PageEvent]]] = [(True, [])]
        if name == "news" and "/articles/" in path and rng.random() < 0.45:
            calls.append((False, [PageEvent("paywall_view")]))  # the meter's paywall is seen
        if name == "shop" and "/products/" in path and rng.random() < 0.12:
            calls.append((False, [PageEvent("add_to_cart")]))
        if name == "shop" and path == "/shop/checkout.html" and rng.random() < 0.35:
            value = round(rng.lognormvariate(4.0, 0.6), 2)
            calls.append((False, [PageEvent("purchase", value=value)]))
        given: set[str] = set()  # a re-decision repeats the view's decision ids
        for i, (pageview, events) in enumerate(calls):
            now = T0 + t + i * 4_000
            request = DecideRequest(
                site=name,
                page=Page(url=url, title="A page", viewport="desktop"),
                events=events,
                view=view_id,
                pageview=pageview,
            )
            out = decide(site, state, request, now, key=KEY)
            state = out.state
            view = _View(name, v, t + i * 4_000, url, pageview, out.verdicts)
            for e in events:
                view.events.append(("trigger", 0, e.name, None, None, None, e.value))
            for d in out.decisions:
                if d.id not in given:
                    given.add(d.id)
                    _feedback(rng, view, d.rule, d.variant, d.id)
            views.append(view)
        states[v] = state
        if name == "news" and rng.random() < 0.003:  # a reader subscribes
            views[-1].events.append(("event", 9_000, "subscribe", None, None, None, None))
    return views[:size]


def _feedback(rng: random.Random, view: _View, rule: str, variant: str, decision: str) -> None:
    """What the tag reports about one shown decision: an impression (an exit-intent overlay
    only when the visitor leaves), sometimes a click, a dismissal or a form conversion."""
    exit_intent = rule == "exit-discount"
    if variant == "control" or rng.random() > (0.3 if exit_intent else 0.92):
        return
    view.events.append(("impression", 800, None, rule, variant, decision, None))
    r = rng.random()
    if r < 0.05:
        view.events.append(("click", 6_000, None, rule, variant, decision, None))
    elif r < 0.12:
        view.events.append(("dismiss", 3_000, None, rule, variant, decision, None))
    elif rule == "newsletter" and r < 0.14:  # the signup form, submitted
        view.events.append(("convert", 20_000, None, rule, variant, decision, None))


def _ids(rng: random.Random) -> str:
    """A tag-made id: 21 random characters, as snippet/src/main.js makes them."""
    return f"{rng.getrandbits(84):021x}"


def _visitor_id(v: int, replay: int, layer: int) -> str:
    """A visitor id as the server makes them (22 base64url characters), new per replay."""
    raw = hashlib.blake2b(f"{v}/{replay}/{layer}".encode(), digest_size=16).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_POOLS: dict[tuple[int, int], list[_View]] = {}


def page_views(
    n: int, *, days: int = 90, batch: int = 2000, seed: int = 17, start: int = T0, layer: int = 0
) -> Iterator[tuple[list[EventRecord], list[DecisionRecord]]]:
    """``n`` decision records (and their events), oldest first, ``batch`` decisions at a
    time, spread evenly over ``days`` from ``start``. Each ``layer`` has visitors, decision
    ids and keys of its own: layers add up to a store of more traffic over the same days."""
    size = min(n, POOL)
    if (size, seed) not in _POOLS:
        _POOLS[(size, seed)] = _pool(load_sites(ROOT / "config"), size, seed)
    pool = _POOLS[(size, seed)]
    rng = random.Random(f"{seed}/{layer}")
    span = days * DAY_MS
    replays = -(-n // len(pool))
    slice_ms = span // replays  # each replay takes its own stretch of the time range
    scale = slice_ms / DAY_MS
    events: list[EventRecord] = []
    decisions: list[DecisionRecord] = []
    made = 0
    for replay in range(replays):
        base = start + replay * slice_ms
        names: dict[int, str] = {}
        for view in pool:
            if made == n:
                break
            visitor = names.get(view.visitor) or names.setdefault(
                view.visitor, _visitor_id(view.visitor, replay, layer)
            )
            at = base + int(view.offset * scale)
            call = _ids(rng)
            decisions.append(
                DecisionRecord(
                    record_id(at), view.site, visitor, at, view.url, view.verdicts,
                    view.pageview, key=call,
                )
            )  # fmt: skip
            for i, (kind, offset, name, rule, variant, decision, value) in enumerate(view.events):
                when = at + offset
                key = f"{call}.{i}" if kind == "trigger" else _ids(rng)
                if decision is not None:
                    decision = f"{decision[:-6]}{layer:02x}{replay:04x}"  # one per decision
                events.append(
                    EventRecord(
                        view.site, visitor, kind, when, name, rule, variant, decision,
                        value, key,
                    )
                )  # fmt: skip
            made += 1
            if len(decisions) >= batch:
                yield events, decisions
                events, decisions = [], []
    if decisions or events:
        yield events, decisions
