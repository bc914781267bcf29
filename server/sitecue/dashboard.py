"""The operator's dashboard: server-rendered HTML behind an admin key, no front-end build.

Sign in with an admin key (the cookie then holds a server-side session for 12 hours, never
the key: see :mod:`sitecue.sessions`); then per site: its rules and their status, a report
panel per rule (:mod:`sitecue.panels`: a daily chart, the totals, and a link to the report
as CSV, which the session authorises; for a rule whose widgets recommend products, its
clicks, purchases and revenue per strategy), the recent decisions with the reason for every
rule, each experiment's results with an inline-SVG chart of the conversion rate and its 95%
interval per variant, and per rule with a form its
submissions: how many, and the latest ten; and per site with webhooks, the latest
deliveries (and webhooks a 410 disabled), each with a button to retry it. Each rule has a
Preview button, which makes a signed preview link (:mod:`sitecue.preview`) for the page and
variant chosen. Its forms take posts from its own origin only, and its responses carry
strict security headers (:mod:`sitecue.guard`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import origins, panels, preview, rootpath, sessions
from .api.bodies import read_body
from .api.deliveries import disabled_of_site, retry
from .api.keys import (
    NOT_A_KEY,
    REVOKED_KEY,
    UNKNOWN_KEY,
    authenticate_token,
    note_use,
    require_sites,
)
from .api.reports import (
    STRATEGY_COLUMNS,
    breakdown,
    covered,
    csv_rows,
    day_number,
    parse_range,
    report_rows,
    strategy_rows,
)
from .api.results import Results, experiment_results
from .attribution import recommends, strategy_results, summed
from .errors import BadRequest, Forbidden, NotFound, Unauthorized
from .guard import own_origin, require_same_origin
from .rules import CompiledRule
from .stats import rate_interval
from .store import ApiKey, DecisionQuery, DeliveryQuery, SubmissionQuery

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = [
    "dashboard_endpoint",
    "login_endpoint",
    "logout_endpoint",
    "preview_endpoint",
    "report_csv_endpoint",
]

log = logging.getLogger("sitecue")
RECENT = 20
LATEST_SUBMISSIONS = 10
PREVIEW_TTL_S = 3600  # a preview link made on the dashboard works for an hour
LATEST_DELIVERIES = 10
_env = jinja2.Environment(
    loader=jinja2.PackageLoader("sitecue", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _base(request: Request) -> str:
    """The dashboard's path under sitecue's root path (``/sc/dashboard``): its redirects,
    links and form actions, and its session cookie's path. A path, never a URL with the
    request's host, so no ``Host`` header can send a redirect elsewhere."""
    return rootpath.of(request.scope) + "/dashboard"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def _signed_in(request: Request, runtime: Runtime) -> ApiKey | None:
    key = await sessions.resume(runtime.store, request.cookies.get(sessions.COOKIE))
    if key is not None:
        await note_use(key, runtime.store)
    return key


def _page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context))


# The sign-in form is read by people, not API clients: why a key was refused, in plain words.
_SIGN_IN_REFUSED = {
    NOT_A_KEY: "That is not an admin key. Paste the whole key that sitecue apikey create"
    " printed: it starts with sck_.",
    UNKNOWN_KEY: "This admin key is not known here. Check that you pasted all of it, and that"
    " it was made for this server's database.",
    REVOKED_KEY: "This admin key was revoked. Ask whoever runs sitecue for a new one"
    " (sitecue apikey create).",
}


async def login_endpoint(request: Request) -> Response:
    """``POST /dashboard/login`` with the form field ``key``, from the dashboard's own page."""
    require_same_origin(request)
    runtime: Runtime = request.app.state.runtime
    form = parse_qs((await read_body(request, 4096)).decode("utf-8", "replace"))
    token = form.get("key", [""])[0].strip()
    try:
        key = await authenticate_token(token, runtime.store)
    except Unauthorized as err:
        return _page("login.html", base=_base(request), error=_SIGN_IN_REFUSED[err.message])
    # A session already in this browser ends: one browser, one session.
    await sessions.end(runtime.store, request.cookies.get(sessions.COOKIE))
    session_id = await sessions.start(runtime.store, key)
    response = RedirectResponse(_base(request), status_code=303)
    response.raw_headers.append(
        (b"set-cookie", sessions.set_cookie(session_id, _base(request), _secure(request)))
    )
    return response


async def logout_endpoint(request: Request) -> Response:
    """``POST /dashboard/logout``: the session ends on the server, the cookie in the browser."""
    require_same_origin(request)
    runtime: Runtime = request.app.state.runtime
    await sessions.end(runtime.store, request.cookies.get(sessions.COOKIE))
    response = RedirectResponse(_base(request), status_code=303)
    response.raw_headers.append(
        (b"set-cookie", sessions.clear_cookie(_base(request), _secure(request)))
    )
    return response


@dataclass
class _Bar:
    variant: str
    rate: float
    low: float
    high: float
    control: bool


def _chart(results: Results) -> dict[str, Any]:
    """Geometry of the chart: one row per variant, the rate as a dot, its interval as a bar."""
    bars = [
        _Bar(v.variant, v.rate, *rate_interval(v.conversions, v.visitors), v.control)
        for v in results.variants
    ]
    top = max([b.high for b in bars] + [0.01])
    scale = 360 / top
    return {"bars": bars, "scale": scale, "top": top, "height": 30 * len(bars) + 30}


def _status(rule: CompiledRule, now: datetime) -> str:
    schedule = rule.rule.schedule
    if schedule is not None and schedule.starts is not None and now < schedule.starts:
        return "scheduled"
    if schedule is not None and schedule.until is not None and now >= schedule.until:
        return "ended"
    return "live"


async def dashboard_endpoint(request: Request) -> Response:
    """``GET /dashboard``: the sign-in form, or the key's sites."""
    runtime: Runtime = request.app.state.runtime
    key = await _signed_in(request, runtime)
    if key is None:
        return _page("login.html", base=_base(request), error=None)
    now = datetime.now(UTC)
    # The period of the reports, as GET /v1/reports takes it (by day: the charts are daily).
    # A field the operator cleared in the period form arrives empty (from=): the default.
    chosen = {k: v for k, v in request.query_params.items() if v}
    since, until, _ = parse_range(chosen, panels.today())
    sites = []
    for name in key.sites:
        site = runtime.sites.get(name)
        if site is None:
            continue
        recent = await runtime.store.decisions(DecisionQuery(site=name, limit=RECENT))
        experiments: list[dict[str, Any]] = []
        for rule in site.rules:
            if len(rule.variants) > 1:
                try:
                    results = await experiment_results(runtime, site, rule)
                except (ArithmeticError, ValueError):
                    # Figures the data cannot give (whatever a visitor's values make of
                    # them) cost this experiment its table, not every site's whole page.
                    log.exception("dashboard: results of %s/%s unavailable", name, rule.id)
                    experiments.append({"rule": rule.id, "results": None, "chart": None})
                    continue
                experiments.append({"rule": rule.id, "results": results, "chart": _chart(results)})
        counts = await runtime.store.submission_counts(name)
        forms = []
        for rule in site.rules:
            if any(site.form(rule.id, v.id) is not None for v in rule.variants):
                latest = await runtime.store.submissions(
                    SubmissionQuery(site=name, rule=rule.id, limit=LATEST_SUBMISSIONS)
                )
                forms.append({"rule": rule.id, "count": counts.get(rule.id, 0), "latest": latest})
        deliveries = disabled = None
        if site.webhooks:
            deliveries = await runtime.store.deliveries(
                DeliveryQuery(site=name, limit=LATEST_DELIVERIES)
            )
            disabled = await disabled_of_site(runtime, site)
        reports = [
            panels.panel(
                rule,
                await runtime.store.report(name, rule.id, day_number(since), day_number(until) + 1),
                since,
                until,
            )
            for rule in site.rules
        ]
        # Per rule whose widgets recommend products: its strategies over the period.
        strategies = {
            rule.id: strategy_results(
                site,
                rule,
                summed(
                    await runtime.store.strategy_report(
                        name, rule.id, day_number(since), day_number(until) + 1
                    )
                ),
            )
            for rule in site.rules
            if recommends(site, rule)
        }
        own = own_origin(request)
        served = origins.allowed(request, own, site.origins, runtime.settings.same_origin)
        sites.append(
            {
                "name": name,
                # Where a preview opens by default: this host when the site allows it (the demo).
                "page": (own if served else min(site.origins, default=own)) + "/",
                "deliveries": deliveries,
                "disabled": disabled,
                "rules": [(r, _status(r, now)) for r in site.rules],
                "recent": recent,
                "experiments": experiments,
                "reports": reports,
                "strategies": strategies,
                "forms": forms,
            }
        )
    return _page(
        "dashboard.html",
        base=_base(request),
        sites=sites,
        config=runtime.config,  # the live config version this worker serves
        period={"from": since.isoformat(), "to": until.isoformat()},
        when=lambda ms: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)),
    )


async def preview_endpoint(request: Request) -> Response:
    """``POST /dashboard/preview`` (site, rule, variant, url) from the dashboard's own page:
    a preview link for a signed-in operator whose key covers the site, valid for an hour."""
    require_same_origin(request)
    runtime: Runtime = request.app.state.runtime
    key = await _signed_in(request, runtime)
    if key is None:
        raise Unauthorized("session: sign in to the dashboard first")
    form = parse_qs((await read_body(request, 4096)).decode("utf-8", "replace"))
    name, rule_id, variant, url = (form.get(f, [""])[0] for f in ("site", "rule", "variant", "url"))
    site = runtime.sites.get(name)
    if site is None or name not in key.sites:
        raise Forbidden(f"site: this key does not cover a site named '{name[:64]}'")
    rule = next((r for r in site.rules if r.id == rule_id), None)
    if rule is None:
        raise BadRequest(f"rule: expected a rule of site '{name}', got '{rule_id[:64]}'")
    if variant not in [v.id for v in rule.variants]:
        raise BadRequest(f"variant: expected a variant of rule '{rule_id}', got '{variant[:64]}'")
    parts = urlsplit(url)
    page = f"{parts.scheme}://{parts.netloc}"
    if not origins.allowed(request, page, site.origins, runtime.settings.same_origin):
        raise BadRequest(f"url: expected a page of site '{name}' ({', '.join(site.origins)})")
    expires = int(time.time()) + PREVIEW_TTL_S
    grant = preview.mint(runtime.keyring, name, rule_id, variant, expires)
    return _page(
        "preview.html",
        base=_base(request),
        site=name,
        rule=rule_id,
        variant=variant,
        link=preview.link(url, grant),
        expires=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires)),
    )


async def dashboard_retry_endpoint(request: Request) -> Response:
    """``POST /dashboard/deliveries/{id}/retry`` with the form field ``site``: as
    ``POST /v1/deliveries/{id}/retry``, from the dashboard's own page only."""
    require_same_origin(request)  # a page elsewhere cannot make a signed-in browser post
    runtime: Runtime = request.app.state.runtime
    key = await _signed_in(request, runtime)
    if key is None:
        raise Unauthorized("sign in to the dashboard first")
    form = parse_qs((await read_body(request, 4096)).decode("utf-8", "replace"))
    name = form.get("site", [""])[0]
    require_sites(key, {name})
    await retry(runtime, runtime.site(name), request.path_params["id"])
    return RedirectResponse(_base(request), status_code=303)


async def report_csv_endpoint(request: Request) -> Response:
    """``GET /dashboard/report.csv?site=&rule=&from=&to=[&interval=week][&breakdown=strategy]``:
    a rule's report as CSV, the same bytes as ``GET /v1/reports?format=csv``, for a
    signed-in operator whose key covers the site: the dashboard's link to it needs no bearer
    key. A GET that changes nothing; the session cookie is SameSite=Strict, so another
    site's link to it comes without the session and is refused."""
    runtime: Runtime = request.app.state.runtime
    key = await _signed_in(request, runtime)
    if key is None:
        raise Unauthorized("session: sign in to the dashboard first")
    params = request.query_params
    name, rule_id = params.get("site", ""), params.get("rule", "")
    site = runtime.sites.get(name)
    if site is None or name not in key.sites:  # no telling which sites exist
        raise Forbidden(f"site: this key does not cover a site named '{name[:64]}'")
    rule = next((r for r in site.rules if r.id == rule_id), None)
    if rule is None:
        raise NotFound(f"rule: site '{name}' has no rule '{rule_id[:64]}'")
    since, until, interval = parse_range(params, panels.today())
    by = breakdown(params)
    since, until = covered(since, until, interval)
    if by == "strategy":
        body = csv_rows(
            await strategy_rows(runtime, site, rule, since, until, interval),
            columns=STRATEGY_COLUMNS,
        )
        file = f"{name}-{rule.id}-{since}-{until}-strategies.csv"
    else:
        body = csv_rows(await report_rows(runtime, site, rule, since, until, interval))
        file = f"{name}-{rule.id}-{since}-{until}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{file}"'},
    )
