"""Delivery from the outbox to a local receiver, on both engines: retries with backoff until
a 2xx (the message reaches the receiver once), 410 disables the webhook, a day of failures
is dead, a lease keeps two nodes from delivering one message, and every delivery is signed.
The clock is injected: no test waits for a backoff."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
from pathlib import Path

import pytest

from receiver import HANG, receiver
from sitecue.metrics import Metrics
from sitecue.rules import CompiledSite
from sitecue.store import DeliveryQuery, Store, open_store
from sitecue.webhooks import delivery, messages
from sitecue.webhooks.delivery import RETRY_FOR_MS, Deliverer, backoff
from sitecue.webhooks.signing import verify
from webhook_sites import SECRET, shop, webhook

START = 1_764_000_000_000  # epoch ms


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


def deliverer(store: Store, site: CompiledSite, clock: Clock) -> Deliverer:
    return Deliverer(store, lambda: {site.name: site}, clock=clock, rng=random.Random(15))


async def lead(store: Store, site: CompiledSite, at: int, n: int = 0) -> str:
    """One form.submitted message committed, as a form submission commits it; its id."""
    payload = {"contact": f"reader{n}@example.com", "fields": {"email": f"reader{n}@example.com"}}
    told = messages.messages(site, "form.submitted", payload, at, contact=f"reader{n}@example.com")
    await store.write([], [], told)
    return told[0].id


async def until_settled(d: Deliverer, store: Store, clock: Clock, site: str) -> list[int]:
    """Attempt each message when due (moving the clock to its next try) until none is
    pending; the times of the attempts."""
    tries = []
    while True:
        tries.append(clock.now)
        assert await d.deliver_due() == 1
        (found,) = await store.deliveries(DeliveryQuery(site=site))
        if found.status != "pending":
            return tries
        assert found.next_try is not None and found.next_try > clock.now
        clock.now = found.next_try


def test_a_receiver_failing_three_times_gets_the_message_once(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver([500, 503, 502]) as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url))
            store = await open_store(store_url)
            clock = Clock()
            d = deliverer(store, site, clock)
            try:
                message_id = await lead(store, site, clock.now)
                tries = await until_settled(d, store, clock, "shop")
                (found,) = await store.deliveries(DeliveryQuery(site="shop"))
            finally:
                await d.stop()
                await store.close()
        assert found.status == "delivered" and found.attempts == 4 and found.last_status == 200
        assert [r.status for r in got.requests] == [500, 503, 502, 200]
        assert {r.headers["sitecue-delivery"] for r in got.requests} == {message_id}
        assert got.delivered() == {message_id: 1}  # received once; deduped by id, once too
        assert list(got.messages()) == [message_id]
        gaps = [b - a for a, b in itertools.pairwise(tries)]
        assert gaps[0] <= 2_000  # the first retry within seconds
        assert gaps == sorted(gaps)  # then growing

    asyncio.run(main())


def test_every_delivery_is_signed_with_the_webhooks_secret(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver() as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url))
            store = await open_store(store_url)
            clock = Clock()
            d = deliverer(store, site, clock)
            try:
                message_id = await lead(store, site, clock.now)
                await d.deliver_due()
            finally:
                await d.stop()
                await store.close()
        (request,) = got.requests
        header = request.headers["sitecue-signature"]
        assert verify(SECRET.encode(), request.body, header, clock.now // 1000)
        assert not verify(b"another-secret-0000000", request.body, header, clock.now // 1000)
        assert request.headers["idempotency-key"] == message_id
        assert request.headers["sitecue-event"] == "form.submitted"
        assert request.headers["content-type"] == "application/json"

    asyncio.run(main())


def test_a_410_disables_the_webhook_until_a_retry(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver([410]) as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url))
            store = await open_store(store_url)
            clock = Clock()
            d = deliverer(store, site, clock)
            try:
                gone = await lead(store, site, clock.now, 1)
                assert await d.deliver_due() == 1
                (disabled,) = await store.disabled_webhooks()
                assert (disabled.site, disabled.webhook, disabled.message) == ("shop", "esp", gone)
                later = await lead(store, site, clock.now, 2)
                clock.now += 3600_000
                assert await d.deliver_due() == 0  # nothing goes to a receiver that is gone
                statuses = {x.id: x.status for x in await store.deliveries(DeliveryQuery("shop"))}
                assert statuses == {gone: "pending", later: "pending"}  # kept, not lost
                assert await store.retry_delivery("shop", gone, clock.now)
                assert await store.disabled_webhooks() == []
                assert await d.deliver_due() == 2
                statuses = {x.id: x.status for x in await store.deliveries(DeliveryQuery("shop"))}
            finally:
                await d.stop()
                await store.close()
        assert statuses == {gone: "delivered", later: "delivered"}
        assert got.delivered() == {gone: 1, later: 1}

    asyncio.run(main())


def test_a_410_disabled_webhook_given_a_new_url_delivers_again(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver([410]) as old, receiver() as new:
            site = shop(monkeypatch, tmp_path, webhook(old.url))
            store = await open_store(store_url)
            clock = Clock()
            d = deliverer(store, site, clock)
            try:
                gone = await lead(store, site, clock.now, 1)
                await d.deliver_due()
                pending = await lead(store, site, clock.now, 2)
                moved = shop(monkeypatch, tmp_path, webhook(new.url))
                d.sites = lambda: {"shop": moved}  # as a reload with the new URL would
                assert await d.deliver_due() == 2
            finally:
                await d.stop()
                await store.close()
        assert new.delivered() == {gone: 1, pending: 1}  # the one answered 410 too

    asyncio.run(main())


def test_every_message_answered_410_waits_for_its_webhook_and_gets_a_new_day(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver([410, 410, 410]) as old, receiver() as new:
            site = shop(monkeypatch, tmp_path, webhook(old.url))
            store = await open_store(store_url)
            clock = Clock()
            metrics = Metrics()
            d = Deliverer(
                store, lambda: {"shop": site}, metrics, clock=clock, rng=random.Random(15)
            )
            try:
                gone = {await lead(store, site, clock.now, n) for n in range(3)}
                assert await d.deliver_due() == 3  # one batch, all three answered 410
                waiting = {x.id: x for x in await store.deliveries(DeliveryQuery("shop"))}
                clock.now += 2 * RETRY_FOR_MS  # two days later, the config points elsewhere
                moved = shop(monkeypatch, tmp_path, webhook(new.url))
                d.sites = lambda: {"shop": moved}
                assert await d.deliver_due() == 3
                after = {x.id: x.status for x in await store.deliveries(DeliveryQuery("shop"))}
            finally:
                await d.stop()
                await store.close()
        assert {x.status for x in waiting.values()} == {"pending"}
        assert {x.last_status for x in waiting.values()} == {410}
        assert after == dict.fromkeys(gone, "delivered")  # a new day, not dead at once
        assert new.delivered() == dict.fromkeys(gone, 1)
        assert metrics.deliveries[("shop", "esp", "disabled")] == 3

    asyncio.run(main())


def test_a_retry_gives_the_messages_waiting_behind_a_410_a_new_day(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver([410, 500, 500]) as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url))
            store = await open_store(store_url)
            clock = Clock()
            d = deliverer(store, site, clock)
            try:
                gone = await lead(store, site, clock.now, 1)
                await d.deliver_due()
                later = await lead(store, site, clock.now, 2)
                clock.now += 2 * RETRY_FOR_MS
                assert await store.retry_delivery("shop", gone, clock.now)
                assert await d.deliver_due() == 2  # both answered 500
                after = {x.id: x.status for x in await store.deliveries(DeliveryQuery("shop"))}
            finally:
                await d.stop()
                await store.close()
        # Both failed once more: both are tried again, neither dead after a first failure.
        assert after == {gone: "pending", later: "pending"}

    asyncio.run(main())


def test_a_request_that_cannot_be_made_is_a_settled_failure_not_a_retry_forever(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver() as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url))
            # A header no check would pass now (non-ASCII): delivery must still settle.
            (hook,) = site.webhooks
            bad = dataclasses.replace(hook, headers=(("x-name", "caf\u00e9"),))
            broken = dataclasses.replace(site, webhooks=(bad,))
            store = await open_store(store_url)
            clock = Clock()
            d = deliverer(store, broken, clock)
            try:
                await lead(store, broken, clock.now)
                assert await d.deliver_due() == 1
                (found,) = await store.deliveries(DeliveryQuery(site="shop"))
                assert found.next_try is not None and found.next_try > START  # backed off
            finally:
                await d.stop()
                await store.close()
        assert found.status == "pending" and found.attempts == 1
        assert found.last_error is not None and "UnicodeEncodeError" in found.last_error
        assert got.requests == []

    asyncio.run(main())


def test_a_receiver_that_never_answers_does_not_starve_another_webhook(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver([HANG] * 4) as slow, receiver() as fast:
            site = shop(
                monkeypatch,
                tmp_path,
                webhook(slow.url, id="slow", events=["form.submitted"], timeout=0.3),
                webhook(fast.url, id="fast", events=["contact.identified"]),
            )
            store = await open_store(store_url)
            clock = Clock()
            d = Deliverer(
                store, lambda: {"shop": site}, clock=clock, rng=random.Random(15), concurrency=4
            )
            try:
                for n in range(4):  # older than the other webhook's message, all due
                    await lead(store, site, clock.now - 1000 + n, n)
                told = messages.contact_identified(site, "a@example.com", "v1", clock.now)
                await store.write([], [], told)
                attempted = await d.deliver_due()
            finally:
                slow.release.set()
                await d.stop()
                await store.close()
        assert fast.delivered() == {told[0].id: 1}
        assert attempted == 2 and len(slow.requests) == 1  # a quarter of 4 slots each

    asyncio.run(main())


def test_delivered_and_dead_messages_go_after_30_days_in_batches_pending_ones_stay(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> tuple[int, int, dict[str, str], str]:
        with receiver([200] * 5 + [500] * 1000) as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url))
            store = await open_store(store_url)
            clock = Clock()
            d = deliverer(store, site, clock)
            try:
                for n in range(5):
                    await lead(store, site, clock.now, n)
                assert await d.deliver_due() == 5  # delivered
                await lead(store, site, clock.now, 9)  # fails for a day: dead
                while pending := await store.deliveries(DeliveryQuery("shop", status="pending")):
                    clock.now = max(clock.now, pending[0].next_try or 0)
                    await d.deliver_due()
                clock.now = START + 29 * 86_400_000
                recent = await lead(store, site, clock.now, 10)  # pending: never deleted
                kept = await d.prune()
                clock.now = START + 32 * 86_400_000
                monkeypatch.setattr(delivery, "PRUNE_BATCH", 2)
                gone = await d.prune()
                left = {x.id: x.status for x in await store.deliveries(DeliveryQuery("shop"))}
            finally:
                await d.stop()
                await store.close()
        return kept, gone, left, recent

    kept, gone, left, recent = asyncio.run(main())
    assert kept == 0  # 29 days: still kept
    assert gone == 6 and left == {recent: "pending"}


def test_a_day_of_failures_is_dead(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver([500] * 1000) as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url))
            store = await open_store(store_url)
            clock = Clock()
            d = deliverer(store, site, clock)
            try:
                await lead(store, site, clock.now)
                tries = await until_settled(d, store, clock, "shop")
                (found,) = await store.deliveries(DeliveryQuery(site="shop"))
                clock.now += RETRY_FOR_MS
                assert await d.deliver_due() == 0  # dead is the end
            finally:
                await d.stop()
                await store.close()
        assert found.status == "dead" and found.last_status == 500
        assert tries[-1] == START + RETRY_FOR_MS  # tried to the end of the day, not beyond
        assert tries[-2] < START + RETRY_FOR_MS
        assert found.attempts == len(tries) == len(got.requests)
        assert 25 <= len(tries) <= 60  # backing off: not a try a minute, nor just a few

    asyncio.run(main())


def test_backoff_doubles_from_seconds_to_an_hour_with_jitter() -> None:
    rng = random.Random(3)
    for attempts, base in [(1, 2_000), (2, 4_000), (5, 32_000), (12, 3_600_000), (99, 3_600_000)]:
        delays = [backoff(attempts, rng) for _ in range(200)]
        assert all(base // 2 <= d < base for d in delays)
        assert len(set(delays)) > 100  # spread, not one instant for every sender


def test_an_unreachable_receiver_is_a_failed_attempt_with_its_error(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        with receiver() as got:
            url = got.url
        site = shop(monkeypatch, tmp_path, webhook(url))  # nobody listens there any more
        store = await open_store(store_url)
        clock = Clock()
        d = deliverer(store, site, clock)
        try:
            await lead(store, site, clock.now)
            assert await d.deliver_due() == 1
            (found,) = await store.deliveries(DeliveryQuery(site="shop"))
        finally:
            await d.stop()
            await store.close()
        assert found.status == "pending" and found.attempts == 1 and found.last_status is None
        assert found.last_error and "Connect" in found.last_error

    asyncio.run(main())


def test_two_nodes_never_both_deliver_one_message(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 200

    async def main() -> None:
        with receiver() as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url))
            nodes = [await open_store(store_url), await open_store(store_url)]
            workers = [Deliverer(s, lambda: {"shop": site}, concurrency=8) for s in nodes]
            try:
                for n in range(count):
                    await lead(nodes[n % 2], site, time.time_ns() // 1_000_000, n)

                async def drain(d: Deliverer) -> int:
                    done = 0
                    while n := await d.deliver_due():
                        done += n
                    return done

                shares = await asyncio.gather(*(drain(d) for d in workers))
            finally:
                for d in workers:
                    await d.stop()
                for s in nodes:
                    await s.close()
        assert sum(shares) == count and all(shares)  # both nodes delivered, none twice
        assert len(got.requests) == count  # no message sent twice
        assert set(got.delivered().values()) == {1} and len(got.delivered()) == count

    asyncio.run(main())


def test_a_template_s_headers_and_body_go_out_and_an_empty_body_sends_nothing(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body template makes the platform's JSON, with the platform's headers; a message it
    renders nothing for is settled as delivered without a request (counted as skipped)."""
    (tmp_path / "b.j2").write_text(
        '{% if event == "form.submitted" %}{"email": {{ contact }}}{% endif %}'
    )
    monkeypatch.setenv("SITECUE_WEBHOOK_ESP_AUTH", "Klaviyo-API-Key pk_test")
    extra = {
        "body": "b.j2",
        "headers": {"revision": "2024-10-15", "content-type": "application/vnd.api+json"},
        "headers_env": {"authorization": "SITECUE_WEBHOOK_ESP_AUTH"},
    }

    async def main() -> None:
        metrics = Metrics()
        with receiver() as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url, **extra))
            store = await open_store(store_url)
            clock = Clock()
            d = Deliverer(store, lambda: {"shop": site}, metrics, clock=clock, rng=random.Random(1))
            try:
                await lead(store, site, clock.now)
                told = messages.contact_identified(site, "c-1", "v" * 16, clock.now)
                await store.write([], [], told)
                assert await d.deliver_due() == 2
                found = await store.deliveries(DeliveryQuery(site="shop"))
            finally:
                await d.stop()
                await store.close()
        (request,) = got.requests
        assert request.body == b'{"email": "reader0@example.com"}'
        assert request.headers["authorization"] == "Klaviyo-API-Key pk_test"
        assert request.headers["revision"] == "2024-10-15"
        assert request.headers["content-type"] == "application/vnd.api+json"
        assert verify(
            SECRET.encode(), request.body, request.headers["sitecue-signature"], clock.now // 1000
        )
        assert sorted(f.status for f in found) == ["delivered", "delivered"]
        assert metrics.deliveries == {
            ("shop", "esp", "delivered"): 1,
            ("shop", "esp", "skipped"): 1,
        }

    asyncio.run(main())


def test_a_message_no_json_can_be_made_of_is_dead_at_once(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template that passed its check but fails for a real message (here: a body over the
    cap) would fail on every try: the message is dead at its first attempt, nothing sent."""
    (tmp_path / "b.j2").write_text(
        '{% if contact == "reader0@example.com" %}{{ "x" * 2000000 }}{% else %}{}{% endif %}'
    )

    async def main() -> None:
        with receiver() as got:
            site = shop(monkeypatch, tmp_path, webhook(got.url, body="b.j2"))
            store = await open_store(store_url)
            clock = Clock()
            d = deliverer(store, site, clock)
            try:
                await lead(store, site, clock.now)
                assert await d.deliver_due() == 1
                (found,) = await store.deliveries(DeliveryQuery(site="shop"))
            finally:
                await d.stop()
                await store.close()
        assert got.requests == []
        assert found.status == "dead" and found.attempts == 1
        assert found.last_error is not None and found.last_error.startswith("body: ")

    asyncio.run(main())
