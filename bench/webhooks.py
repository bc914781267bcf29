"""Webhook delivery through the outbox, on SQLite and on PostgreSQL: the latency from a
message's commit to its arrival at a receiver (p50, p99), and the throughput (messages/s
from a full outbox to the receiver), against a baseline measured in the same run: the same
signed POSTs sent straight to the same receiver by the same client, with the same
concurrency, and no outbox.

The receiver is another process (uvicorn), noting each message's arrival time.

    python bench/webhooks.py          # PostgreSQL from Debian's packages (make system)
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx2 as httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from postgres_cluster import postgres_cluster  # noqa: E402
from servers import free_port  # noqa: E402
from sitecue.config import parse_site  # noqa: E402
from sitecue.rules import CompiledSite, compile_site  # noqa: E402
from sitecue.store import open_store  # noqa: E402
from sitecue.webhooks import messages  # noqa: E402
from sitecue.webhooks.delivery import Deliverer  # noqa: E402
from sitecue.webhooks.signing import sign  # noqa: E402

LATENCY_MESSAGES = 1_000  # committed one at a time, every PACE_S
PACE_S = 0.004
THROUGHPUT_MESSAGES = 5_000  # committed first, then delivered
CONCURRENCY = 32
SECRET = "bench-webhook-secret-000000"


async def receiver_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI receiver: notes each POST's Sitecue-Delivery id and arrival (epoch ns);
    ``GET`` answers the notes so far, one ``id ns`` per line."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "POST":
        headers = dict(scope["headers"])
        NOTES.append(f"{headers[b'sitecue-delivery'].decode()} {time.time_ns()}")
        body = b""
    else:
        body = "\n".join(NOTES).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


NOTES: list[str] = []


def arrivals(base: str) -> dict[str, int]:
    text = httpx.get(base).text
    return {i: int(ns) for i, ns in (line.split() for line in text.splitlines() if line)}


def site(url: str) -> CompiledSite:
    os.environ["SITECUE_BENCH_WEBHOOK_SECRET"] = SECRET
    hook = {"id": "esp", "url": url, "events": ["form.submitted"],
            "secret_env": "SITECUE_BENCH_WEBHOOK_SECRET"}  # fmt: skip
    config = {"site": "shop", "origins": ["https://shop.example"], "webhooks": [hook]}
    return compile_site(parse_site(config), ROOT / "config")


def lead(s: CompiledSite, n: int) -> list[Any]:
    payload = {"contact": f"r{n}@example.com", "email": f"r{n}@example.com",
               "fields": {"email": f"r{n}@example.com", "consent": True}}  # fmt: skip
    return messages.messages(s, "form.submitted", payload, time.time_ns() // 1_000_000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def until_received(base: str, ids: set[str]) -> dict[str, int]:
    while True:
        got = arrivals(base)
        if ids <= got.keys():
            return got
        await asyncio.sleep(0.05)


async def outbox(url: str, base: str) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, messages/s) through the outbox on the store at ``url``."""
    s = site(f"{base}/hook")
    store = await open_store(url)
    d = Deliverer(store, lambda: {"shop": s}, concurrency=CONCURRENCY)
    d.start()
    committed: dict[str, int] = {}
    for n in range(LATENCY_MESSAGES):  # a steady trickle, as sign-ups arrive
        told = lead(s, n)
        await store.write([], [], told)
        committed[told[0].id] = time.time_ns()
        d.wake()  # as the endpoint does after a commit with messages
        await asyncio.sleep(PACE_S)
    got = await until_received(base, set(committed))
    latencies = [(got[i] - committed[i]) / 1e6 for i in committed]
    await d.stop()
    batch = [m for n in range(THROUGHPUT_MESSAGES) for m in lead(s, n)]
    for i in range(0, len(batch), 500):
        await store.write([], [], batch[i : i + 500])
    d = Deliverer(store, lambda: {"shop": s}, concurrency=CONCURRENCY)
    start = time.perf_counter()
    d.start()
    await until_received(base, {m.id for m in batch})
    rate = len(batch) / (time.perf_counter() - start)
    await d.stop()
    await store.close()
    return percentile(latencies, 0.5), percentile(latencies, 0.99), rate


async def direct(base: str) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, messages/s) of the same signed POSTs sent straight to the receiver."""
    rng = random.Random(1)
    async with httpx.AsyncClient(base_url=base) as client:

        async def post(n: int) -> float:
            body = msgspec.json.encode({"id": f"direct-{n}-{rng.random()}", "n": n})
            headers = {
                "content-type": "application/json",
                "Sitecue-Signature": sign(SECRET.encode(), body, int(time.time())),
                "Sitecue-Delivery": f"direct-{n}",
            }
            start = time.perf_counter()
            await client.post("/hook", content=body, headers=headers)
            return (time.perf_counter() - start) * 1000

        latencies = []
        for n in range(LATENCY_MESSAGES // 4):
            latencies.append(await post(n))
        slots = asyncio.Semaphore(CONCURRENCY)

        async def limited(n: int) -> None:
            async with slots:
                await post(n)

        start = time.perf_counter()
        await asyncio.gather(*(limited(n) for n in range(THROUGHPUT_MESSAGES)))
        rate = THROUGHPUT_MESSAGES / (time.perf_counter() - start)
    return percentile(latencies, 0.5), percentile(latencies, 0.99), rate


def report(name: str, p50: float, p99: float, rate: float) -> None:
    print(f"  {name:28} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   {rate:7.0f} messages/s")


def main() -> None:
    if sys.argv[1:2] == ["receive"]:
        import uvicorn

        uvicorn.run(receiver_app, port=int(sys.argv[2]), log_level="warning")
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiving = subprocess.Popen([sys.executable, __file__, "receive", str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.1)
        print(
            f"webhook delivery to a local receiver, {CONCURRENCY} at a time; latency from"
            f" commit to arrival ({LATENCY_MESSAGES} messages, one every {PACE_S * 1000:g} ms),"
            f" throughput from a full outbox ({THROUGHPUT_MESSAGES} messages):"
        )
        report("direct POST (baseline)", *asyncio.run(direct(base)))
        with tempfile.TemporaryDirectory() as tmp:
            report("outbox on SQLite", *asyncio.run(outbox(f"sqlite:///{tmp}/b.db", base)))
        with postgres_cluster(fsync=True) as server:

            async def create() -> None:
                db = await asyncpg.connect(server)
                await db.execute("CREATE DATABASE bench_webhooks")
                await db.close()

            asyncio.run(create())
            url = server.replace("@/postgres?", "@/bench_webhooks?")
            report("outbox on PostgreSQL", *asyncio.run(outbox(url, base)))
    finally:
        receiving.terminate()
        receiving.wait()


if __name__ == "__main__":
    main()
