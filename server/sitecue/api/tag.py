"""The tag's endpoints: ``POST /v1/decide``, ``/v1/events`` and ``/v1/forms`` (and their CORS
preflight), and the first-party cookies they keep.

Each decodes its body (capped, typed), checks the caller's ``Origin`` against the site, runs
the pure decision code, commits the records, and only then answers with the updated state
cookie.
"""

from __future__ import annotations

import logging
import math
import re
import time
from functools import partial
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import decision_ids, origins, preview, products, rootpath
from ..decide import Outcome, apply_feedback, apply_reading, consented, decide
from ..errors import (
    BadRequest,
    Forbidden,
    FormInvalid,
    StoreUnavailable,
    TooManyRequests,
)
from ..feedback import accept
from ..forms import HONEYPOT, check_submission, contact_field
from ..identity import identify
from ..ids import record_id
from ..personal import Recommender
from ..protocol import (
    MAX_BODY_BYTES,
    DecideRequest,
    DecideResponse,
    EventsRequest,
    Feedback,
    FormRequest,
    FormResponse,
)
from ..recommend import recommend
from ..refresh import due, freshen
from ..retries import new_visitor, trigger_key
from ..rules import CompiledSite
from ..runtime import Runtime
from ..state import MAX_AGE_S, STATE_COOKIE, VisitorState
from ..store import DecisionRecord, EventRecord, RateLimit, Store, Submission
from ..store.bounded import bounded
from ..tokens import TokenRejected
from ..webhooks import messages
from .bodies import decode, json_response, read_body

__all__ = ["cors", "decide_endpoint", "events_endpoint", "forms_endpoint", "preflight"]

log = logging.getLogger("sitecue")

VISITOR_COOKIE = "sc_vid"
_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_OUTCOME = {True: "shown", False: "not shown"}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_origin(request: Request, site: CompiledSite) -> str | None:
    """Browsers always send Origin with a cross-site or POST request; a call without one is
    not from a page, and carries no ambient authority worth refusing. A refused origin is
    logged once (see :mod:`sitecue.origins`): the page itself only sees a CORS error."""
    origin = request.headers.get("origin")
    runtime: Runtime = request.app.state.runtime
    same = runtime.settings.same_origin
    if origin is not None and not origins.allowed(request, origin, site.origins, same):
        runtime.refused_origins.log(request, site.name, origin, same)
        raise Forbidden(f"origin: '{origin}' is not one of the origins of site '{site.name}'")
    return origin


def cors(response: Response, origin: str | None) -> Response:
    """``response`` readable by the page of ``origin``, with its cookies. Called once per
    response, which has none of these headers yet: they are appended as they are, without
    MutableHeaders' search for a header to replace (on every page view)."""
    if origin:
        response.raw_headers += (
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        )
    return response


def _visitor_and_state(
    request: Request, runtime: Runtime, site: str, call: str | None = None
) -> VisitorState:
    visitor = request.cookies.get(VISITOR_COOKIE, "")
    if not _VISITOR_ID.fullmatch(visitor):
        visitor = new_visitor(runtime.keyring, site, call)
    state = runtime.codec.decode(request.cookies.get(STATE_COOKIE), visitor, site, runtime.sites)
    return state if state is not None else VisitorState(visitor=visitor)


def _set_cookies(
    request: Request,
    response: Response,
    runtime: Runtime,
    state: VisitorState,
    persist: bool,
    site: str,
    keep: set[str],
) -> None:
    """Store the state, sealed for ``site``, never evicting the rules in ``keep`` to fit
    the cap; without consent store nothing, and forget what a visitor who has just declined
    had. The values are URL-safe base64, so they need no quoting, and the header is written
    directly (http.cookies was the costliest step of a decision)."""
    attributes = f"; Path={rootpath.cookie_path(request.scope)}; HttpOnly; SameSite=Lax"
    if request.scope.get("scheme") == "https":
        attributes += "; Secure"
    if persist:
        sealed = runtime.codec.encode(state, site, keep)
        cookies = [(VISITOR_COOKIE, state.visitor), (STATE_COOKIE, sealed)]
        lifetime = f"; Max-Age={MAX_AGE_S}"
    elif VISITOR_COOKIE in request.cookies or STATE_COOKIE in request.cookies:
        cookies, lifetime = [(VISITOR_COOKIE, ""), (STATE_COOKIE, "")], "; Max-Age=0"
    else:
        return
    for name, value in cookies:
        response.raw_headers.append(
            (b"set-cookie", f"{name}={value}{lifetime}{attributes}".encode())
        )


def _recommender(runtime: Runtime, site: CompiledSite) -> Recommender | None:
    """The site's recommendations from the index this worker holds in memory (None until
    it is loaded): a decision reads no database for them."""
    index = runtime.recommendations.get(site.name)
    return partial(recommend, index) if index is not None else None


def _reads(runtime: Runtime) -> Store | None:
    """The store for a decision's reads, each bounded in time (see store.bounded); None
    while this worker spools its records, when the store is known to fail and no request
    should wait on it."""
    spool = runtime.store.writer.spool
    if spool is not None and spool.active:
        return None
    return bounded(runtime.store)


async def decide_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body = decode(await read_body(request, MAX_BODY_BYTES), DecideRequest)
    site = runtime.site(body.site)
    origin = _check_origin(request, site)
    now = _now_ms()
    state = _visitor_and_state(request, runtime, site.name, body.call)
    granted = preview.grant_in(body.page.url)
    if granted is not None:
        return cors(_preview_answer(runtime, site, state, body, granted, now), origin)
    marks = state.marks()
    rejected = None
    reads = _reads(runtime)
    if (body.token or body.identify) and consented(site, body.consent, state):
        try:
            if reads is None:
                raise StoreUnavailable("records are being spooled")
            await identify(reads, runtime.tokens, site, state, body.token, body.identify, now)
        except TokenRejected as err:
            rejected = err.reason
            log.warning(
                "email token refused (%s) for visitor %s on %s", err, state.visitor, site.name
            )
        except StoreUnavailable as err:
            # The decision goes on from the cookie, unidentified by this call: the token
            # (or claim) is not checked, nothing is linked, and the tag has already taken
            # the token out of the address bar; the next email link identifies them.
            log.warning(
                "identification of visitor %s on %s skipped, the store is unavailable: %s",
                state.visitor,
                site.name,
                err,
            )
    # Only a verified browser whose snapshot is older than the site's interval reads the
    # database here: an anonymous or merely claimed visitor never does (see refresh.py).
    # While the store fails the snapshot stays as the cookie has it (refreshed once back).
    if (
        reads is not None
        and state.verified
        and due(site, state, now)
        and consented(site, body.consent, state)
    ):
        await freshen(reads, site, state, now)
    signing = runtime.keyring.mac_key(decision_ids.PURPOSE, site.name)
    recommender = _recommender(runtime, site)
    outcome = decide(site, state, body, now, key=signing, recommender=recommender)
    state = outcome.state

    events, record = _records(site, body, outcome, now, rejected)
    await runtime.store.write(events, [record])
    for verdict in outcome.verdicts:
        runtime.metrics.decisions[(site.name, verdict.rule, _OUTCOME[verdict.matched])] += 1
    response = _answer(site, outcome, now)
    # What this view showed, dismissed or converted survives the size cap.
    keep = state.touched(marks) | {d.rule for d in outcome.decisions}
    _set_cookies(request, response, runtime, state, outcome.persist, site.name, keep)
    return cors(response, origin)


def _records(
    site: CompiledSite, body: DecideRequest, outcome: Outcome, now: int, rejected: str | None
) -> tuple[list[EventRecord], DecisionRecord]:
    """What a decision stores: the page's triggers (and the product it showed, and a token
    refused) as events, and the decision with every rule's verdict."""
    visitor = outcome.state.visitor or "-"
    # Triggers count on the day the server receives them (the visitor's clock is not
    # trusted), and are stored so, for recounting when the person is identified. A retried
    # call (the same ``call`` id) is answered again, but its records are not stored again.
    # Where the site has a catalog, an event's products are stored with it.
    catalog = site.config.catalog is not None
    events = [
        EventRecord(
            site.name,
            visitor,
            "trigger",
            now,
            name=e.name,
            value=e.value,
            key=trigger_key(body.call, str(i)),
            products=products.event_products(e.product, e.products) if catalog else None,
        )
        for i, e in enumerate(body.events)
    ]
    if outcome.viewed is not None:
        product, detail = outcome.viewed
        key = trigger_key(body.call, "product")
        events.append(
            EventRecord(
                site.name, visitor, "product_view", now, products=[product], detail=detail, key=key
            )
        )
    if rejected is not None:
        events.append(
            EventRecord(
                site.name, visitor, "token rejected", now, rejected, key=trigger_key(body.call, "t")
            )
        )
    record = DecisionRecord(
        record_id(now), site.name, visitor, now, body.page.url, outcome.verdicts, body.pageview,
        key=body.call,
    )  # fmt: skip
    return events, record


def _answer(site: CompiledSite, outcome: Outcome, now: int) -> Response:
    """The answer to the tag: what to show, and what the site has it watch."""
    state = outcome.state
    answer = DecideResponse(
        visitor=state.visitor,
        identified=state.contact is not None,
        decisions=outcome.decisions,
        triggers=list(site.watched),
        goals=list(site.goals),
        hide=list(site.hidden),
        now=now,
        reading=bool(site.reading),
        data=list(site.data_keys),
    )
    return json_response(answer)


def _preview_answer(
    runtime: Runtime,
    site: CompiledSite,
    state: VisitorState,
    body: DecideRequest,
    granted: str,
    now: int,
) -> Response:
    """A page opened from a preview link (see :mod:`sitecue.preview`): the granted rule's
    variant and every rule's verdict for the panel. Nothing is stored: no record, no
    identification, no cookie, so the preview counts in no result and no cap."""
    grant, index = preview.verify(runtime.keyring, site, granted, now)
    key = runtime.keyring.mac_key(decision_ids.PURPOSE, site.name)
    decisions, panel = preview.show(
        site, state, body, now, key, grant, index, _recommender(runtime, site)
    )
    answer = preview.PreviewResponse(
        visitor=state.visitor,
        identified=state.contact is not None,
        decisions=decisions,
        triggers=list(site.watched),
        goals=list(site.goals),
        hide=list(site.hidden),
        now=now,
        preview=panel,
    )
    return json_response(answer)


def _reporting_state(
    request: Request, runtime: Runtime, site: CompiledSite
) -> tuple[VisitorState, dict[str, tuple[str, int, int, int, int]], bool]:
    """The state a report on a decision (events, a form) updates; the marks of what it held
    before (to keep what the request touches at the cookie's cap); and whether it may be
    kept. Without consent it is a blank state, never stored."""
    state = _visitor_and_state(request, runtime, site.name)
    marks = state.marks()
    persist = consented(site, None, state)
    if not persist:
        state = VisitorState(visitor="")
    return state, marks, persist


async def events_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body = decode(await read_body(request, MAX_BODY_BYTES), EventsRequest)
    if not body.events and body.read is None:
        raise BadRequest("events: expected at least one event, or reading time in read")
    site = runtime.site(body.site)
    origin = _check_origin(request, site)
    state, marks, persist = _reporting_state(request, runtime, site)
    now = _now_ms()
    # Only feedback on decisions made for this visitor, dated near now; a bad event refuses
    # the whole batch (400 naming it) before anything is stored or counted.
    keys = runtime.keyring.mac_keys(decision_ids.PURPOSE, site.name)
    accepted = accept(body.events, keys, state.visitor, now)
    apply_feedback(site, state, accepted, now)
    if body.read and persist:
        apply_reading(site, state, body.read, body.call, now)
    visitor = state.visitor or "-"
    catalog = site.config.catalog is not None
    records = [
        EventRecord(
            site.name,
            visitor,
            e.type,
            min(e.at or now, now),
            e.name,
            e.rule,
            e.variant,
            e.decision,
            e.value if e.type == "event" else None,
            key=e.id,  # a retried event is not stored again
            **(_product_fields(e, site, runtime) if catalog else {}),
        )
        for e in accepted
    ]
    told = messages.feedback(site, accepted, visitor, state.contact, state.verified, now)
    await runtime.store.write(records, [], told)
    if told:
        runtime.wake_delivery()
    response = Response(status_code=204)
    keep = state.touched(marks)
    _set_cookies(request, response, runtime, state, persist, site.name, keep)
    return cors(response, origin)


def _product_fields(event: Feedback, site: CompiledSite, runtime: Runtime) -> dict[str, Any]:
    """What an event stores of its products: an ``event``'s (an add-to-cart, a purchase's
    lines), or the product of a ``click`` on a recommendation with the strategy that put it
    there (``detail``); other feedback is about a decision, never a product."""
    if event.type == "event":
        return {"products": products.event_products(event.product, event.products)}
    if event.type == "click" and event.product is not None:
        # A visitor reports clicks on their own decisions, and could name any product and
        # strategy: only a product this worker's index holds, under a strategy the
        # variant's widget recommends by, is counted as a recommendation's (else a plain
        # click), so nobody can steer results by strategy or fill the product rollups.
        index = runtime.recommendations.get(site.name)
        strategies = site.strategies(event.rule or "", event.variant or "")
        if event.strategy not in strategies or index is None or event.product not in index.products:
            return {}
        detail = msgspec.json.encode({"strategy": event.strategy}) if event.strategy else None
        return {"products": [event.product], "detail": detail.decode() if detail else None}
    return {}


FORMS_PER_VISITOR = RateLimit(5, 60_000)
"""A browser submits at most 5 forms a minute (counted from the stored submissions)."""
FORMS_PER_ADDRESS = RateLimit(3, 3_600_000)
"""One address (the contact a form names) is submitted at most 3 times an hour, whoever
sends it: typing someone else's address over and over floods nobody's inbox."""


async def forms_endpoint(request: Request) -> Response:
    """``POST /v1/forms``: a form of a decided widget, checked again by the config and
    committed before the answer, with the rule's conversion, the contact's answers and the
    browser's unverified link; the answers kept in the state cookie for this browser's
    rules. A wrong field answers 422 with every field's problem, and nothing is stored."""
    runtime: Runtime = request.app.state.runtime
    body = decode(await read_body(request, MAX_BODY_BYTES), FormRequest)
    site = runtime.site(body.site)
    origin = _check_origin(request, site)
    state, marks, persist = _reporting_state(request, runtime, site)
    if not any(r.id == body.rule for r in site.rules):
        raise BadRequest(f"rule: expected a rule of site '{site.name}', got '{body.rule}'")
    form = site.form(body.rule, body.variant)
    if form is None:
        raise BadRequest(
            f"variant: expected a variant of rule '{body.rule}' whose widget has a form,"
            f" got '{body.variant}'"
        )
    # Only a decision the server issued to this browser (or, without consent, to nobody in
    # particular) for this rule and variant: nobody can post forms the site never showed.
    keys = runtime.keyring.mac_keys(decision_ids.PURPOSE, site.name)
    if not decision_ids.verify(
        keys, body.decision, state.visitor or decision_ids.ANONYMOUS, body.rule, body.variant
    ):
        raise BadRequest(
            f"decision: expected the id of a decision this visitor was given for rule"
            f" '{body.rule}' and variant '{body.variant}'"
        )
    counted = runtime.metrics.forms
    if body.fields.get(HONEYPOT):
        # A bot filled the field no person sees: it is told what a person would be told,
        # so it learns nothing, and nothing is stored.
        counted[(site.name, "honeypot")] += 1
        return cors(json_response(FormResponse(ok=True, identified=False)), origin)
    try:
        checked = check_submission(form, body.fields)
    except FormInvalid:
        counted[(site.name, "invalid")] += 1
        raise
    now = _now_ms()
    visitor = state.visitor or "-"
    submission = Submission(
        record_id(now), site.name, body.rule, body.variant, body.decision, visitor,
        checked.contact, checked.values, checked.consents, now,
    )  # fmt: skip
    kept = {f.name for f in form.fields if f.type not in ("consent", "hidden")}
    answers = {k: v for k, v in checked.values.items() if k in kept}
    conversion = EventRecord(
        site.name, visitor, "convert", now, rule=body.rule, variant=body.variant,
        decision=body.decision, key=trigger_key(body.id, "form"),
    )  # fmt: skip
    # A page left open for days may still send its form: the submission is kept, but a
    # decision made before yesterday credits no conversion (its "convert <decision>" key
    # is pruned after two days, so a replay would count again).
    credited = conversion if decision_ids.current(body.decision, now) else None
    limits = (FORMS_PER_VISITOR, FORMS_PER_ADDRESS)
    told = messages.form_submitted(site, submission, form)
    done = await runtime.store.submit(submission, answers, credited, body.id, limits, told)
    if told and done.outcome == "stored":
        runtime.wake_delivery()
    if done.outcome == "limited":
        counted[(site.name, f"limited {done.limited}")] += 1
        if done.limited == "visitor":
            what = f"visitor: at most {FORMS_PER_VISITOR.most} submissions a minute"
        else:
            named = contact_field(form)
            what = (
                f"fields.{named.name if named else 'email'}: at most"
                f" {FORMS_PER_ADDRESS.most} submissions an hour for this address"
            )
        raise TooManyRequests(f"{what}; nothing was stored", math.ceil(done.retry_after_ms / 1000))
    counted[(site.name, done.outcome)] += 1
    if persist:
        state.touch(now)
        memory = state.rule(body.rule)
        memory.variant = memory.variant or body.variant
        memory.converted = memory.converted or now  # stop_after: convert holds at once
        state.answers = {
            **state.answers,
            **{k: v for k, v in answers.items() if k in site.answers},
        }
        if checked.contact is not None and not state.verified:
            # Linked, unverified: typing an address unlocks nothing the site's systems or
            # another browser hold about that person (only an email token does).
            state.contact = checked.contact
    identified = state.verified and state.contact is not None
    response = json_response(FormResponse(ok=True, identified=identified))
    keep = state.touched(marks) | {body.rule}
    _set_cookies(request, response, runtime, state, persist, site.name, keep)
    return cors(response, origin)


async def preflight(request: Request) -> Response:
    """CORS preflight: allowed for an origin that some site lists."""
    runtime: Runtime = request.app.state.runtime
    origin = request.headers.get("origin")
    same = runtime.settings.same_origin
    if origin is None or not any(
        origins.allowed(request, origin, s.origins, same) for s in runtime.sites.values()
    ):
        if origin is not None:
            runtime.refused_origins.log(request, None, origin, same)
        raise Forbidden(f"origin: '{origin}' is not an origin of any site")
    response = Response(status_code=204)
    response.headers["access-control-allow-methods"] = "POST"
    response.headers["access-control-allow-headers"] = "content-type"
    response.headers["access-control-max-age"] = "86400"
    return cors(response, origin)
