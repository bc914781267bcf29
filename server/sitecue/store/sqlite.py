"""The embedded default: SQLite in WAL mode, shared safely by several worker processes."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import msgspec

from .base import ApiKey, DecisionRecord, EventRecord
from .writer import GroupWriter

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, visitor TEXT NOT NULL, type TEXT NOT NULL, at INTEGER NOT NULL,
    name TEXT, rule TEXT, variant TEXT, decision TEXT
);
CREATE INDEX IF NOT EXISTS events_visitor ON events (site, visitor, at);
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL, visitor TEXT NOT NULL, at INTEGER NOT NULL, url TEXT NOT NULL,
    verdicts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_visitor ON decisions (site, visitor, at);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL, sites TEXT NOT NULL, label TEXT NOT NULL, created INTEGER NOT NULL
);
"""

_encode = msgspec.json.Encoder().encode


class SQLiteStore:
    """Writes go through one GroupWriter per process; several processes share the file in
    WAL mode, waiting on each other's commits up to the busy timeout."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self.writer = GroupWriter(self._flush)
        self.writer.start()

    @classmethod
    async def open(cls, path: str) -> SQLiteStore:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL
        await db.executescript(_SCHEMA)
        await db.commit()
        return cls(db)

    async def write(self, events: list[EventRecord], decisions: list[DecisionRecord]) -> None:
        await self.writer.write(events, decisions)

    async def _flush(self, events: list[EventRecord], decisions: list[DecisionRecord]) -> None:
        """Insert one group and commit it, or roll all of it back."""
        try:
            await self._db.executemany(
                "INSERT INTO events (site, visitor, type, at, name, rule, variant, decision)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.site, e.visitor, e.type, e.at, e.name, e.rule, e.variant, e.decision)
                    for e in events
                ],
            )
            await self._db.executemany(
                "INSERT OR REPLACE INTO decisions (id, site, visitor, at, url, verdicts)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (d.id, d.site, d.visitor, d.at, d.url, _encode(d.verdicts).decode())
                    for d in decisions
                ],
            )
            await self._db.commit()
        except BaseException:
            await self._db.rollback()
            raise

    async def add_api_key(self, key: ApiKey) -> None:
        await self._db.execute(
            "INSERT INTO api_keys (id, secret_hash, sites, label, created) VALUES (?, ?, ?, ?, ?)",
            (key.id, key.secret_hash, _encode(key.sites).decode(), key.label, key.created),
        )
        await self._db.commit()

    async def api_key(self, key_id: str) -> ApiKey | None:
        query = "SELECT id, secret_hash, sites, label, created FROM api_keys WHERE id = ?"
        async with self._db.execute(query, (key_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return ApiKey(row[0], row[1], msgspec.json.decode(row[2], type=list[str]), row[3], row[4])

    async def healthy(self) -> bool:
        async with self._db.execute("SELECT 1") as cursor:
            return await cursor.fetchone() == (1,)

    async def close(self) -> None:
        await self.writer.stop()
        await self._db.close()
