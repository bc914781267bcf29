"""Counters and histograms for ``GET /metrics``, in Prometheus' text format.

Plain dictionaries updated on the request path (an increment each, no locks: one event loop
per process) and rendered only when scraped. Each worker process counts its own requests.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response

from .conditions import REGEX_TIMEOUTS
from .errors import RequestError, StoreUnavailable

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)

Endpoint = Callable[[Request], Awaitable[Response]]
Labels = tuple[tuple[str, str], ...]


class Histogram:
    """Observations counted into cumulative buckets, as Prometheus expects them."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: Labels) -> Iterable[str]:
        running = 0
        for bound, count in zip((*self.bounds, "+Inf"), self.counts, strict=True):
            running += count
            yield f"{name}_bucket{_labels((*labels, ('le', str(bound))))} {running}"
        yield f"{name}_sum{_labels(labels)} {self.sum:.6f}"
        yield f"{name}_count{_labels(labels)} {running}"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (
        (k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) for k, v in labels
    )
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"


class Metrics:
    """Everything /metrics reports; the app and the store's writer feed it."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()  # (method, route, status)
        self.latency: dict[str, Histogram] = {}  # route -> seconds
        self.decisions: Counter[tuple[str, str, str]] = Counter()  # (site, rule, shown|not)
        self.evictions: Counter[tuple[str, str]] = Counter()  # (site, kind): the state cookie's cap
        self.batches = Histogram(BATCH_BUCKETS)
        # (site, outcome): stored, repeated, invalid, honeypot, limited visitor|address
        self.forms: Counter[tuple[str, str]] = Counter()
        # (site, webhook, outcome): delivered, failed (an attempt, tried again), dead, disabled,
        # skipped (the body template sent nothing)
        self.deliveries: Counter[tuple[str, str, str]] = Counter()

    def timed(self, route: str, endpoint: Endpoint) -> Endpoint:
        """``endpoint``, counting its requests by status and timing them under ``route``."""
        latency = self.latency.setdefault(route, Histogram(LATENCY_BUCKETS))

        async def timed_endpoint(request: Request) -> Response:
            start = time.perf_counter()
            status = 500  # unless the endpoint answers, or refuses on purpose
            try:
                response = await endpoint(request)
                status = response.status_code
                return response
            except RequestError as err:
                status = err.status
                raise
            except StoreUnavailable:
                status = 503
                raise
            finally:
                latency.observe(time.perf_counter() - start)
                self.requests[(request.method, route, status)] += 1

        return timed_endpoint

    def render(
        self,
        sites: set[str],
        rejects: dict[str, Counter[str]],
        queue_depth: int,
        outbox: dict[tuple[str, str], int] | None = None,
        spool: int = 0,
    ) -> str:
        """The text exposition; series labelled with a site only for ``sites``. ``rejects``
        maps a kind of credential (cookie, token) to its rejections counted by reason;
        ``outbox`` the pending webhook messages per (site, webhook)."""
        out: list[str] = []

        def family(name: str, kind: str, help_: str) -> None:
            out.extend((f"# HELP {name} {help_}", f"# TYPE {name} {kind}"))

        family("sitecue_requests_total", "counter", "HTTP requests answered, by route and status.")
        for (method, route, status), n in sorted(self.requests.items()):
            labels = (("method", method), ("route", route), ("status", str(status)))
            out.append(f"sitecue_requests_total{_labels(labels)} {n}")
        family("sitecue_request_seconds", "histogram", "Time to answer a request, by route.")
        for route, histogram in sorted(self.latency.items()):
            out.extend(histogram.lines("sitecue_request_seconds", (("route", route),)))
        family("sitecue_decisions_total", "counter", "Rule verdicts, by site, rule and outcome.")
        for (site, rule, outcome), n in sorted(self.decisions.items()):
            if site in sites:
                labels = (("site", site), ("rule", rule), ("outcome", outcome))
                out.append(f"sitecue_decisions_total{_labels(labels)} {n}")
        family("sitecue_rejected_total", "counter", "Cookies and tokens refused, by reason.")
        for kind, reasons in sorted(rejects.items()):
            for reason, n in sorted(reasons.items()):
                out.append(
                    f"sitecue_rejected_total{_labels((('kind', kind), ('reason', reason)))} {n}"
                )
        family(
            "sitecue_state_evictions_total",
            "counter",
            "What the state cookie's size cap dropped, by site and kind.",
        )
        for (site, kind), n in sorted(self.evictions.items()):
            if site in sites:
                where = _labels((("site", site), ("kind", kind)))
                out.append(f"sitecue_state_evictions_total{where} {n}")
        family("sitecue_regex_timeouts_total", "counter", "$regex searches cut off, by site.")
        for site, n in sorted(REGEX_TIMEOUTS.items()):
            if site in sites:
                out.append(f"sitecue_regex_timeouts_total{_labels((('site', site),))} {n}")
        family("sitecue_form_submissions_total", "counter", "Form submissions, by outcome.")
        for (site, outcome), n in sorted(self.forms.items()):
            if site in sites:
                where = _labels((("site", site), ("outcome", outcome)))
                out.append(f"sitecue_form_submissions_total{where} {n}")
        family(
            "sitecue_webhook_deliveries_total",
            "counter",
            "Webhook delivery attempts, by site, webhook and outcome.",
        )
        for (site, webhook, outcome), n in sorted(self.deliveries.items()):
            if site in sites:
                where = _labels((("site", site), ("webhook", webhook), ("outcome", outcome)))
                out.append(f"sitecue_webhook_deliveries_total{where} {n}")
        family("sitecue_outbox_pending", "gauge", "Webhook messages waiting to be delivered.")
        for (site, webhook), n in sorted((outbox or {}).items()):
            if site in sites:
                where = _labels((("site", site), ("webhook", webhook)))
                out.append(f"sitecue_outbox_pending{where} {n}")
        family("sitecue_writer_queue_records", "gauge", "Records waiting for the next commit.")
        out.append(f"sitecue_writer_queue_records {queue_depth}")
        family(
            "sitecue_spool_records",
            "gauge",
            "Records spooled locally while the store failed, not yet forwarded to it.",
        )
        out.append(f"sitecue_spool_records {spool}")
        family("sitecue_writer_batch_records", "histogram", "Records committed per group.")
        out.extend(self.batches.lines("sitecue_writer_batch_records", ()))
        return "\n".join(out) + "\n"
