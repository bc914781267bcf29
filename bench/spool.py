"""The spool, measured against the writer it stands in for, in the same run on this
machine, on PostgreSQL (fsync on) and on the spool's own disk:

- normal: the writer committing to PostgreSQL, without a spool attached and with one (the
  spool's cost while the store is up: a key check per record and one task per group);
- spooling: the store refusing every commit at once (as a stopped PostgreSQL does: its
  socket is gone), so each group goes to the spool, fsynced, before its requests are answered;
- draining: the store back, the forwarder replaying what was spooled, while no new requests
  come in.

Each request writes what a page view writes (a trigger event and a decision record, keyed
by the call's id as the tag sends it) and waits for its commit, 500 requests in flight.

    python bench/spool.py          # PostgreSQL from Debian's packages (make system)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from engines import engine_urls  # noqa: E402
from sitecue.errors import StoreUnavailable  # noqa: E402
from sitecue.ids import record_id  # noqa: E402
from sitecue.store import DecisionRecord, EventRecord, open_store  # noqa: E402
from sitecue.store.spool import Spool  # noqa: E402
from sitecue.store.verdicts import Verdict  # noqa: E402

IN_FLIGHT = 500
REQUESTS = 20_000
T0 = 1_790_000_000_000
VERDICTS = [Verdict("paywall-faq", True, variant="faq"), Verdict("newsletter", False, reason="x")]


class Run:
    """Records per second and per-request latencies (ms) of one phase."""

    def __init__(self, records: int, seconds: float, latencies: list[float]) -> None:
        self.rate = records / seconds
        cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        self.p50, self.p99 = cuts[49], cuts[98]

    def line(self, name: str, base: Run | None = None) -> str:
        ratio = f"   {self.rate / base.rate:5.2f}x the rate of {base_name}" if base else ""
        return (
            f"  {name:28} {self.rate:8.0f} records/s   p50 {self.p50:7.1f} ms"
            f"   p99 {self.p99:7.1f} ms{ratio}"
        )


base_name = "normal, no spool"


async def page_views(store: object, first: int, count: int) -> Run:
    slots = asyncio.Semaphore(IN_FLIGHT)
    latencies: list[float] = []

    async def page_view(i: int) -> None:
        visitor, call = f"visitor-{i:012d}", f"call-{i:012d}"
        event = EventRecord(
            "news", visitor, "trigger", T0 + i, name="paywall_view", key=f"{call}.0"
        )
        decision = DecisionRecord(
            record_id(T0 + i), "news", visitor, T0 + i, "https://news.example/a/1", VERDICTS,
            key=call,
        )  # fmt: skip
        async with slots:
            start = time.perf_counter()
            await store.write([event], [decision])  # type: ignore[attr-defined]
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(page_view(i) for i in range(first, first + count)))
    return Run(2 * count, time.perf_counter() - start, latencies)


async def measure(url: str, spool_dir: Path) -> dict[str, Run]:
    runs = {}
    store = await open_store(url)
    runs["normal, no spool"] = await page_views(store, 0, REQUESTS)
    spool = Spool(spool_dir, retry=(3600, 3600))  # the forwarder waits while we spool
    spool.attach(store.writer)
    runs["normal, spool attached"] = await page_views(store, REQUESTS, REQUESTS)
    real = store.writer.flush

    async def refused(*_: object) -> None:
        raise StoreUnavailable("connection refused")

    store.writer.flush = refused  # type: ignore[assignment]
    spool._flush = refused  # type: ignore[assignment]
    runs["spooling (store down)"] = await page_views(store, 2 * REQUESTS, REQUESTS)
    spooled, size = spool.depth, spool.size
    # The store is back: the forwarder's next try (woken now) replays the spool.
    store.writer.flush = real  # type: ignore[method-assign]
    spool._flush = real
    spool.retry = (0.01, 0.05)
    await spool.stop()
    spool._stopping = False
    spool._stop.clear()
    start = time.perf_counter()
    spool._task = asyncio.create_task(spool._run())
    while spool.active:
        await asyncio.sleep(0.005)
    drained = time.perf_counter() - start
    runs["draining (store back)"] = Run(spooled, drained, [0.0, 0.0])
    print(f"  spooled {spooled} records in {size / 2**20:.1f} MiB; drained in {drained:.2f} s")
    await store.close()
    return runs


def main() -> None:
    print(f"spool, {IN_FLIGHT} requests in flight, 2 records per request, {REQUESTS} requests:")
    with engine_urls("postgres") as url_for, tempfile.TemporaryDirectory() as tmp:
        runs = asyncio.run(measure(url_for("spool"), Path(tmp) / "spool"))
    base = runs[base_name]
    for name, run in runs.items():
        print(run.line(name, None if run is base else base))
    print("(draining: no latency; records forwarded per second while no request comes in)")


if __name__ == "__main__":
    main()
