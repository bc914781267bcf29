"""The storage interface the HTTP layer writes through, and the records it writes."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from ..decide import Verdict

if TYPE_CHECKING:
    from .writer import GroupWriter


class EventRecord(msgspec.Struct, frozen=True):
    """Something the tag reported: a trigger, a page event, or feedback on a decision."""

    site: str
    visitor: str
    type: str
    at: int
    name: str | None = None
    rule: str | None = None
    variant: str | None = None
    decision: str | None = None


class DecisionRecord(msgspec.Struct, frozen=True):
    """One call to decide: what was shown and, for every rule, why or why not. The record of
    a page view is its first decision (``pageview``); later ones follow triggers."""

    id: str
    site: str
    visitor: str
    at: int
    url: str
    verdicts: list[Verdict]
    pageview: bool = True


class DecisionQuery(msgspec.Struct, frozen=True):
    """Which decision records to list: one site, newest first, optionally narrowed. ``rule``,
    ``variant`` and ``matched`` look at the verdicts: a record qualifies when one verdict has
    them all (``matched`` without ``rule``: any rule matched, i.e. something was shown)."""

    site: str
    visitor: str | None = None
    contact: str | None = None  # every browser linked to this contact
    rule: str | None = None
    variant: str | None = None
    matched: bool | None = None
    since: int | None = None  # epoch ms, inclusive
    until: int | None = None  # epoch ms, exclusive
    before: str | None = None  # the cursor: records older than this id
    limit: int = 100

    def verdict(self) -> dict[str, str | bool]:
        """What one verdict of a qualifying record must hold (empty: any record)."""
        fields = (("rule", self.rule), ("variant", self.variant), ("matched", self.matched))
        return {name: value for name, value in fields if value is not None}


_encode = msgspec.json.Encoder().encode
Row = tuple[object, ...]
EVENT_COLUMNS = "site, visitor, type, at, name, rule, variant, decision"
DECISION_COLUMNS = "id, site, visitor, at, url, verdicts, pageview"


# Statements both engines run, with ``?`` placeholders (PostgreSQL's are numbered on load).
INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_DECISION = f"INSERT INTO decisions ({DECISION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
INSERT_API_KEY = (
    "INSERT INTO api_keys (id, secret_hash, sites, label, created) VALUES (?, ?, ?, ?, ?)"
)
UPSERT_CONTACT = (
    "INSERT INTO contacts (site, id, attributes, updated) VALUES (?, ?, ?, ?) ON CONFLICT"
    " (site, id) DO UPDATE SET attributes = excluded.attributes, updated = excluded.updated"
)
UPSERT_LINK = (
    "INSERT INTO links (site, visitor, contact, at) VALUES (?, ?, ?, ?) ON CONFLICT"
    " (site, visitor) DO UPDATE SET contact = excluded.contact, at = excluded.at"
)

# A health check's proof that commits work again, after one failed (see GroupWriter).
HEARTBEAT = (
    "INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at"
)


# Erasure: each of the person's browsers gets a random pseudonym in the logs, with (pseudonym,
# site, visitor), so experiment counts hold and nothing leads back to the person; then the
# links and the contact go, with (site, contact).
PSEUDONYMISE = [
    "UPDATE events SET visitor = ? WHERE site = ? AND visitor = ?",
    "UPDATE decisions SET visitor = ?, url = '' WHERE site = ? AND visitor = ?",
]
FORGET = [
    "DELETE FROM links WHERE site = ? AND contact = ?",
    "DELETE FROM contacts WHERE site = ? AND id = ?",
]


def pseudonym() -> str:
    """A stand-in for an erased browser: random, so it links to nothing."""
    return f"erased-{secrets.token_hex(8)}"


def contact_row(c: Contact) -> Row:
    """A contact as a row of UPSERT_CONTACT, the attributes as JSON text."""
    return (c.site, c.id, _encode(c.attributes).decode(), c.updated)


def event_row(e: EventRecord) -> Row:
    """An event as a row of EVENT_COLUMNS."""
    return (e.site, e.visitor, e.type, e.at, e.name, e.rule, e.variant, e.decision)


def decision_row(d: DecisionRecord) -> Row:
    """A decision as a row of DECISION_COLUMNS, the verdicts as JSON text."""
    return (d.id, d.site, d.visitor, d.at, d.url, _encode(d.verdicts).decode(), d.pageview)


class Contact(msgspec.Struct, frozen=True):
    """A person the site knows (a customer, a subscriber), with the offsite attributes the
    site's own systems hold about them: loyalty tier, average order value, and so on."""

    site: str
    id: str
    attributes: dict[str, Any] = {}
    updated: int = 0  # epoch ms


class VariantCounts(msgspec.Struct, frozen=True):
    """One variant of an experiment, counted in the database: the visitors decided into it
    (exposed; a control too), the impressions reported, and the exposed visitors who then
    converted (the rule's convert, or its goal event, after their first exposure)."""

    variant: str
    visitors: int
    impressions: int
    conversions: int


class ApiKey(msgspec.Struct, frozen=True):
    """An admin key as stored: only a hash of its secret, and the sites it may act on."""

    id: str
    secret_hash: str
    sites: list[str]
    label: str
    created: int


class Store(Protocol):
    writer: GroupWriter  # every write goes through it

    async def write(self, events: list[EventRecord], decisions: list[DecisionRecord]) -> None:
        """Commit the records; return only once they are durable."""

    async def decisions(self, query: DecisionQuery) -> list[DecisionRecord]:
        """One page of decision records, newest first."""

    async def events(self, site: str, visitors: list[str]) -> list[EventRecord]:
        """Every event of these visitors (one person's browsers), oldest first."""

    async def put_contacts(self, contacts: list[Contact]) -> None:
        """Create each contact, or replace its attributes, all in one transaction."""

    async def contact(self, site: str, contact_id: str) -> Contact | None: ...

    async def link(self, site: str, visitor: str, contact_id: str, at: int) -> None:
        """Link a browser to a contact (a browser belongs to one contact at a time)."""

    async def visitors(self, site: str, contact_id: str) -> list[str]:
        """The browsers linked to a contact, earliest link first."""

    async def erase_contact(self, site: str, contact_id: str) -> bool:
        """Forget a person: the contact, its links, and who they were in the logs (their
        browsers' events and decisions stay, each browser under a random pseudonym and
        without URLs, so experiment counts hold). False if nothing was held."""

    async def results(self, site: str, rule: str, goal: str | None) -> list[VariantCounts]:
        """Per variant of ``rule``: exposures, impressions and conversions, aggregated in SQL."""

    async def add_api_key(self, key: ApiKey) -> None: ...

    async def api_key(self, key_id: str) -> ApiKey | None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
