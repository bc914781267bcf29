"""The storage interface the HTTP layer writes through, and the records it writes."""

from __future__ import annotations

from typing import Protocol

import msgspec

from ..decide import Verdict


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
    rule: str | None = None
    variant: str | None = None
    matched: bool | None = None
    since: int | None = None  # epoch ms, inclusive
    until: int | None = None  # epoch ms, exclusive
    before: str | None = None  # the cursor: records older than this id
    limit: int = 100


class ApiKey(msgspec.Struct, frozen=True):
    """An admin key as stored: only a hash of its secret, and the sites it may act on."""

    id: str
    secret_hash: str
    sites: list[str]
    label: str
    created: int


class Store(Protocol):
    async def write(self, events: list[EventRecord], decisions: list[DecisionRecord]) -> None:
        """Commit the records; return only once they are durable."""

    async def decisions(self, query: DecisionQuery) -> list[DecisionRecord]:
        """One page of decision records, newest first."""

    async def add_api_key(self, key: ApiKey) -> None: ...

    async def api_key(self, key_id: str) -> ApiKey | None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


async def open_store(url: str) -> Store:
    """Open the store named by ``url`` (``sqlite:///path/to/file.db``)."""
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return await SQLiteStore.open(url.removeprefix("sqlite:///"))
    raise ValueError(f"SITECUE_DB: expected a sqlite:///path URL, got {url!r}")
