"""Records per second through the store's writer, on SQLite and on PostgreSQL, grouped (one
commit per group of waiting requests, as the server runs) against one commit per request,
all measured in the same run on this machine.

Each request writes what a page view writes: one event and one decision record, and waits
for its commit, with 500 requests in flight at a time.

    python bench/store.py          # PostgreSQL from Debian's packages (make system)
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from engines import engine_urls  # noqa: E402
from sitecue.decide import Verdict  # noqa: E402
from sitecue.ids import record_id  # noqa: E402
from sitecue.store import DecisionRecord, EventRecord, open_store  # noqa: E402

IN_FLIGHT = 500
T0 = 1_790_000_000_000
VERDICTS = [Verdict("paywall-faq", True, variant="faq"), Verdict("newsletter", False, reason="x")]


async def records_per_second(url: str, requests: int, group: int) -> float:
    store = await open_store(url)
    store.writer.max_records = group
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def page_view(i: int) -> None:
        visitor = f"visitor-{i:012d}"
        event = EventRecord("news", visitor, "trigger", T0 + i, name="paywall_view")
        decision = DecisionRecord(
            record_id(T0 + i), "news", visitor, T0 + i, "https://news.example/a/1", VERDICTS
        )
        async with slots:
            await store.write([event], [decision])

    start = time.perf_counter()
    await asyncio.gather(*(page_view(i) for i in range(requests)))
    elapsed = time.perf_counter() - start
    await store.close()
    return 2 * requests / elapsed


def run(name: str, url_for: Callable[[str], str]) -> None:
    grouped = asyncio.run(records_per_second(url_for("grouped"), 20_000, 2000))
    single = asyncio.run(records_per_second(url_for("single"), 2_000, 1))
    print(
        f"  {name:10} grouped {grouped:9.0f} records/s   one commit each {single:8.0f} records/s"
        f"   ratio {grouped / single:5.1f}x"
    )


def main() -> None:
    print(f"store writer, {IN_FLIGHT} requests in flight, 2 records per request:")
    with engine_urls("sqlite") as url_for:
        run("SQLite", url_for)
    with engine_urls("postgres") as url_for:
        run("PostgreSQL", url_for)
    print("target: >= 20,000 records/s grouped on SQLite")


if __name__ == "__main__":
    main()
