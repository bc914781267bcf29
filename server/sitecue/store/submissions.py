"""Form submissions as stored: the record, the query that lists them, and the statements
both engines run to store one (see ``submit`` in each engine).

A submission is committed in one transaction with what it causes: the rule's conversion
event, the contact's answers (created, marked ``form``, when new; an existing contact's
verified attributes are never touched), and the browser's unverified link. The rate limits
are counted in the same transaction, from the submissions themselves, so they hold across
workers and nodes; a retry (the same ``id``) is recognised first and stored once.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

__all__ = [
    "RateLimit",
    "Submission",
    "SubmissionQuery",
    "Submitted",
]


class Submission(msgspec.Struct, frozen=True):
    """One form submission: the fields as checked and normalised, the exact text of each
    consent the visitor gave (field name -> text), and when the server received it."""

    id: str
    site: str
    rule: str
    variant: str
    decision: str
    visitor: str
    contact: str | None
    fields: dict[str, Any]
    consents: dict[str, str]
    at: int  # epoch ms


class SubmissionQuery(msgspec.Struct, frozen=True):
    """Which submissions to list: one site, newest first, optionally narrowed."""

    site: str
    rule: str | None = None
    contact: str | None = None
    since: int | None = None  # epoch ms, inclusive
    until: int | None = None  # epoch ms, exclusive
    before: str | None = None  # the cursor: submissions older than this id
    limit: int = 100


class RateLimit(NamedTuple):
    """At most ``most`` submissions within ``window_ms``."""

    most: int
    window_ms: int


class Submitted(NamedTuple):
    """What ``submit`` did: ``stored`` (or ``repeated``: a retry of one stored before), or
    refused by the ``limited`` rate limit ("visitor" or "address"), which frees a place
    ``retry_after_ms`` from now."""

    outcome: str  # "stored", "repeated" or "limited"
    limited: str | None = None
    retry_after_ms: int = 0


_encode = msgspec.json.Encoder().encode
_map = msgspec.json.Decoder(dict[str, Any]).decode
_texts = msgspec.json.Decoder(dict[str, str]).decode

SUBMISSION_COLUMNS = "id, site, rule, variant, decision, visitor, contact, fields, consents, at"
INSERT_SUBMISSION = (
    f"INSERT INTO submissions ({SUBMISSION_COLUMNS}, idempotency_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
REPEATED = "SELECT COUNT(*) FROM submissions WHERE site = ? AND idempotency_key = ?"
BY_VISITOR = "SELECT COUNT(*), MIN(at) FROM submissions WHERE site = ? AND visitor = ? AND at > ?"
BY_CONTACT = "SELECT COUNT(*), MIN(at) FROM submissions WHERE site = ? AND contact = ? AND at > ?"
CONTACT_ANSWERS = "SELECT answers FROM contacts WHERE site = ? AND id = ?"
# A new contact is created from the form (source 'form', no attributes); an existing one
# only has its answers replaced: its attributes and their time are the site's own.
UPSERT_ANSWERS = (
    "INSERT INTO contacts (site, id, attributes, updated, answers, source)"
    " VALUES (?, ?, '{}', ?, ?, 'form')"
    " ON CONFLICT (site, id) DO UPDATE SET answers = excluded.answers"
)
COUNT_BY_RULE = "SELECT rule, COUNT(*) FROM submissions WHERE site = ? GROUP BY rule"
ERASE_BROWSER = "DELETE FROM submissions WHERE site = ? AND visitor = ?"


def submission_row(s: Submission, key: str | None) -> tuple[object, ...]:
    """A submission as a row of INSERT_SUBMISSION, fields and consents as JSON text."""
    return (s.id, s.site, s.rule, s.variant, s.decision, s.visitor, s.contact,
            _encode(s.fields).decode(), _encode(s.consents).decode(), s.at, key)  # fmt: skip


def submission_of(row: Any) -> Submission:
    """A row of SUBMISSION_COLUMNS as a Submission (JSON read back from text or JSONB text)."""
    fields, consents = row[7], row[8]
    return Submission(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6],
        _map(fields), _texts(consents), int(row[9]),
    )  # fmt: skip


def merged_answers(held: str | bytes | None, values: dict[str, Any]) -> str:
    """The contact's answers after this submission: the new values over what was held."""
    return _encode({**(_map(held) if held else {}), **values}).decode()


def list_sql(query: SubmissionQuery) -> tuple[str, list[object]]:
    """The SELECT (``?`` placeholders) and its arguments for one page of ``query``."""
    where: list[str] = ["site = ?"]
    args: list[object] = [query.site]
    for column, op, value in (
        ("rule", "=", query.rule),
        ("contact", "=", query.contact),
        ("at", ">=", query.since),
        ("at", "<", query.until),
        ("id", "<", query.before),
    ):
        if value is not None:
            where.append(f"{column} {op} ?")
            args.append(value)
    sql = (
        f"SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE {' AND '.join(where)}"
        " ORDER BY id DESC LIMIT ?"
    )
    return sql, [*args, query.limit]


def over(count: int, oldest: int | None, limit: RateLimit, now: int) -> int:
    """0 when another submission fits ``limit``; else the ms until the oldest leaves it."""
    if count < limit.most:
        return 0
    return max(1, (oldest or now) + limit.window_ms - now)
