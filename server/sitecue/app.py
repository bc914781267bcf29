"""The Starlette app: the tag's endpoints (``/cue.js``, ``/v1/decide``, ``/v1/events``),
``/healthz``, and the admin ones from :mod:`sitecue.api`.

Each endpoint decodes its body (capped, typed), checks the caller's ``Origin`` against the
site, runs the pure decision code, commits the records, and only then answers with the
updated state cookie. Errors raised on purpose map to HTTP in one place, here.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import math
import re
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import decision_ids, preview
from .api.admin import reload_endpoint
from .api.bodies import ErrorBody, FieldErrors, Health, decode, json_response, read_body
from .api.contact_events import contact_events_endpoint
from .api.contacts import contact_endpoint, export_endpoint, import_endpoint
from .api.decisions import decisions_endpoint
from .api.deliveries import deliveries_endpoint, retry_endpoint
from .api.holdout import holdout_endpoint
from .api.keys import authenticate, require_sites
from .api.openapi import openapi_endpoint
from .api.reports import reports_endpoint
from .api.results import results_endpoint
from .api.submissions import submissions_endpoint
from .api.tokens import tokens_endpoint
from .dashboard import (
    dashboard_endpoint,
    dashboard_retry_endpoint,
    login_endpoint,
    logout_endpoint,
    preview_endpoint,
    report_csv_endpoint,
)
from .decide import apply_feedback, apply_reading, consented, decide
from .errors import (
    BadRequest,
    Forbidden,
    FormInvalid,
    NotFound,
    RequestError,
    StoreUnavailable,
    TooManyRequests,
)
from .feedback import accept
from .forms import HONEYPOT, check_submission, contact_field
from .guard import DashboardHeaders
from .identity import identify
from .ids import record_id
from .keyring import Keyring
from .metrics import Metrics
from .protocol import (
    MAX_BODY_BYTES,
    DecideRequest,
    DecideResponse,
    EventsRequest,
    FormRequest,
    FormResponse,
)
from .refresh import due, freshen
from .retention import Retention
from .retries import new_visitor, trigger_key
from .rules import CompiledSite, load_sites
from .runtime import Runtime, goals_of
from .settings import Settings
from .state import MAX_AGE_S, StateCodec, VisitorState
from .store import DecisionRecord, EventRecord, RateLimit, Submission, open_store
from .tokens import TokenCodec, TokenRejected
from .webhooks import messages
from .webhooks.delivery import Deliverer

__all__ = ["build_app"]

log = logging.getLogger("sitecue")

VISITOR_COOKIE = "sc_vid"
STATE_COOKIE = "sc_s"
_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_OUTCOME = {True: "shown", False: "not shown"}


@dataclass(frozen=True)
class _Script:
    """The tag, compressed both ways once, and named by its content's hash."""

    body: bytes
    gzipped: bytes
    brotli: bytes
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def _load_script() -> _Script:
    static = files("sitecue").joinpath("static")
    body = static.joinpath("cue.js").read_bytes()
    brotli = static.joinpath("cue.js.br").read_bytes()
    version = hashlib.sha256(body).hexdigest()[:16]
    return _Script(body, gzip.compress(body, 9, mtime=0), brotli, version)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_origin(request: Request, site: CompiledSite) -> str | None:
    """Browsers always send Origin with a cross-site or POST request; a call without one is
    not from a page, and carries no ambient authority worth refusing."""
    origin = request.headers.get("origin")
    if origin is not None and origin not in site.origins:
        raise Forbidden(f"origin: '{origin}' is not one of the origins of site '{site.name}'")
    return origin


def _cors(response: Response, origin: str | None) -> Response:
    if origin:
        response.headers["access-control-allow-origin"] = origin
        response.headers["access-control-allow-credentials"] = "true"
        response.headers["vary"] = "Origin"
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
    attributes = f"; Path={request.scope.get('root_path', '').rstrip('/')}/; HttpOnly; SameSite=Lax"
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


async def decide_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body = decode(await read_body(request, MAX_BODY_BYTES), DecideRequest)
    site = runtime.site(body.site)
    origin = _check_origin(request, site)
    now = _now_ms()
    state = _visitor_and_state(request, runtime, site.name, body.call)
    granted = preview.grant_in(body.page.url)
    if granted is not None:
        return _cors(_preview_answer(runtime, site, state, body, granted, now), origin)
    marks = state.marks()
    rejected = None
    if (body.token or body.identify) and consented(site, body.consent, state):
        try:
            await identify(
                runtime.store, runtime.tokens, site, state, body.token, body.identify, now
            )
        except TokenRejected as err:
            rejected = err.reason
            log.warning(
                "email token refused (%s) for visitor %s on %s", err, state.visitor, site.name
            )
    # Only a verified browser whose snapshot is older than the site's interval reads the
    # database here: an anonymous or merely claimed visitor never does (see refresh.py).
    if state.verified and due(site, state, now) and consented(site, body.consent, state):
        await freshen(runtime.store, site, state, now)
    outcome = decide(
        site, state, body, now, key=runtime.keyring.mac_key(decision_ids.PURPOSE, site.name)
    )
    state = outcome.state

    visitor = state.visitor or "-"
    # Triggers count on the day the server receives them (the visitor's clock is not
    # trusted), and are stored so, for recounting when the person is identified. A retried
    # call (the same ``call`` id) is answered again, but its records are not stored again.
    events = [
        EventRecord(
            site.name,
            visitor,
            "trigger",
            now,
            name=e.name,
            value=e.value,
            key=trigger_key(body.call, str(i)),
        )
        for i, e in enumerate(body.events)
    ]
    if rejected is not None:
        events.append(
            EventRecord(
                site.name, visitor, "token rejected", now, rejected, key=trigger_key(body.call, "t")
            )
        )
    record = DecisionRecord(
        record_id(now),
        site.name,
        visitor,
        now,
        body.page.url,
        outcome.verdicts,
        body.pageview,
        key=body.call,
    )
    await runtime.store.write(events, [record])
    for verdict in outcome.verdicts:
        runtime.metrics.decisions[(site.name, verdict.rule, _OUTCOME[verdict.matched])] += 1

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
    response = json_response(answer)
    # What this view showed, dismissed or converted survives the size cap.
    keep = state.touched(marks) | {d.rule for d in outcome.decisions}
    _set_cookies(request, response, runtime, state, outcome.persist, site.name, keep)
    return _cors(response, origin)


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
    decisions, panel = preview.show(site, state, body, now, key, grant, index)
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
            key=e.id,  # a retried event is not stored again
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
    return _cors(response, origin)


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
        return _cors(json_response(FormResponse(ok=True, identified=False)), origin)
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
    return _cors(response, origin)


async def preflight(request: Request) -> Response:
    """CORS preflight: allowed for an origin that some site lists."""
    runtime: Runtime = request.app.state.runtime
    origin = request.headers.get("origin")
    if origin is None or not any(origin in s.origins for s in runtime.sites.values()):
        raise Forbidden(f"origin: '{origin}' is not an origin of any site")
    response = Response(status_code=204)
    response.headers["access-control-allow-methods"] = "POST"
    response.headers["access-control-allow-headers"] = "content-type"
    response.headers["access-control-max-age"] = "86400"
    return _cors(response, origin)


async def script_endpoint(request: Request) -> Response:
    """The tag. ``/cue.js`` (what sites paste) is kept 5 minutes, then revalidated with its
    ETag, so an upgrade reaches every page within minutes; ``/cue.<version>.js`` (the
    version is the ETag) never changes and is kept for a year."""
    script: _Script = request.app.state.script
    version = request.path_params.get("version")
    if version is not None and version != script.version:
        raise NotFound(f"version: this server serves cue.{script.version}.js")
    headers = {
        "etag": script.etag,
        "cache-control": "public, max-age=31536000, immutable"
        if version
        else "public, max-age=300",
        "vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == script.etag:
        return Response(status_code=304, headers=headers)
    body = script.body
    accepted = request.headers.get("accept-encoding", "")
    if "br" in accepted:
        body, headers["content-encoding"] = script.brotli, "br"
    elif "gzip" in accepted:
        body, headers["content-encoding"] = script.gzipped, "gzip"
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


async def panel_endpoint(request: Request) -> Response:
    """``/preview.js``: the preview panel, which the tag loads only on a preview link (it is
    not part of the tag, so pages pay nothing for it)."""
    return Response(
        request.app.state.panel,
        media_type="text/javascript; charset=utf-8",
        headers={"cache-control": "public, max-age=300"},
    )


async def health_endpoint(request: Request) -> Response:
    """``GET /healthz``: 200 when the store answers, 503 when it does not."""
    runtime: Runtime = request.app.state.runtime
    ok = await runtime.store.healthy()
    return json_response(
        Health("ok" if ok else "store unavailable", sorted(runtime.sites)), 200 if ok else 503
    )


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: Prometheus text, behind an admin key; series labelled with a site
    only for the key's sites (or the one ``site`` asked for, which the key must cover)."""
    runtime: Runtime = request.app.state.runtime
    key = await authenticate(request, runtime.store)
    site = request.query_params.get("site")
    if site == "":
        raise BadRequest("site: expected a site name, or no site parameter for all the key's")
    sites = {site} if site is not None else set(key.sites)
    require_sites(key, sites)
    # Only configured webhooks' messages: those of a webhook taken out of the config wait
    # for nothing (kept until it is configured again) and would hold the gauge up forever.
    configured = {(s.name, h.id) for s in runtime.sites.values() for h in s.webhooks}
    outbox = {k: n for k, n in (await runtime.store.outbox_depth()).items() if k in configured}
    text = runtime.metrics.render(
        sites,
        {"cookie": runtime.codec.rejected, "token": runtime.tokens.rejected},
        runtime.store.writer.depth,
        outbox,
    )
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


async def _request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return json_response(ErrorBody(exc.message), exc.status)


async def _form_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormInvalid)
    return _cors(json_response(FieldErrors(exc.message, exc.fields), exc.status), _origin(request))


async def _too_many(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TooManyRequests)
    response = json_response(ErrorBody(exc.message), exc.status)
    response.headers["retry-after"] = str(exc.retry_after)
    response.headers["access-control-expose-headers"] = "Retry-After"  # for the page's script
    return _cors(response, _origin(request))


def _origin(request: Request) -> str | None:
    """The caller's origin when some site lists it: a 4xx it must read (a field's problem,
    a rate limit) is readable by the page's script."""
    runtime: Runtime = request.app.state.runtime
    origin = request.headers.get("origin")
    listed = origin is not None and any(origin in s.origins for s in runtime.sites.values())
    return origin if listed else None


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The database is stopped, full or read-only: nothing of this request was stored, and
    it may be sent again. The cause is logged, not answered: it may name hosts and files."""
    assert isinstance(exc, StoreUnavailable)
    log.warning("%s %s: store unavailable: %s", request.method, request.url.path, exc)
    body = ErrorBody("store: unavailable, nothing was stored; retry later")
    response = json_response(body, 503)
    response.headers["retry-after"] = str(exc.retry_after)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, a method the path does not take), in the same
    JSON shape as ours."""
    assert isinstance(exc, HTTPException)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    if exc.headers and "Allow" in exc.headers:
        message += f"; this path takes {exc.headers['Allow']}"
    response = json_response(ErrorBody(message), exc.status_code)
    response.headers.update(exc.headers or {})
    return response


def build_app(settings: Settings) -> Starlette:
    """The sitecue ASGI app. Sites are compiled before it starts, so a bad config fails fast."""
    sites = load_sites(settings.config_dir, settings.allow_origins, Keyring(settings.secrets))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        store = await open_store(settings.db, goals_of(sites))
        store.writer.on_commit = metrics.batches.observe
        codec = StateCodec(settings.secrets, metrics.evictions)
        tokens = TokenCodec(settings.secrets)
        runtime = app.state.runtime = Runtime(settings, sites, codec, store, metrics, tokens)
        deliverer = Deliverer(store, lambda: runtime.sites, metrics)
        deliverer.start()
        runtime.wake_delivery = deliverer.wake
        retention = Retention(store, lambda: runtime.sites)
        retention.start()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, runtime.reload)
            hangup = True
        except (ValueError, RuntimeError, NotImplementedError):
            hangup = False  # not the main thread (as in tests), or no SIGHUP on this platform
        try:
            yield {}
        finally:
            if hangup:
                loop.remove_signal_handler(signal.SIGHUP)
            await deliverer.stop()
            await retention.stop()
            await store.close()

    metrics = Metrics()
    routes = [
        ("/cue.js", script_endpoint, ["GET"]),
        ("/cue.{version}.js", script_endpoint, ["GET"]),
        ("/preview.js", panel_endpoint, ["GET"]),
        ("/v1/decide", decide_endpoint, ["POST"]),
        ("/v1/decide", preflight, ["OPTIONS"]),
        ("/v1/events", events_endpoint, ["POST"]),
        ("/v1/events", preflight, ["OPTIONS"]),
        ("/v1/forms", forms_endpoint, ["POST"]),
        ("/v1/forms", preflight, ["OPTIONS"]),
        ("/v1/submissions", submissions_endpoint, ["GET"]),
        ("/v1/reload", reload_endpoint, ["POST"]),
        ("/v1/decisions", decisions_endpoint, ["GET"]),
        ("/v1/deliveries", deliveries_endpoint, ["GET"]),
        ("/v1/deliveries/{id}/retry", retry_endpoint, ["POST"]),
        ("/v1/tokens", tokens_endpoint, ["POST"]),
        ("/v1/results", results_endpoint, ["GET"]),
        ("/v1/results/holdout", holdout_endpoint, ["GET"]),
        ("/v1/reports", reports_endpoint, ["GET"]),
        ("/v1/contacts/import", import_endpoint, ["POST"]),
        ("/v1/contacts/{contact}", contact_endpoint, ["GET", "PUT", "PATCH", "DELETE"]),
        ("/v1/contacts/{contact}/export", export_endpoint, ["GET"]),
        ("/v1/contacts/{contact}/events", contact_events_endpoint, ["POST"]),
        ("/dashboard", dashboard_endpoint, ["GET"]),
        ("/dashboard/login", login_endpoint, ["POST"]),
        ("/dashboard/logout", logout_endpoint, ["POST"]),
        ("/dashboard/preview", preview_endpoint, ["POST"]),
        ("/dashboard/report.csv", report_csv_endpoint, ["GET"]),
        ("/dashboard/deliveries/{id}/retry", dashboard_retry_endpoint, ["POST"]),
        ("/openapi.json", openapi_endpoint, ["GET"]),
        ("/metrics", metrics_endpoint, ["GET"]),
        ("/healthz", health_endpoint, ["GET"]),
    ]
    app = Starlette(
        routes=[
            Route(path, metrics.timed(path, endpoint), methods=methods)
            for path, endpoint, methods in routes
        ],
        exception_handlers={
            RequestError: _request_error,
            FormInvalid: _form_invalid,
            TooManyRequests: _too_many,
            HTTPException: _http_error,
            StoreUnavailable: _store_unavailable,
        },
        middleware=[Middleware(DashboardHeaders)],
        lifespan=lifespan,
    )
    app.state.script = _load_script()
    app.state.panel = files("sitecue").joinpath("static", "preview.js").read_bytes()
    return app
