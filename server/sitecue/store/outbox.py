"""The outbox: messages for other systems (webhooks), written in the same transaction as
the record that causes them, then claimed, attempted and settled by the delivery task.

A message is claimed with a lease (a random token and an expiry): the claim is one atomic
statement (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so nodes claiming together take
different rows), and only the holder of the lease may settle the attempt. A node that dies
mid-delivery leaves a lease that expires; the message is then claimed again, so nothing is
lost (a receiver may see a message twice, and dedupes by its id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

__all__ = [
    "KEEP_DAYS",
    "Attempt",
    "Claimed",
    "Delivery",
    "DeliveryQuery",
    "DeliveryStatus",
    "DisabledWebhook",
    "Message",
]

DeliveryStatus = Literal["pending", "delivered", "dead"]
"""``pending`` (due, waiting for its next try, or waiting for its webhook a 410 disabled),
``delivered`` (a 2xx), ``dead`` (a day of failures). Disabled is the webhook's state (see
DisabledWebhook), never a message's: its messages wait, pending, until it is enabled."""


class Message(msgspec.Struct, frozen=True):
    """A message for one webhook of a site. ``contact`` and ``visitor`` are who it is
    about (not sent: they let an erasure find it); ``key`` makes a retried request's
    message stored once."""

    id: str
    site: str
    webhook: str
    event: str
    at: int  # epoch ms
    payload: dict[str, Any]
    contact: str | None = None
    visitor: str | None = None
    key: str | None = None
    # When it was written (epoch ms), if later than ``at`` (a goal reported late): its day
    # of tries starts then, not at the event's own time.
    queued: int | None = None

    @property
    def target(self) -> str:
        return f"{self.site}/{self.webhook}"


class Claimed(msgspec.Struct, frozen=True):
    """A message claimed for one attempt: the attempts made before, when this round of
    tries began (a retry by an operator starts a new one), and the lease to settle with."""

    message: Message
    attempts: int
    since: int
    lease: str


class Attempt(msgspec.Struct, frozen=True):
    """What an attempt came to: the message's new status, the receiver's HTTP status or
    the error (timeout, refused connection), and when to try again (pending)."""

    status: DeliveryStatus
    at: int
    code: int | None = None
    error: str | None = None
    next_try: int = 0


class Delivery(msgspec.Struct, frozen=True):
    """A message as an operator sees it (without its payload, which may be personal)."""

    id: str
    site: str
    webhook: str
    event: str
    at: int
    status: DeliveryStatus
    attempts: int
    next_try: int | None  # when pending
    last_try: int | None
    last_status: int | None
    last_error: str | None
    delivered: int | None


class DeliveryQuery(msgspec.Struct, frozen=True):
    """Which messages to list: one site, newest first, optionally narrowed."""

    site: str
    webhook: str | None = None
    status: DeliveryStatus | None = None
    before: str | None = None  # the cursor: messages older than this id
    limit: int = 100


class DisabledWebhook(msgspec.Struct, frozen=True):
    """A webhook whose receiver answered 410 Gone: nothing more is sent to ``url`` until an
    operator retries one of its messages, or the config points the webhook elsewhere."""

    site: str
    webhook: str
    url: str
    at: int
    message: str  # the message that was answered 410


_encode = msgspec.json.Encoder().encode
_payload = msgspec.json.Decoder(dict[str, Any]).decode
Row = tuple[object, ...]

INSERT_MESSAGE = (
    "INSERT INTO outbox (id, site, webhook, target, event, at, payload, contact, visitor,"
    " idempotency_key, since, next_try) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
)
# The due messages a claim may take: each webhook's oldest-due first, at most its room (the
# attempts it may still have under way) of them, so that one webhook's slow receiver cannot
# take every slot of a claim from the others. SQLite's claim (PostgreSQL's locks each
# webhook's rows on their own, see its store) adds the table of (target, room).
DUE_RANKED = (
    "SELECT o.id, o.next_try, r.room, ROW_NUMBER() OVER (PARTITION BY o.target ORDER BY"
    " o.next_try, o.id) AS n FROM outbox o JOIN {rooms} ON r.target = o.target"
    " WHERE o.status = 'pending' AND o.next_try <= {now} AND o.lease_until <= {now}"
)
CLAIMED_COLUMNS = (
    "id, site, webhook, event, at, payload, contact, visitor, idempotency_key, attempts, since"
)
# Only the lease's holder settles, and only once: a node whose lease expired (it hung past
# the lease) finds the row taken by another and changes nothing.
SETTLE = (
    "UPDATE outbox SET status = ?, attempts = attempts + 1, last_try = ?, last_status = ?,"
    " last_error = ?, next_try = ?, delivered = ?, lease = NULL, lease_until = 0"
    " WHERE id = ? AND lease = ?"
)
DISABLE = (
    "INSERT INTO webhook_states (target, url, at, message) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (target) DO UPDATE SET url = excluded.url, at = excluded.at,"
    " message = excluded.message"
)
DISABLED = "SELECT target, url, at, message FROM webhook_states ORDER BY target"
ENABLE = "DELETE FROM webhook_states WHERE target = ?"
ENABLE_AT = "DELETE FROM webhook_states WHERE target = ? AND url = ?"
# A webhook enabled again: the messages that waited for it get a new day of tries, due now
# (their old day went by while nothing could be sent).
REVIVE = "UPDATE outbox SET since = ?, next_try = ? WHERE target = ? AND status = 'pending'"
RETRY = (
    "UPDATE outbox SET status = 'pending', since = ?, next_try = ?, lease = NULL,"
    " lease_until = 0 WHERE site = ? AND id = ?"
)
KEEP_DAYS = 30
"""Days a delivered or dead message is kept (its record for operators) after its last try."""
# A batch of the messages past their keeping: deleted a few at a time, so that the delete
# never holds the write lock (or a PostgreSQL transaction) long.
PRUNE = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status <> 'pending'"
    " AND last_try < ? LIMIT ?)"
)
DEPTH = "SELECT site, webhook, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY site, webhook"
DELIVERY_COLUMNS = (
    "id, site, webhook, event, at, status, attempts, next_try, last_try, last_status,"
    " last_error, delivered"
)
TARGET_OF = "SELECT target FROM outbox WHERE site = ? AND id = ?"
# Erasure: what was not delivered yet about the person is not sent after the erasure (it
# would recreate them downstream); what was keeps its delivery record, its payload emptied.
# The latest lease of a person's messages still under way (a POST about them may be in
# flight): their contact.erased is not sent before it ends.
LEASED_BY = {
    column: "SELECT MAX(lease_until) FROM outbox WHERE site = ? AND "
    f"{column} = ? AND lease IS NOT NULL AND lease_until > ?"
    for column in ("contact", "visitor")
}
ERASE_BY = {
    column: [
        f"DELETE FROM outbox WHERE site = ? AND {column} = ? AND status <> 'delivered'",
        f"UPDATE outbox SET payload = '{{}}', {column} = NULL WHERE site = ? AND {column} = ?",
    ]
    for column in ("contact", "visitor")
}


def message_row(m: Message, not_before: int = 0) -> Row:
    """A message as a row of INSERT_MESSAGE; its first try is due at once (or at
    ``not_before``, if later)."""
    since = max(m.at, m.queued or 0)
    return (
        m.id, m.site, m.webhook, m.target, m.event, m.at, _encode(m.payload).decode(),
        m.contact, m.visitor, m.key, since, max(since, not_before),
    )  # fmt: skip


def erased_rows(messages: Sequence[Message], held_until: object) -> list[Row]:
    """The rows of an erasure's messages, due once the person's messages under way
    (leased until ``held_until``, or None) are settled: the erasure never overtakes them."""
    not_before = held_until if isinstance(held_until, int) else 0
    return [message_row(m, not_before) for m in messages]


def claimed_of(row: Any, lease: str) -> Claimed:
    """A row of CLAIMED_COLUMNS as a Claimed message."""
    message = Message(
        row[0], row[1], row[2], row[3], row[4], _payload(row[5]), row[6], row[7], row[8]
    )
    return Claimed(message, row[9], row[10], lease)


def settle_row(attempt: Attempt, claimed: Claimed) -> Row:
    delivered = attempt.at if attempt.status == "delivered" else None
    return (
        attempt.status, attempt.at, attempt.code, attempt.error, attempt.next_try, delivered,
        claimed.message.id, claimed.lease,
    )  # fmt: skip


def delivery_of(row: Any) -> Delivery:
    values = list(row)
    if values[5] != "pending":
        values[7] = None  # no next try
    return Delivery(*values)


def disabled_of(row: Any) -> DisabledWebhook:
    site, _, webhook = str(row[0]).partition("/")
    return DisabledWebhook(site, webhook, row[1], row[2], row[3])


def list_sql(query: DeliveryQuery) -> tuple[str, list[object]]:
    """The page of messages ``query`` asks for (``?`` placeholders), newest first."""
    where = ["site = ?"]
    args: list[object] = [query.site]
    for column, op, value in (
        ("webhook", "=", query.webhook),
        ("status", "=", query.status),
        ("id", "<", query.before),
    ):
        if value is not None:
            where.append(f"{column} {op} ?")
            args.append(value)
    args.append(query.limit)
    sql = (
        f"SELECT {DELIVERY_COLUMNS} FROM outbox WHERE {' AND '.join(where)}"
        " ORDER BY id DESC LIMIT ?"
    )
    return sql, args
