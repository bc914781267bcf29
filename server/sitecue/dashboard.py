"""The operator's dashboard: server-rendered HTML behind an admin key, no front-end build.

Sign in with an admin key (kept, signed, in an HttpOnly cookie on the dashboard's path for
12 hours); then per site: its rules and their status, the recent decisions with the reason
for every rule, and each experiment's results with an inline-SVG chart of the conversion
rate and its 95% interval per variant.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import itsdangerous
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .api.bodies import read_body
from .api.keys import authenticate_token
from .api.results import Results, experiment_results
from .errors import Unauthorized
from .rules import CompiledRule
from .stats import rate_interval
from .store import ApiKey, DecisionQuery

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["dashboard_endpoint", "login_endpoint", "logout_endpoint"]

COOKIE = "sc_admin"
SESSION_S = 12 * 3600
RECENT = 20
_env = jinja2.Environment(
    loader=jinja2.PackageLoader("sitecue", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _signer(runtime: Runtime) -> itsdangerous.TimestampSigner:
    return itsdangerous.TimestampSigner(
        runtime.settings.secrets, salt="sitecue.dashboard", digest_method=hashlib.sha256
    )


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") + "/dashboard"


async def _signed_in(request: Request, runtime: Runtime) -> ApiKey | None:
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    try:
        token = _signer(runtime).unsign(cookie, max_age=SESSION_S).decode()
        return await authenticate_token(token, runtime.store)
    except (itsdangerous.BadData, Unauthorized):
        return None  # tampered, expired, or the key is gone: sign in again


def _page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context))


async def login_endpoint(request: Request) -> Response:
    """``POST /dashboard/login`` with the form field ``key``."""
    runtime: Runtime = request.app.state.runtime
    form = parse_qs((await read_body(request, 4096)).decode("utf-8", "replace"))
    token = form.get("key", [""])[0].strip()
    try:
        await authenticate_token(token, runtime.store)
    except Unauthorized as err:
        return _page("login.html", base=_base(request), error=err.message)
    response = RedirectResponse(_base(request), status_code=303)
    secure = "; Secure" if request.url.scheme == "https" else ""
    value = _signer(runtime).sign(token).decode()
    response.raw_headers.append(
        (
            b"set-cookie",
            f"{COOKIE}={value}; Max-Age={SESSION_S}; Path={_base(request)}; HttpOnly;"
            f" SameSite=Strict{secure}".encode(),
        )
    )
    return response


async def logout_endpoint(request: Request) -> Response:
    response = RedirectResponse(_base(request), status_code=303)
    response.raw_headers.append(
        (b"set-cookie", f"{COOKIE}=; Max-Age=0; Path={_base(request)}; HttpOnly".encode())
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
    sites = []
    for name in key.sites:
        site = runtime.sites.get(name)
        if site is None:
            continue
        recent = await runtime.store.decisions(DecisionQuery(site=name, limit=RECENT))
        experiments = []
        for rule in site.rules:
            if len(rule.variants) > 1:
                results = await experiment_results(runtime, site, rule)
                experiments.append({"results": results, "chart": _chart(results)})
        sites.append(
            {
                "name": name,
                "rules": [(r, _status(r, now)) for r in site.rules],
                "recent": recent,
                "experiments": experiments,
            }
        )
    return _page(
        "dashboard.html",
        base=_base(request),
        sites=sites,
        when=lambda ms: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)),
    )
