"""Counters, histograms and gauges for ``GET /metrics``, in Prometheus' text format.

Updated on the request path (an increment each, no locks: one event loop per process) and
written through to this worker's file (:mod:`sitecue.metric_files`), so that a scrape answered
by any worker of a node reports the node's totals over all its workers.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .conditions import REGEX_TIMEOUTS
from .errors import RequestError, StoreUnavailable
from .metric_files import COUNTER, GAUGE, Key, Tally, WorkerFile, node_values

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
PUBLISH_S = 1.0  # how often a worker writes its gauges for the node's other workers to read

Endpoint = Callable[[Request], Awaitable[Response]]
Labels = tuple[tuple[str, str], ...]


class Histogram:
    """Observations counted into buckets, written through to ``file`` (when given) as
    series ``family_bucket`` (per bucket, not cumulative) and ``family_sum``."""

    def __init__(
        self,
        bounds: tuple[float, ...],
        family: str = "",
        labels: tuple[str, ...] = (),
        file: WorkerFile | None = None,
    ) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self._file = file
        if file is not None:
            self._buckets = [
                file.slot((COUNTER, f"{family}_bucket", *labels, le)) for le in _les(bounds)
            ]
            self._sum = file.slot((COUNTER, f"{family}_sum", *labels))

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        self.counts[i] += 1
        self.sum += value
        if self._file is not None:
            values = self._file.values
            values[self._buckets[i]] = self.counts[i]
            values[self._sum] = self.sum

    def lines(self, name: str, labels: Labels) -> Iterable[str]:
        return _histogram_lines(name, labels, self.bounds, self.counts, self.sum)


def _les(bounds: tuple[float, ...]) -> list[str]:
    return [*(str(b) for b in bounds), "+Inf"]


def _histogram_lines(
    name: str, labels: Labels, bounds: tuple[float, ...], counts: Sequence[float], total: float
) -> Iterable[str]:
    running = 0.0
    for le, count in zip(_les(bounds), counts, strict=True):
        running += count
        yield f"{name}_bucket{_labels((*labels, ('le', le)))} {_number(running)}"
    yield f"{name}_sum{_labels(labels)} {total:.6f}"
    yield f"{name}_count{_labels(labels)} {_number(running)}"


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (
        (k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) for k, v in labels
    )
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"


# Every family /metrics reports, in order: (name, type, help, label names). A family with a
# ``site`` label shows only the series of the sites the scraping key covers.
FAMILIES: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("sitecue_requests_total", "counter", "HTTP requests answered, by route and status.",
     ("method", "route", "status")),
    ("sitecue_request_seconds", "histogram", "Time to answer a request, by route.", ("route",)),
    ("sitecue_decisions_total", "counter", "Rule verdicts, by site, rule and outcome.",
     ("site", "rule", "outcome")),
    ("sitecue_rejected_total", "counter", "Cookies and tokens refused, by reason.",
     ("kind", "reason")),
    ("sitecue_state_evictions_total", "counter",
     "What the state cookie's size cap dropped, by site and kind.", ("site", "kind")),
    ("sitecue_regex_timeouts_total", "counter", "$regex searches cut off, by site.", ("site",)),
    ("sitecue_form_submissions_total", "counter", "Form submissions, by outcome.",
     ("site", "outcome")),
    ("sitecue_webhook_deliveries_total", "counter",
     "Webhook delivery attempts, by site, webhook and outcome.", ("site", "webhook", "outcome")),
]  # fmt: skip
BUCKETS = {
    "sitecue_request_seconds": LATENCY_BUCKETS,
    "sitecue_writer_batch_records": BATCH_BUCKETS,
}


class Metrics:
    """Everything /metrics reports; the app and the store's writer feed it. ``directory``
    is the node's (see :mod:`sitecue.metric_files`); None keeps this process's alone."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.file = WorkerFile(directory)

        def tally(family: str, prefix: tuple[str, ...] = ()) -> Tally[Any]:
            return Tally(family, prefix, self.file)

        self.requests: Tally[tuple[str, str, int]] = tally("sitecue_requests_total")
        self.latency: dict[str, Histogram] = {}  # route -> seconds
        # (site, rule, shown|not)
        self.decisions: Tally[tuple[str, str, str]] = tally("sitecue_decisions_total")
        # (site, kind): the state cookie's cap
        self.evictions: Tally[tuple[str, str]] = tally("sitecue_state_evictions_total")
        # reason, per kind of credential (the cookie codec's and the token codec's)
        self.rejected: dict[str, Tally[str]] = {
            kind: tally("sitecue_rejected_total", (kind,)) for kind in ("cookie", "token")
        }
        self.batches = Histogram(BATCH_BUCKETS, "sitecue_writer_batch_records", (), self.file)
        # (site, outcome): stored, repeated, invalid, honeypot, limited visitor|address
        self.forms: Tally[tuple[str, str]] = tally("sitecue_form_submissions_total")
        # (site, webhook, outcome): delivered, failed (an attempt, tried again), dead, disabled,
        # skipped (the body template sent nothing)
        self.deliveries: Tally[tuple[str, str, str]] = tally("sitecue_webhook_deliveries_total")
        REGEX_TIMEOUTS.attach(self.file)  # counted by conditions, for the process's app
        self._gauges: dict[str, tuple[str, Callable[[], float], int]] = {}
        self._publisher: asyncio.Task[None] | None = None

    def gauge(self, name: str, help_: str, read: Callable[[], float]) -> None:
        """Report ``read()`` (this worker's value) as gauge ``name``, summed over the node's
        live workers; read when scraped here, and every PUBLISH_S for the other workers.

            metrics.gauge("sitecue_spool_records", "Records waiting in the spool.", spool.depth)
        """
        self._gauges[name] = (help_, read, self.file.slot((GAUGE, name)))

    def publish(self) -> None:
        """Write this worker's gauges where the node's other workers read them."""
        for _, read, offset in self._gauges.values():
            self.file.set(offset, float(read()))

    def start(self) -> None:
        """Publish the gauges every PUBLISH_S until :meth:`stop` (an app's lifespan)."""

        async def publishing() -> None:
            while True:
                self.publish()
                await asyncio.sleep(PUBLISH_S)

        self._publisher = asyncio.get_running_loop().create_task(publishing())

    async def stop(self) -> None:
        """Stop publishing and let go of the file: its counters keep counting for the
        node, its gauges stop (this worker no longer lives)."""
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None
        self.file.close()

    def timed(self, route: str, endpoint: Endpoint) -> Endpoint:
        """``endpoint``, counting its requests by status and timing them under ``route``."""
        latency = self.latency.setdefault(
            route, Histogram(LATENCY_BUCKETS, "sitecue_request_seconds", (route,), self.file)
        )

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

    def render(self, sites: set[str], outbox: dict[tuple[str, str], int] | None = None) -> str:
        """The text exposition of the node (every worker's counters, the live workers'
        gauges); series labelled with a site only for ``sites``. ``outbox`` is the pending
        webhook messages per (site, webhook), read from the store."""
        self.publish()  # this worker's gauges as they are now
        series: dict[str, list[tuple[Key, float]]] = {}
        for key, value in node_values(self.directory, self.file).items():
            series.setdefault(key[1], []).append((key[2:], value))
        out: list[str] = []

        def family(name: str, kind: str, help_: str) -> None:
            out.extend((f"# HELP {name} {help_}", f"# TYPE {name} {kind}"))

        def shown(names: tuple[str, ...], values: tuple[str, ...]) -> bool:
            return "site" not in names or values[names.index("site")] in sites

        for name, kind, help_, names in FAMILIES:
            family(name, kind, help_)
            if kind == "histogram":
                out.extend(self._histogram(name, names, series, shown))
                continue
            for values, n in sorted(series.get(name, [])):
                if len(values) == len(names) and shown(names, values):
                    out.append(
                        f"{name}{_labels(tuple(zip(names, values, strict=True)))} {_number(n)}"
                    )
        family("sitecue_outbox_pending", "gauge", "Webhook messages waiting to be delivered.")
        for (site, webhook), n in sorted((outbox or {}).items()):
            if site in sites:
                where = _labels((("site", site), ("webhook", webhook)))
                out.append(f"sitecue_outbox_pending{where} {n}")
        for name, (help_, _, _) in self._gauges.items():
            family(name, "gauge", help_)
            out.append(f"{name} {_number(sum(n for _, n in series.get(name, [])))}")
        family("sitecue_writer_batch_records", "histogram", "Records committed per group.")
        out.extend(self._histogram("sitecue_writer_batch_records", (), series, shown))
        return "\n".join(out) + "\n"

    @staticmethod
    def _histogram(
        name: str,
        names: tuple[str, ...],
        series: dict[str, list[tuple[Key, float]]],
        shown: Callable[[tuple[str, ...], tuple[str, ...]], bool],
    ) -> Iterable[str]:
        bounds = BUCKETS[name]
        index = {le: i for i, le in enumerate(_les(bounds))}
        counts: dict[Key, list[float]] = {}
        for values, n in series.get(f"{name}_bucket", []):
            labels, le = values[:-1], values[-1]
            if len(labels) == len(names) and le in index and shown(names, labels):
                counts.setdefault(labels, [0.0] * len(index))[index[le]] += n
        sums = dict(series.get(f"{name}_sum", []))
        for labels, buckets in sorted(counts.items()):
            yield from _histogram_lines(
                name, tuple(zip(names, labels, strict=True)), bounds, buckets, sums.get(labels, 0.0)
            )
