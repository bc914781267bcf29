"""The outbox on both engines: a message is committed in the same transaction as the record
that causes it (and not without it), once per retried request; claims are leased; an
erasure reaches the outbox."""

from __future__ import annotations

import asyncio
from typing import Any

from sitecue.decide import Verdict
from sitecue.ids import record_id
from sitecue.store import (
    Attempt,
    Contact,
    DecisionRecord,
    DeliveryQuery,
    EventRecord,
    Message,
    RateLimit,
    Store,
    Submission,
)
from stores import with_store

T0 = 1_764_000_000_000
LIMITS = (RateLimit(5, 60_000), RateLimit(3, 3_600_000))


def message(
    event: str = "form.submitted",
    contact: str | None = "a@b.se",
    visitor: str | None = "reader-1",
    key: str | None = None,
    at: int = T0,
) -> Message:
    payload = {"contact": contact, "fields": {"email": contact}} if contact else {}
    return Message(record_id(at), "news", "esp", event, at, payload, contact, visitor, key)


def submission(i: int, visitor: str = "reader-1", contact: str = "a@b.se") -> Submission:
    at = T0 + i * 1000
    return Submission(record_id(at), "news", "newsletter", "short", f"decision-{i:02d}",
                      visitor, contact, {"email": contact}, {}, at)  # fmt: skip


def conversion(s: Submission) -> EventRecord:
    return EventRecord(s.site, s.visitor, "convert", s.at, rule=s.rule, variant=s.variant)


async def statuses(store: Store) -> dict[str, str]:
    return {d.id: d.status for d in await store.deliveries(DeliveryQuery(site="news"))}


def test_a_group_commits_its_messages_and_a_failed_group_none(store_url: str) -> None:
    clash = DecisionRecord(record_id(T0), "news", "v", T0, "https://n/", [Verdict("r", False)])

    async def body(store: Store) -> tuple[int, int, BaseException | None]:
        await store.write([], [clash], [message()])
        stored = len(await statuses(store))
        failed = await asyncio.gather(
            store.write([], [clash], [message(at=T0 + 1)]), return_exceptions=True
        )
        return stored, len(await statuses(store)), failed[0]

    stored, after, failed = with_store(store_url, body)
    assert stored == 1 and after == 1  # the clashing group's message went with it
    assert isinstance(failed, Exception)


def test_a_retried_requests_message_is_stored_once(store_url: str) -> None:
    async def body(store: Store) -> int:
        for _ in range(3):
            await store.write([], [], [message(key="esp:goal.converted:event-1")])
        return len(await statuses(store))

    assert with_store(store_url, body) == 1


def test_a_submission_commits_its_message_unless_refused(store_url: str) -> None:
    async def body(store: Store) -> tuple[list[str], int]:
        outcomes = []
        for i in range(6):  # the 6th within a minute is over the browser's limit
            s = submission(i, contact=f"r{i}@b.se")
            done = await store.submit(s, {}, conversion(s), f"form-{i}", LIMITS, [message()])
            outcomes.append(done.outcome)
        s = submission(0, contact="r0@b.se")
        again = await store.submit(s, {}, conversion(s), "form-0", LIMITS, [message()])
        outcomes.append(again.outcome)
        return outcomes, len(await statuses(store))

    outcomes, stored = with_store(store_url, body)
    assert outcomes == ["stored"] * 5 + ["limited", "repeated"]
    assert stored == 5


def test_a_verified_link_commits_its_message(store_url: str) -> None:
    async def body(store: Store) -> tuple[list[str], list[str]]:
        told = [message("contact.identified", payload := "c-1")]
        await store.link("news", "browser-1", payload, T0, verified=True, messages=told)
        return await store.visitors("news", "c-1"), list((await statuses(store)).values())

    assert with_store(store_url, body) == (["browser-1"], ["pending"])


def test_an_erasure_drops_undelivered_messages_empties_delivered_ones_and_tells_once(
    store_url: str,
) -> None:
    async def body(store: Store) -> tuple[Any, ...]:
        await store.put_contacts([Contact("news", "a@b.se", {"tier": "gold"}, T0)])
        await store.link("news", "browser-1", "a@b.se", T0, verified=True)
        sent, waiting, theirs = message(), message(at=T0 + 1), message(contact=None, at=T0 + 2)
        other = message(contact="other@b.se", visitor="browser-9", at=T0 + 3)
        theirs = Message(theirs.id, "news", "esp", "goal.converted", T0 + 2, {"goal": "g"},
                         None, "browser-1")  # fmt: skip
        await store.write([], [], [sent, waiting, theirs, other])
        (claimed,) = [
            c
            for c in await store.claim_messages(["news/esp"], T0 + 10, 60_000, 10)
            if c.message.id == sent.id
        ] or [None]
        assert claimed is not None
        await store.settle_message(claimed, Attempt("delivered", T0 + 11, 200), "https://x/")
        erased = message("contact.erased", None, None, at=T0 + 20)
        erased = Message(erased.id, "news", "esp", "contact.erased", T0 + 20, {"contact": "a@b.se"})
        held = await store.erase_contact("news", "a@b.se", [erased])
        again = await store.erase_contact("news", "a@b.se", [message("contact.erased")])
        left = await statuses(store)
        await store.retry_delivery("news", sent.id, T0 + 30)  # to read its payload back
        claims = await store.claim_messages(["news/esp"], T0 + 70_000, 60_000, 10)
        payloads = {c.message.id: c.message.payload for c in claims}
        return held, again, left, payloads, (sent.id, erased.id, other.id)

    held, again, left, payloads, (sent, erased, other) = with_store(store_url, body)
    assert held and not again  # a second erasure holds nothing, and tells nobody again
    # Not yet sent about them: dropped; sent: kept, emptied; another person's: untouched.
    assert left == {sent: "delivered", erased: "pending", other: "pending"}
    assert payloads[erased] == {"contact": "a@b.se"}  # all the downstream needs
    assert payloads[other]["contact"] == "other@b.se"
    assert payloads[sent] == {}  # what went out about them is not kept


def test_an_erasure_is_not_sent_before_a_message_about_them_under_way(
    store_url: str,
) -> None:
    async def body(store: Store) -> tuple[Any, ...]:
        await store.put_contacts([Contact("news", "a@b.se", {"tier": "gold"}, T0)])
        await store.link("news", "browser-1", "a@b.se", T0, verified=True)
        theirs = Message(record_id(T0), "news", "esp", "goal.converted", T0, {"goal": "g"},
                         None, "browser-1")  # fmt: skip
        await store.write([], [], [theirs])
        (under_way,) = await store.claim_messages(["news/esp"], T0 + 10, 60_000, 10)
        erased = Message(record_id(T0 + 20), "news", "esp", "contact.erased", T0 + 20,
                         {"contact": "a@b.se"})  # fmt: skip
        assert await store.erase_contact("news", "a@b.se", [erased])
        early = await store.claim_messages(["news/esp"], T0 + 30, 60_000, 10)
        (listed,) = await store.deliveries(DeliveryQuery("news"))
        late = await store.claim_messages(["news/esp"], T0 + 60_010, 60_000, 10)
        return under_way.message.id, early, listed, [c.message.id for c in late], erased.id

    under_way, early, listed, late, erased = with_store(store_url, body)
    assert under_way != erased and early == []  # its POST may still be in flight
    assert listed.id == erased and listed.next_try == T0 + 60_010  # when that lease ends
    assert late == [erased]


def test_a_claim_is_leased_and_only_its_holder_settles(store_url: str) -> None:
    async def body(store: Store) -> tuple[Any, ...]:
        await store.write([], [], [message()])
        first = await store.claim_messages(["news/esp"], T0, 10_000, 10)
        during = await store.claim_messages(["news/esp"], T0 + 9_999, 10_000, 10)
        other = await store.claim_messages(["news/other"], T0 + 20_000, 10_000, 10)
        after = await store.claim_messages(["news/esp"], T0 + 10_000, 10_000, 10)
        stale = await store.settle_message(first[0], Attempt("delivered", T0, 200), "u")
        held = await store.settle_message(after[0], Attempt("delivered", T0, 200), "u")
        depth = await store.outbox_depth()
        return len(first), during, other, len(after), stale, held, depth

    first, during, other, after, stale, held, depth = with_store(store_url, body)
    assert (first, during, other, after) == (1, [], [], 1)  # an expired lease is claimable
    assert not stale and held  # the node that lost its lease cannot record over the other
    assert depth == {}


def test_pending_messages_are_counted_per_webhook(store_url: str) -> None:
    async def body(store: Store) -> dict[tuple[str, str], int]:
        await store.write([], [], [message(at=T0 + i) for i in range(3)])
        return await store.outbox_depth()

    assert with_store(store_url, body) == {("news", "esp"): 3}


def test_a_late_reported_event_gets_its_day_of_tries_from_when_it_is_written(
    store_url: str,
) -> None:
    async def body(store: Store) -> Any:
        late = Message(record_id(T0), "news", "esp", "goal.converted", T0 - 86_400_000,
                       {"goal": "g"}, queued=T0)  # fmt: skip
        await store.write([], [], [late])
        (claimed,) = await store.claim_messages(["news/esp"], T0, 60_000, 10)
        return claimed.since, claimed.message.at

    assert with_store(store_url, body) == (T0, T0 - 86_400_000)
