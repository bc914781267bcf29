"""The decision: a pure function of (compiled site, visitor state, request, now).

It applies the page's events to the state, builds the context conditions read, and walks the
rules from the highest priority down. Every rule gets a verdict: shown (with its variant) or
why not (the failed clause, a cap, the schedule, the rule that won its slot, the site's
overlay budget, or the global holdout), so "why did this visitor see that?" always has an
answer. Nothing here does I/O; the HTTP layer decodes, calls it, and writes what it returns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import catalog, decision_ids, frequency, products, reading
from .bucketing import choose_variation, fnv_hash, in_namespace
from .errors import BadRequest
from .holdout import HOLDOUT, held_out
from .page_data import page_data
from .personal import Recommender
from .protocol import DecideRequest, Decision, Feedback, PageEvent
from .rules import CompiledRule, CompiledSite
from .state import Counter, VisitorState, day_of
from .store.verdicts import Verdict

__all__ = [
    "Outcome",
    "Verdict",
    "apply_feedback",
    "apply_reading",
    "consented",
    "decide",
    "decision_id",
]

UTM_KEYS = ("source", "medium", "campaign", "term", "content")


@dataclass
class Outcome:
    decisions: list[Decision]
    state: VisitorState
    verdicts: list[Verdict]
    persist: bool  # whether the state may be stored (the visitor consented, where asked)
    # The product this counted page view showed (``page.data.product``), and the page's
    # description of it where the site takes products from its pages: a product_view.
    viewed: tuple[str, str | None] | None = None


def consented(site: CompiledSite, said: bool | None, state: VisitorState) -> bool:
    """May this visitor's state be kept? ``said`` is what the page reports now; otherwise
    what the visitor said before (kept in the state), then the site's mode."""
    answer = said if said is not None else state.consent
    mode = site.config.consent
    if mode == "required":
        return answer is True
    if mode == "implied":
        return answer is not False
    return True  # "none": the site does not ask


def decision_id(
    key: bytes, visitor: str, view: str | None, rule: str, variant: str, now: int
) -> str:
    """Signed (see :mod:`sitecue.decision_ids`), and stable within one page view, so a
    re-decision after a trigger repeats the same id and the tag does not render a widget
    twice (on the same UTC day: the id carries it); without a page-view id, the moment of
    the call stands in for it."""
    return decision_ids.issue(key, visitor, view or f"@{now}", rule, variant, now)


def _repeated(state: VisitorState, call: str | None) -> bool:
    """Is this the call the state last counted? Remember it either way."""
    if call is None:
        return False
    mark = int.from_bytes(hashlib.blake2b(call.encode(), digest_size=6).digest())
    seen, state.last_call = state.last_call == mark, mark
    return seen


def _page_context(request: DecideRequest) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        parts = urlsplit(request.page.url)
    except ValueError as err:  # such as an unclosed IPv6 bracket: no page to decide for
        raise BadRequest(f"$.page.url: expected a URL, got {request.page.url!r} ({err})") from None
    query = dict(parse_qsl(parts.query))
    page = {
        "url": request.page.url,
        "path": parts.path or "/",
        "query": query,
        "referrer": request.page.referrer,
        "title": request.page.title,
    }
    utm = {key: query[f"utm_{key}"] for key in UTM_KEYS if f"utm_{key}" in query}
    return page, utm


def _count_events(
    site: CompiledSite,
    state: VisitorState,
    events: list[PageEvent],
    page: dict[str, Any],
    pageview: bool,
    today: int,
    now: int,
    product: str | None = None,
) -> None:
    """Count this call's triggers on the day the server receives them: the visitor's clock
    is not trusted, and the tag reports triggers as they fire. A page view of ``product``
    and the catalog's purchases go into the state's products (see sitecue.products)."""
    counted = []
    values = []  # (trigger, value) of the events whose values some rule sums
    catalog = site.config.catalog
    if pageview:
        state.pageviews += 1
        state.session_pageviews += 1
        if product is not None and catalog is not None:
            products.viewed(state, product, catalog.recent)
        for name, matches in site.pageview_triggers:
            if matches({"page": page}):
                counted.append(name)
    for event in events:
        trigger = site.trigger(event.name)
        if trigger is not None and trigger.on != "pageview":
            counted.append(event.name)
            if event.value is not None and event.name in site.sums:
                values.append((event.name, event.value))
        if catalog is not None and catalog.purchase and event.name == catalog.purchase:
            bought = products.event_products(event.product, event.products)
            if bought:
                products.bought(state, bought)
    for name in counted:
        if name in site.windows:  # only what some rule reads is kept
            state.triggers.setdefault(name, Counter()).add(today)
    for name, value in values:  # summed triggers are in site.windows: counted just above
        state.add_value(name, today, value)
    state.keep_only(site.trigger_days, site.rule_days, today, site.sums)
    products.keep_products(state, catalog)
    if state.answers:
        state.answers = {k: v for k, v in state.answers.items() if k in site.answers}
    if state.goals:
        state.goals = {k: v for k, v in state.goals.items() if k in site.stop_goals}
    for goal in {e.name for e in events if e.name in site.goals}:
        _convert_goal(site, state, goal, now)


def _context(
    site: CompiledSite,
    state: VisitorState,
    page: dict[str, Any],
    utm: dict[str, str],
    request: DecideRequest,
    today: int,
    now: int,
) -> dict[str, Any]:
    triggers = {}
    for name, windows in site.windows.items():
        counter = state.triggers.get(name)
        triggers[name] = {w: counter.count(w, today) if counter else 0 for w in windows}
    if state.snapshot is not None and state.snapshot.counts and state.verified:
        # The person's server-side events (as of the last refresh) add to this browser's
        # own counts; only a verified identification brings them (see sitecue.refresh).
        for name, counts in state.snapshot.counts.items():
            found = triggers.get(name)
            if found is not None:
                for window, n in counts.items():
                    if window in found:
                        found[window] += n
    sums = {}
    # The sums of the person's server-side values add to this browser's own, as the counts
    # do: only a verified identification brings them.
    server = state.snapshot.sums if state.snapshot is not None and state.verified else {}
    for name, windows in site.sums.items():
        theirs = server.get(name, {})
        sums[name] = {w: state.summed(name, w, today, theirs.get(w, 0)) for w in windows}
    local = datetime.fromtimestamp(now / 1000, site.zone)
    # Offsite attributes only from a verified identification, never from page JavaScript.
    attributes = state.attributes if state.verified else {}
    if state.answers:
        # This browser's own form answers, under the names of form fields some rule reads
        # (never a declared attribute's: check refuses such a field), and never over a
        # verified value: typing cannot stand in for what the site's systems said.
        answers = {k: v for k, v in state.answers.items() if k in site.answers}
        attributes = {**answers, **attributes}
    return {
        "page": page,
        "utm": utm,
        "visitor": {
            "new": state.sessions <= 1,
            "returning": state.sessions > 1,
            "sessions": state.sessions,
            "visits": state.sessions,
            "pageviews": state.pageviews,
            "session_pageviews": state.session_pageviews,
            "identified": state.contact is not None,
            # Id audiences match this: a contact proven by a signed link, never one claimed.
            "contact": state.contact if state.verified else None,
        },
        "attributes": attributes,
        "triggers": triggers,
        "sums": sums,
        "time": {"hour": local.hour, "weekday": local.isoweekday()},
        "device": {"viewport": request.page.viewport},
        "reading": reading.context(state, site.reading, today) if site.reading else {},
    }


def _blocked(
    rule: CompiledRule, state: VisitorState, context: dict[str, Any], today: int, now: int
) -> str | None:
    """Why the rule cannot show now, or None if it can."""
    schedule = rule.rule.schedule
    if schedule is not None:
        moment = datetime.fromtimestamp(now / 1000, UTC)
        if schedule.starts is not None and moment < schedule.starts:
            return "schedule: not started"
        if schedule.until is not None and moment >= schedule.until:
            return "schedule: ended"
    for key, test in rule.clauses:
        if not test(context):
            return f"condition: {key}"
    memory = state.rules.get(rule.id)
    # The goal reached however, this rule seen or not (the state keeps only the goals of
    # rules that stop after theirs, so a site without such rules pays one test here).
    if state.goals and rule.rule.goal in state.goals and "goal" in rule.rule.limit.stop_after:
        return "cap: goal reached"
    if memory is not None:
        limit = rule.rule.limit
        if "goal" in limit.stop_after and memory.converted:
            return "cap: goal reached"  # through this rule: its goal too
        if "dismiss" in limit.stop_after and memory.dismissed:
            return "cap: dismissed"
        if "convert" in limit.stop_after and memory.converted:
            return "cap: converted"
        if limit.max is not None and memory.shown.count(limit.per, today) >= limit.max:
            return f"cap: {limit.max} per {limit.per}"
        if rule.gap_ms and memory.last_shown and now - memory.last_shown < rule.gap_ms:
            return f"cap: at most one per {limit.gap}"
    return None


def _variant(rule: CompiledRule, state: VisitorState) -> int:
    """The sticky variant if it still exists (so changing weights reshuffles nobody who was
    assigned), else the person's bucket: by contact once verified, so a person keeps their
    variant on every device, else by browser; -1 for none (outside the coverage or the
    namespace range). Seeded by the rule id, so experiments are independent."""
    sticky = state.rules.get(rule.id)
    if sticky is not None and sticky.variant:
        for i, variant in enumerate(rule.variants):
            if variant.id == sticky.variant:
                return i
    person = state.contact if state.verified and state.contact else state.visitor
    namespace = rule.rule.namespace
    if namespace is not None and not in_namespace(person, (namespace.id, *namespace.range)):
        return -1
    n = fnv_hash(rule.id, person, 2)
    return -1 if n is None else choose_variation(n, rule.ranges)


def decide(
    site: CompiledSite,
    state: VisitorState,
    request: DecideRequest,
    now: int,
    *,
    key: bytes,
    recommender: Recommender | None = None,
) -> Outcome:
    """Decide what this page view shows. ``state`` is updated in place and returned; without
    consent (where the site needs it) a blank state is used, and only rules that need no
    history can show. ``key`` signs the decision ids (the site's "decision" key);
    ``recommender`` is the site's recommendation index (None while it is not loaded: then
    no widget that recommends shows). Personal widgets render here (see sitecue.personal)."""
    persist = consented(site, request.consent, state)
    if persist:
        if request.consent is not None:
            state.consent = request.consent
        state.touch(now)
    else:
        state = VisitorState(visitor="")
    page, utm = _page_context(request)
    if request.page.data:  # what the page set: checked against the site's declarations
        page["data"] = page_data(site.config.page_data, request.page.data)
    # The product the page shows: recorded and remembered on a counted page view; its
    # description counts only from an established browser (see catalog.page_view).
    raw_product = request.page.data.get("product") if site.config.catalog else None
    established = (
        state.first_seen and now - state.first_seen >= catalog.ESTABLISHED_MS
    ) and state.pageviews >= catalog.ESTABLISHED_VIEWS
    shown = (
        catalog.page_view(site, request.page.url, raw_product, bool(established))
        if raw_product is not None
        else None
    )
    today = day_of(now, site.zone)
    # A retried call that carries the cookie its first attempt set has been counted already.
    counting = persist and not _repeated(state, request.call)
    events = list(request.events) if counting else []
    pageview = request.pageview and counting
    product = shown[0] if shown is not None else None
    _count_events(site, state, events, page, pageview, today, now, product)
    if site.reading:
        if counting:
            read = request.read or 0
            days = site.reading_days
            reading.record(state, site.reading, read, request.pageview, days, today, now)
    elif persist:
        reading.forget(state)
    context = _context(site, state, page, utm, request, today, now)
    cap = site.frequency
    budget = None
    if cap is not None and persist:
        budget = frequency.enter_view(state, request.view)
    elif state.budget is not None:
        state.budget = None  # the site no longer sets a budget
    held = (
        persist
        and bool(site.config.holdout)
        and held_out(site.name, site.config.holdout, state.visitor)
    )
    kept = 0  # the rules a held-out visitor was kept from in this call

    decisions: list[Decision] = []
    verdicts: list[Verdict] = []
    taken: dict[str, str] = {}  # slot -> the rule that holds it
    for rule in site.rules:
        if not persist and rule.needs_state:
            reason: str | None = (
                "consent: the rule needs the visitor's history, kept only with consent"
            )
        else:
            reason = _blocked(rule, state, context, today, now)
        if reason is None and rule.slot in taken:
            reason = f"lost on priority to {taken[rule.slot]}"
        if reason is None and len(decisions) + kept >= site.config.max_per_view:
            reason = f"cap: {site.config.max_per_view} per page view"
        if reason is None and budget is not None and rule.id in site.budgeted:
            assert cap is not None
            reason = frequency.refusal(cap, budget, rule.id, today, now)
        html = None
        if reason is None:
            index = _variant(rule, state)
            if index < 0:
                reason = "not in any variant"
            else:
                html = rule.html[index]
                personal = rule.personal[index] if rule.personal else None
                if personal is not None:  # before the slot: with nothing to show, it frees it
                    html, reason = personal.render(state, product, recommender)
        if reason is not None:
            verdicts.append(Verdict(rule.id, False, reason=reason))
            continue
        variant = rule.variants[index]
        taken[rule.slot] = rule.id
        if budget is not None and rule.id in site.budgeted:
            frequency.give(budget, rule.id)
        if held:
            # Kept out, as if given: it holds its slot and its place in the budget, so the
            # log names exactly the campaigns this visitor would have seen.
            kept += 1
            verdicts.append(Verdict(rule.id, False, variant=variant.id, reason=HOLDOUT))
            continue
        if persist:
            state.rule(rule.id).variant = variant.id
        decisions.append(
            Decision(
                id=decision_id(
                    key,
                    state.visitor or decision_ids.ANONYMOUS,
                    request.view,
                    rule.id,
                    variant.id,
                    now,
                ),
                rule=rule.id,
                variant=variant.id,
                placement=rule.rule.placement,
                show=rule.rule.show,
                html=html,
            )
        )
        verdicts.append(Verdict(rule.id, True, variant=variant.id))
    return Outcome(decisions, state, verdicts, persist, shown if pageview else None)


def _convert_goal(site: CompiledSite, state: VisitorState, goal: str, now: int) -> None:
    """A goal event converts every rule with that goal that the visitor was exposed to, and
    is remembered (the first time) where some rule stops after it."""
    if goal in site.stop_goals:
        state.goals[goal] = min(state.goals.get(goal, now), now)
    for rule in site.rules:
        memory = state.rules.get(rule.id)
        if (
            rule.rule.goal == goal
            and memory is not None
            and memory.variant
            and not memory.converted
        ):
            memory.converted = now


def apply_feedback(
    site: CompiledSite, state: VisitorState, events: list[Feedback], now: int
) -> list[Feedback]:
    """Apply what the tag reports about decisions to the state; return the events accepted
    (those about rules of this site the visitor was actually given)."""
    state.touch(now)
    accepted = []
    for event in events:
        at = min(event.at or now, now)
        if event.type == "event":
            if event.name in site.goals:
                _convert_goal(site, state, event.name, at)
            catalog = site.config.catalog
            if catalog is not None and catalog.purchase and event.name == catalog.purchase:
                bought = products.event_products(event.product, event.products)
                if bought:  # a purchase sent as an event: the same as through decide
                    products.bought(state, bought)
            accepted.append(event)
            continue
        memory = state.rules.get(event.rule or "")
        if memory is None or not memory.variant or event.variant != memory.variant:
            continue  # not a decision this visitor received
        if event.type == "impression" and memory.last_impression != event.decision:
            memory.last_impression = event.decision or ""
            memory.last_shown = max(memory.last_shown, at)
            memory.shown.add(day_of(at, site.zone))
            if site.frequency is not None and event.rule in site.budgeted:
                frequency.shown(state, day_of(at, site.zone), at)
        elif event.type == "dismiss":
            memory.dismissed = memory.dismissed or at
        elif event.type == "convert":
            memory.converted = memory.converted or at
        accepted.append(event)
    return accepted


def apply_reading(
    site: CompiledSite, state: VisitorState, seconds: int, call: str | None, now: int
) -> int:
    """Credit reading time reported to ``POST /v1/events`` (the beacon of a page being left
    or hidden; see :mod:`sitecue.reading`); a retried call (the same ``call``) credits
    nothing again. Returns the seconds credited."""
    if not site.reading or _repeated(state, call):
        return 0
    return reading.credit(state, seconds, day_of(now, site.zone), now)
