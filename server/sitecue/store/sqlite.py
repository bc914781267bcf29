"""The embedded default: SQLite in WAL mode, shared safely by several worker processes."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from itertools import compress
from pathlib import Path
from typing import IO, Any

import aiosqlite
import msgspec

from ..errors import StoreUnavailable
from .backfill import sqlite_rollups
from .base import (
    COUNT_CLAIMS,
    COUNT_TOKEN_USES,
    DECISION_COLUMNS,
    END_KEY_SESSIONS,
    END_SESSION,
    EVENT_COLUMNS,
    FORGET,
    FORGET_BROWSER_PRODUCTS,
    HEARTBEAT,
    HISTORY_BROWSERS,
    HISTORY_RECORDS,
    INSERT_API_KEY,
    INSERT_DECISION,
    INSERT_EVENT,
    INSERT_SESSION,
    INSERT_TOKEN_USE,
    LIST_API_KEYS,
    PRUNE_TOKEN_USES,
    PSEUDONYMISE,
    PURGE_SESSIONS,
    REVOKE_API_KEY,
    SELECT_API_KEY,
    SESSION_KEY,
    TOUCH_API_KEY,
    UPSERT_CONTACT,
    UPSERT_LINK,
    VERIFIED_BROWSERS,
    AdminSession,
    ApiKey,
    Contact,
    DecisionQuery,
    DecisionRecord,
    EventRecord,
    GroupCounts,
    History,
    Row,
    TokenUse,
    VariantCounts,
    contact_row,
    decision_row,
    decode_history,
    event_row,
    pseudonym,
    token_use_row,
)
from .catalog import (
    ALL_PRODUCTS,
    BUMP_VERSION,
    CATALOG_CLAIMS_SQLITE,
    CATALOG_SQLITE,
    CLAIM_TTL_MS,
    COUNT_PRODUCT_CLAIMS,
    DELETE_PRODUCT,
    EXPIRE_CLAIMS,
    INSERT_CLAIM,
    SELECT_PRODUCT,
    SELECT_VERSION,
    SETTLE_CLAIMS,
    UPSERT_PAGE_PRODUCT,
    UPSERT_PRODUCT,
    PageClaim,
    Product,
    descriptions,
    open_claims,
    product_list_sql,
    product_of_row,
    product_row,
)
from .checkpoints import WAL_BOUND, Checkpointer
from .configs import (
    CONFIG_HISTORY,
    CONFIG_LATEST,
    CONFIG_ONE,
    ConfigHead,
    ConfigInfo,
    ConfigVersion,
    info_of,
    publish_sqlite,
    version_of,
)
from .contact_events import (
    INSERT_CONTACT_EVENT,
    LIST_CONTACT_EVENTS,
    REFRESH_SQLITE,
    ContactEvent,
    Refreshed,
    contact_event_of,
    contact_event_row,
    refreshed_of,
)
from .faults import translate_faults
from .outbox import (
    CLAIMED_COLUMNS,
    DEPTH,
    DISABLE,
    DISABLED,
    DUE_RANKED,
    ENABLE,
    ENABLE_AT,
    ERASE_BY,
    INSERT_MESSAGE,
    LEASED_BY,
    PRUNE,
    RETRY,
    REVIVE,
    SETTLE,
    TARGET_OF,
    Attempt,
    Claimed,
    Delivery,
    DeliveryQuery,
    DisabledWebhook,
    Message,
    claimed_of,
    delivery_of,
    disabled_of,
    erased_rows,
    message_row,
    settle_row,
)
from .outbox import list_sql as outbox_list_sql
from .product_rollups import (
    CLICKED_SQLITE,
    CONVERT_CLICKS,
    PRICES_SQLITE,
    PRODUCT_ROLLUPS_SQLITE,
    PRODUCTS_REPORT,
    PRUNE_CLICKS,
    STRATEGY_REPORT,
    STRATEGY_RESULTS,
    UPSERT_CLICKS_SQLITE,
    UPSERT_PRODUCTS,
    UPSERT_STRATEGIES,
    ProductCounts,
    ProductTally,
    Purchases,
    StrategyCounts,
    StrategyDay,
    clicked_of,
    first_clicks,
    pairs_json,
    priced_of,
    purchase_rows,
)
from .recommend import (
    CLAIM,
    COMMIT_STATE,
    DELETE_DELTAS,
    DELETE_LIST,
    DELTAS,
    EVENTS,
    HORIZON,
    INSERT_DELTAS,
    LISTS,
    PAIRS,
    POPULARITY,
    PRUNE_DAYS,
    PRUNE_VISITORS,
    PUBLISH_STATE,
    RECOMMEND_SQLITE,
    RENEW,
    TOTALS,
    UPSERT_DAYS,
    UPSERT_LIST,
    UPSERT_PAIRS,
    UPSERT_TOTALS,
    UPSERT_VISITORS,
    VERSION,
    Batch,
    Checkpoint,
    Horizon,
    Kind,
    ListChanges,
    PairKind,
    ProductEvent,
    encode_pairs,
    event_of,
    lists_version_of,
)
from .retention import EXPIRE, PRUNE_KEYS, Cutoffs, Rotation, Table, expire_args
from .rollups import (
    ATTRIBUTE,
    EXPOSE_SQLITE,
    EXPOSED_SQLITE,
    KEYS_SQLITE,
    REPORT,
    RESULTS,
    UPSERT_ROLLUPS,
    DayCounts,
    Goals,
    Tally,
    conversion_rows,
    day_counts,
    exposure_rows,
    exposures_of,
    key_rows,
    stored,
    variant_counts,
)
from .submissions import (
    BY_CONTACT,
    BY_VISITOR,
    CONTACT_ANSWERS,
    COUNT_BY_RULE,
    ERASE_BROWSER,
    INSERT_SUBMISSION,
    REPEATED,
    UPSERT_ANSWERS,
    RateLimit,
    Submission,
    SubmissionQuery,
    Submitted,
    list_sql,
    merged_answers,
    over,
    submission_of,
    submission_row,
)
from .verdicts import Verdict
from .writer import GroupWriter

# Versioned migrations, applied in order at start; PRAGMA user_version records the last one.
# Append new ones; never edit one that has shipped. A migration is an SQL script, or a
# function of the connection and the goals (see store.rollups; None: not known) run in
# its transaction.
Migration = str | Callable[[sqlite3.Connection, Goals | None], None]
MIGRATIONS: list[Migration] = [
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        site TEXT NOT NULL, visitor TEXT NOT NULL, type TEXT NOT NULL, at INTEGER NOT NULL,
        name TEXT, rule TEXT, variant TEXT, decision TEXT
    );
    CREATE INDEX events_visitor ON events (site, visitor, at);
    CREATE TABLE decisions (
        site TEXT NOT NULL, id TEXT NOT NULL,
        visitor TEXT NOT NULL, at INTEGER NOT NULL, url TEXT NOT NULL,
        verdicts TEXT NOT NULL, pageview INTEGER NOT NULL,
        PRIMARY KEY (site, id)
    ) WITHOUT ROWID;
    CREATE INDEX decisions_visitor ON decisions (site, visitor, id);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL, sites TEXT NOT NULL, label TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    """,
    """
    CREATE TABLE contacts (
        site TEXT NOT NULL, id TEXT NOT NULL, attributes TEXT NOT NULL, updated INTEGER NOT NULL,
        PRIMARY KEY (site, id)
    ) WITHOUT ROWID;
    CREATE TABLE links (
        site TEXT NOT NULL, visitor TEXT NOT NULL, contact TEXT NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (site, visitor)
    ) WITHOUT ROWID;
    CREATE INDEX links_contact ON links (site, contact, at);
    """,
    """
    ALTER TABLE events ADD COLUMN idempotency_key TEXT;
    ALTER TABLE decisions ADD COLUMN idempotency_key TEXT;
    CREATE UNIQUE INDEX events_once ON events (site, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE UNIQUE INDEX decisions_once ON decisions (site, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    """,
    """
    ALTER TABLE api_keys ADD COLUMN revoked INTEGER;
    ALTER TABLE api_keys ADD COLUMN last_used INTEGER;
    CREATE TABLE admin_sessions (
        id_hash TEXT PRIMARY KEY, key_id TEXT NOT NULL,
        created INTEGER NOT NULL, expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX admin_sessions_key ON admin_sessions (key_id);
    """,
    """
    ALTER TABLE links ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
    DROP INDEX links_contact;
    CREATE INDEX links_contact_verified ON links (site, contact, verified, at);
    CREATE TABLE token_uses (
        site TEXT NOT NULL, token TEXT NOT NULL, visitor TEXT NOT NULL, contact TEXT NOT NULL,
        at INTEGER NOT NULL, expires INTEGER NOT NULL,
        PRIMARY KEY (site, token, visitor)
    ) WITHOUT ROWID;
    CREATE INDEX token_uses_contact ON token_uses (site, contact);
    CREATE INDEX token_uses_expires ON token_uses (expires);
    """,
    """
    CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
    """,
    """
    CREATE TABLE submissions (
        site TEXT NOT NULL, id TEXT NOT NULL, rule TEXT NOT NULL, variant TEXT NOT NULL,
        decision TEXT NOT NULL, visitor TEXT NOT NULL, contact TEXT,
        fields TEXT NOT NULL, consents TEXT NOT NULL, at INTEGER NOT NULL,
        idempotency_key TEXT,
        PRIMARY KEY (site, id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX submissions_once ON submissions (site, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX submissions_rule ON submissions (site, rule, id);
    CREATE INDEX submissions_visitor ON submissions (site, visitor, at);
    CREATE INDEX submissions_contact ON submissions (site, contact, at);
    ALTER TABLE contacts ADD COLUMN answers TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE contacts ADD COLUMN source TEXT NOT NULL DEFAULT 'site';
    """,
    """
    CREATE TABLE contact_events (
        seq INTEGER PRIMARY KEY,
        site TEXT NOT NULL, contact TEXT NOT NULL, name TEXT NOT NULL, at INTEGER NOT NULL,
        value REAL, idempotency_key TEXT
    );
    CREATE INDEX contact_events_name ON contact_events (site, contact, name, at);
    CREATE UNIQUE INDEX contact_events_once ON contact_events (site, contact, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    """,
    """
    ALTER TABLE events ADD COLUMN value REAL;
    """,
    """
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY, site TEXT NOT NULL, webhook TEXT NOT NULL, target TEXT NOT NULL,
        event TEXT NOT NULL, at INTEGER NOT NULL, payload TEXT NOT NULL,
        contact TEXT, visitor TEXT, idempotency_key TEXT,
        status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        since INTEGER NOT NULL, next_try INTEGER NOT NULL,
        lease TEXT, lease_until INTEGER NOT NULL DEFAULT 0,
        last_try INTEGER, last_status INTEGER, last_error TEXT, delivered INTEGER
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX outbox_once ON outbox (site, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX outbox_due ON outbox (next_try) WHERE status = 'pending';
    CREATE INDEX outbox_site ON outbox (site, id);
    CREATE INDEX outbox_contact ON outbox (site, contact) WHERE contact IS NOT NULL;
    CREATE INDEX outbox_visitor ON outbox (site, visitor) WHERE visitor IS NOT NULL;
    CREATE TABLE webhook_states (
        target TEXT PRIMARY KEY, url TEXT NOT NULL, at INTEGER NOT NULL, message TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX outbox_done ON outbox (last_try) WHERE status <> 'pending';
    """,
    sqlite_rollups,
    """
    CREATE INDEX events_expiry ON events (site, at);
    """,
    """
    CREATE TABLE config_versions (
        version INTEGER PRIMARY KEY, hash TEXT NOT NULL, author TEXT, message TEXT,
        created INTEGER NOT NULL, files BLOB NOT NULL
    );
    """,
    CATALOG_SQLITE,
    CATALOG_CLAIMS_SQLITE,
    """
    ALTER TABLE contact_events ADD COLUMN products TEXT;
    """,
    PRODUCT_ROLLUPS_SQLITE,
    RECOMMEND_SQLITE,
]


def migrate(db: sqlite3.Connection, goals: Goals | None = None) -> int:
    """Apply the migrations this database has not seen, each in its own transaction; return
    the schema version. Workers starting together take turns on the write lock."""
    for version, script in enumerate(MIGRATIONS, start=1):
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] < version:
                if callable(script):
                    script(db, goals)
                # Statement by statement: executescript would commit on its own, outside
                # this transaction. (No statement holds a semicolon of its own.)
                else:
                    for statement in script.split(";"):
                        if statement.strip():
                            db.execute(statement)
                db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
    _vacuum_once(db)
    return len(MIGRATIONS)


def _vacuum_once(db: sqlite3.Connection) -> None:
    """Make the file give freed pages back in steps (incremental auto-vacuum, see
    retention), which a file made before it needs one VACUUM for. A new file has it from
    the start (a writer pragma, before its first table). Keyed on the mode the file's own
    header records, not on a schema version: VACUUM cannot run inside a migration's
    transaction, and one cut short (a crash) leaves the old file whole, to be done again.
    One that fails (it needs about the file's size in free disk) is logged and left to the
    next start: the file works as before, its freed pages reused but not given back."""
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # 2: INCREMENTAL
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        try:
            db.execute("VACUUM")
        except sqlite3.Error as err:
            _rollback(db)
            file = db.execute("PRAGMA database_list").fetchone()[2]
            log.warning(
                "sqlite: the one-time VACUUM of %s (to give freed pages back) failed: %s;"
                " carrying on without it, it is tried again at the next start",
                file, err,
            )  # fmt: skip


def _many(db: sqlite3.Connection, sql: str, rows: list[Any]) -> None:
    """``executemany``, unless there are no rows: a group's commit runs its statements for
    rows most groups do not have (messages, product clicks, conversions), and each costs
    ~5 µs even empty."""
    if rows:
        db.executemany(sql, rows)


def _rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction, unless SQLite already has: it rolls back by itself on a
    full disk or an I/O error, and a second ROLLBACK would raise "no transaction is active"
    in place of the error that matters."""
    if db.in_transaction:
        db.execute("ROLLBACK")


# The codes (primary, of sqlite3.Error.sqlite_errorcode) that mean the file cannot take our
# reads or writes now: BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 13, 14, 15})
LOCK_POLL_S = 0.002  # how often a process waiting for another's write tries the lock again

# The writing connection's settings. The busy timeout comes first, so every other pragma
# and migration waits for the file instead of failing with "database is locked". Deleted
# content is overwritten with zeros (secure_delete), so an erased person's rows are not left
# behind in free space; the log is checkpointed and truncated by a Checkpointer, not by
# whichever commit crosses SQLite's threshold, and never kept larger than its bound.
_WRITER_PRAGMAS = (
    "busy_timeout=5000",
    "auto_vacuum=INCREMENTAL",  # a new file's mode, set before its first table
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "wal_autocheckpoint=0",
    f"journal_size_limit={WAL_BOUND}",
    "secure_delete=ON",
)


def _unavailable(err: BaseException) -> bool:
    code = getattr(err, "sqlite_errorcode", 0) if isinstance(err, sqlite3.Error) else 0
    return (code & 0xFF) in _UNAVAILABLE


def _open_for_writing(path: str, goals: Goals | None) -> tuple[IO[bytes], sqlite3.Connection]:
    """The lock file beside the database and the writing connection, in WAL mode and
    migrated; creates the file (and its directory) when missing. Runs on a thread, as it
    waits: processes (and stores) opening together take turns on the lock file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lock_file = open(f"{path}.writer-lock", "a+b")  # noqa: SIM115 - the store closes it
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        writes = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            for pragma in _WRITER_PRAGMAS:
                (mode, *_) = writes.execute(f"PRAGMA {pragma}").fetchone() or ("",)
                if pragma.startswith("journal_mode") and mode != "wal":
                    raise sqlite3.OperationalError(f"cannot switch to WAL mode (still {mode})")
            migrate(writes, goals)
        except BaseException:
            writes.close()
            raise
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
    except BaseException:
        lock_file.close()
        raise
    return lock_file, writes


def _cannot_open(path: str, err: BaseException) -> StoreUnavailable:
    """One line naming the file and what is wrong with it."""
    if isinstance(err, OSError):
        cause = f"{err.strerror or err}: {err.filename}" if err.filename else str(err)
        if isinstance(err, PermissionError) or err.errno == errno.EROFS:
            cause = f"not writable ({cause})"
        elif isinstance(err, (FileExistsError, NotADirectoryError)):  # a file in the way
            cause = f"not a directory ({cause})"
    else:
        cause = str(err)
        parent = Path(path).parent
        if "unable to open" in cause and not os.access(parent, os.W_OK):
            cause += f" (the directory {parent} is not writable)"
    return StoreUnavailable(f"cannot open the database {path}: {cause}")


# The global holdout against the personalised: each visitor's first holdout or matched
# verdict, whether they were ever held out, and a goal (any of the JSON array given) after it.
_HOLDOUT_RESULTS = """
WITH firsts AS (
    SELECT d.visitor AS visitor, MAX(json_extract(v.value, '$.reason') = 'holdout') AS held,
           MIN(d.at) AS first
    FROM decisions AS d, json_each(d.verdicts) AS v
    WHERE d.site = ? AND d.visitor != '-'
      AND (json_extract(v.value, '$.matched') = 1
           OR json_extract(v.value, '$.reason') = 'holdout')
    GROUP BY d.visitor
)
SELECT CASE WHEN f.held THEN 'holdout' ELSE 'personalised' END AS grp, COUNT(*),
       SUM(EXISTS (
           SELECT 1 FROM events AS c
           WHERE c.site = ? AND c.visitor = f.visitor AND c.at >= f.first
             AND c.type IN ('event', 'trigger')
             AND c.name IN (SELECT value FROM json_each(?))
       ))
FROM firsts AS f GROUP BY grp ORDER BY grp
"""

# A person's history, bounded in SQL: the newest HISTORY_RECORDS rows of each browser, read
# with one LIMIT per browser (an index range scan each), however much a browser has logged,
# and aggregated into one JSON text by SQLite itself, which works without holding Python's
# interpreter lock (a fetch row by row takes and gives it back for every row).
_BROWSER_EVENTS = (
    f"SELECT * FROM (SELECT id, {EVENT_COLUMNS} FROM events WHERE site = ? AND visitor = ?"
    f" ORDER BY at DESC, id DESC LIMIT {HISTORY_RECORDS})"
)
# (Named, the browser's index: ordered by id, the primary key would look cheaper to a planner
# without statistics, and it would scan the whole site's decisions.)
_BROWSER_PAGEVIEWS = (
    "SELECT at, url FROM (SELECT at, url, pageview FROM decisions INDEXED BY decisions_visitor"
    f" WHERE site = ? AND visitor = ? ORDER BY id DESC LIMIT {HISTORY_RECORDS}) WHERE pageview"
)
_EVENT_JSON = "json_object(" + ", ".join(f"'{c}', {c}" for c in EVENT_COLUMNS.split(", ")) + ")"


def _read_history(path: str, site: str, contact_id: str) -> History:
    """Read a person's bounded history on a connection of its own, on a worker thread: the
    request path's connection (and /healthz behind it) never waits for these rows."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        browsers = [
            row[0] for row in db.execute(VERIFIED_BROWSERS, (site, contact_id, HISTORY_BROWSERS))
        ]
        if not browsers:
            return History([], [])
        args = [value for visitor in browsers for value in (site, visitor)]
        # An aggregate over an ordered subquery takes its rows in that order (SQLite does
        # not flatten such a subquery into an aggregate).
        ((events,),) = db.execute(
            f"SELECT json_group_array({_EVENT_JSON}) FROM (SELECT * FROM"
            f" ({' UNION ALL '.join([_BROWSER_EVENTS] * len(browsers))}) ORDER BY at, id)",
            args,
        ).fetchall()
        ((pageviews,),) = db.execute(
            "SELECT json_group_array(json_array(at, url)) FROM"
            f" ({' UNION ALL '.join([_BROWSER_PAGEVIEWS] * len(browsers))})",
            args,
        ).fetchall()
        return decode_history(events, pageviews)
    finally:
        db.close()


log = logging.getLogger("sitecue")
_encode = msgspec.json.Encoder().encode
_verdicts = msgspec.json.Decoder(list[Verdict]).decode
_attributes = msgspec.json.Decoder(dict[str, Any]).decode


def _api_key(row: Any) -> ApiKey:
    """A row of API_KEY_COLUMNS as a key; the sites are stored as JSON text."""
    return ApiKey(row[0], row[1], msgspec.json.decode(row[2], type=list[str]), *row[3:7])


@translate_faults(_unavailable)
class SQLiteStore:
    """Reads go through aiosqlite. Writes go through one GroupWriter per process, whose
    groups are committed with a plain sqlite3 connection on the event loop itself: a commit
    in WAL mode takes a fraction of a millisecond, while handing it to a thread made every
    group wait for that thread to win the GIL back from the busy loop (milliseconds each).
    Processes sharing the file take turns through an exclusive ``flock`` on a lock file
    beside it: taken at once when free, and otherwise waited for on a thread, so the loop
    never blocks on another process and wakes the moment the lock is free (SQLite's own
    busy handler would sleep-poll, up to 100 ms at a time). The lock also takes turns
    within the process (flock does not), with the Checkpointer among the writers."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: str,
        lock_file: IO[bytes],
        writes: sqlite3.Connection,
        goals: Goals | None = None,
    ) -> None:
        self.goals: Goals = goals or {}
        self.purchases: Purchases = {}
        self._db = db
        self._path = path
        self._lock_file = lock_file
        self._turn = asyncio.Lock()
        self._writes = writes
        self._checkpoints = Checkpointer(path, self._write_lock)
        self.writer = GroupWriter(self._flush, heartbeat=self._heartbeat, cancels_at_once=True)
        self.writer.start()

    @classmethod
    async def open(cls, path: str, goals: Goals | None = None) -> SQLiteStore:
        """Open the file, creating it when missing, and bring its schema up to date (the
        rollups' backfill counts conversions by ``goals``); one that cannot be opened,
        written or read as a database raises StoreUnavailable naming it."""
        try:
            lock_file, writes = await asyncio.to_thread(_open_for_writing, path, goals)
        except (OSError, sqlite3.Error) as err:
            raise _cannot_open(path, err) from err
        db = None
        try:
            db = await aiosqlite.connect(path)
            # Every statement is run to its end and closed: one left open would keep the WAL
            # checkpoints from ever completing (SQLITE_LOCKED), and the WAL would grow.
            async with db.execute("PRAGMA busy_timeout=5000") as cursor:
                await cursor.fetchall()
            return cls(db, path, lock_file, writes, goals)
        except BaseException as err:
            writes.close()
            lock_file.close()
            if db is not None:
                await db.close()  # or its thread would keep the process alive
            if isinstance(err, (OSError, sqlite3.Error)):
                raise _cannot_open(path, err) from err
            raise

    async def write(
        self,
        events: list[EventRecord],
        decisions: list[DecisionRecord],
        messages: Sequence[Message] = (),
    ) -> None:
        await self.writer.write(events, decisions, messages)

    async def _flush(
        self,
        events: list[EventRecord],
        decisions: list[DecisionRecord],
        messages: Sequence[Message] = (),
    ) -> None:
        event_rows = list(map(event_row, events))
        decision_rows = list(map(decision_row, decisions))
        message_rows = list(map(message_row, messages))
        keys = _encode(key_rows(events, decisions)).decode()
        async with self._write_lock():
            self._commit(events, decisions, keys, event_rows, decision_rows, message_rows)
        self._checkpoints.committed()

    @asynccontextmanager
    async def _write_lock(self) -> AsyncIterator[None]:
        """This store's turn to write to the file."""
        async with self._turn:
            # Another process is writing: poll rather than block a thread on the lock, as a
            # cancelled wait (a bounded read, a spooled commit) must not take the lock later
            # with nobody left to release it.
            while True:
                try:
                    fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(LOCK_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    async def _heartbeat(self) -> None:
        """A real commit, which a full disk or a read-only file refuses."""
        await self._execute(HEARTBEAT, (time.time_ns() // 1_000_000,))

    def _commit(
        self,
        events: list[EventRecord],
        decisions: list[DecisionRecord],
        keys: str,
        event_rows: list[Row],
        decision_rows: list[Row],
        message_rows: list[Row],
    ) -> None:
        """Insert one group (but a retry's records: ``keys``, the group's key rows as JSON)
        with its rollups and commit it, or roll all of it back."""
        w = self._writes
        w.execute("BEGIN IMMEDIATE")
        try:
            new = w.execute(KEYS_SQLITE, (keys,)).fetchall() if keys != "[]" else []
            kept_events, kept_decisions = stored(events, decisions, new)
            w.executemany(INSERT_EVENT, compress(event_rows, kept_events))
            w.executemany(INSERT_DECISION, compress(decision_rows, kept_decisions))
            _many(w, INSERT_MESSAGE, message_rows)
            tally = Tally()
            self._count(
                tally,
                list(compress(events, kept_events)),
                list(compress(decisions, kept_decisions)),
            )
            self._count_products(tally, events, kept_events, new)
            w.executemany(UPSERT_ROLLUPS, tally.rows())
            w.execute("COMMIT")
        except BaseException:
            _rollback(w)
            raise

    def _count(
        self, tally: Tally, events: list[EventRecord], decisions: list[DecisionRecord]
    ) -> None:
        """Record the stored records' exposures and conversions, and count them in
        ``tally`` with their activity (see store.rollups)."""
        w = self._writes
        tally.activity(events, decisions)
        exposures = exposure_rows(decisions)
        if exposures:
            tally.exposed(w.execute(EXPOSE_SQLITE, (_encode(exposures).decode(),)).fetchall())
        candidates = conversion_rows(events, self.goals)
        if candidates:
            named = _encode(exposures_of(candidates)).decode()
            changed = tally.attribute(w.execute(EXPOSED_SQLITE, (named,)).fetchall(), candidates)
            _many(w, ATTRIBUTE, changed)

    def _count_products(
        self, tally: Tally, events: list[EventRecord], kept: list[bool], new: list[Any]
    ) -> None:
        """Count the stored events' recommendation clicks and credit their purchases (see
        store.product_rollups); a product click's variant click goes to ``tally``."""
        w = self._writes
        stored_events = list(compress(events, kept))
        products = ProductTally()
        products.clicks(stored_events, list(compress(first_clicks(events, new), kept)), tally)
        clicks = products.click_rows()
        if clicks:
            w.execute(UPSERT_CLICKS_SQLITE, (pairs_json(clicks),))
        bought = purchase_rows(stored_events, self.purchases)
        if bought:
            found = w.execute(CLICKED_SQLITE, (pairs_json(clicked_of(bought)),)).fetchall()
            if found:
                priced = w.execute(PRICES_SQLITE, (pairs_json(priced_of(found)),)).fetchall()
                prices = {(site, product): price for site, product, price in priced}
                w.executemany(CONVERT_CLICKS, products.credit(bought, found, prices))
        _many(w, UPSERT_PRODUCTS, products.product_rows())
        _many(w, UPSERT_STRATEGIES, products.strategy_rows())

    async def decisions(self, query: DecisionQuery) -> list[DecisionRecord]:
        where: list[str] = ["site = ?"]
        args: list[object] = [query.site]
        if query.contact is not None:
            where.append(
                "visitor IN (SELECT visitor FROM links WHERE site = ? AND contact = ? AND verified)"
            )
            args += [query.site, query.contact]
        for column, op, value in (
            ("visitor", "=", query.visitor),
            ("at", ">=", query.since),
            ("at", "<", query.until),
            ("id", "<", query.before),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        verdict, none = query.verdict()
        if verdict:  # some single verdict has every one of them (or, with ``none``, none has)
            each = "SELECT 1 FROM json_each(decisions.verdicts) AS v"
            tests = " AND ".join(f"json_extract(v.value, '$.{field}') = ?" for field in verdict)
            where.append(f"{'NOT ' * none}EXISTS ({each} WHERE {tests})")
            args.extend(verdict.values())
        sql = (
            f"SELECT {DECISION_COLUMNS} FROM decisions"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        )
        rows = await self._rows(sql, (*args, query.limit))
        return [
            DecisionRecord(r[0], r[1], r[2], r[3], r[4], _verdicts(r[5]), bool(r[6])) for r in rows
        ]

    async def events(self, site: str, visitors: list[str]) -> list[EventRecord]:
        marks = ", ".join("?" * len(visitors))
        sql = (
            f"SELECT {EVENT_COLUMNS} FROM events"
            f" WHERE site = ? AND visitor IN ({marks}) ORDER BY at, id"
        )
        return [EventRecord(*row) for row in await self._rows(sql, (site, *visitors))]

    async def _rows(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        """Every row of one read, run to its end in a single call on the reader's thread.
        A statement left open across an await would hold its snapshot, and another read
        sharing the connection meanwhile would see the file as it was: a contact just
        written, missing; a key just revoked, still valid."""
        return list(await self._db.execute_fetchall(sql, args))

    async def _row(self, sql: str, args: Sequence[object] = ()) -> Any | None:
        """The first row of one read (a lookup by key), or None."""
        rows = await self._rows(sql, args)
        return rows[0] if rows else None

    async def _execute(self, sql: str, args: Row) -> None:
        """One statement outside the request path, committed at once."""
        async with self._write_lock():
            self._writes.execute(sql, args)

    async def put_contacts(self, contacts: list[Contact]) -> None:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                self._writes.executemany(UPSERT_CONTACT, map(contact_row, contacts))
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise

    async def contact(self, site: str, contact_id: str) -> Contact | None:
        sql = "SELECT attributes, updated, answers, source FROM contacts WHERE site = ? AND id = ?"
        row = await self._row(sql, (site, contact_id))
        if row is None:
            return None
        return Contact(site, contact_id, _attributes(row[0]), row[1], _attributes(row[2]), row[3])

    async def link(
        self,
        site: str,
        visitor: str,
        contact_id: str,
        at: int,
        *,
        verified: bool,
        messages: Sequence[Message] = (),
    ) -> None:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                self._writes.execute(UPSERT_LINK, (site, visitor, contact_id, at, verified))
                self._writes.executemany(INSERT_MESSAGE, map(message_row, messages))
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise

    async def visitors(self, site: str, contact_id: str) -> list[str]:
        sql = (
            "SELECT visitor FROM links WHERE site = ? AND contact = ? AND verified"
            " ORDER BY at, visitor"
        )
        return [row[0] for row in await self._rows(sql, (site, contact_id))]

    async def claims(self, site: str, contact_id: str) -> int:
        row = await self._row(COUNT_CLAIMS, (site, contact_id))
        return int(row[0]) if row else 0

    async def history(self, site: str, contact_id: str) -> History:
        return await asyncio.to_thread(_read_history, self._path, site, contact_id)

    async def use_token(self, use: TokenUse, limit: int) -> bool:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                self._writes.execute(PRUNE_TOKEN_USES, (use.at,))
                used, mine = self._writes.execute(
                    COUNT_TOKEN_USES, (use.visitor, use.site, use.token)
                ).fetchone()
                allowed = bool(mine) or used < limit
                if allowed and not mine:
                    self._writes.execute(INSERT_TOKEN_USE, token_use_row(use))
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise
        return allowed

    async def erase_contact(
        self, site: str, contact_id: str, messages: Sequence[Message] = ()
    ) -> bool:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                visitors = self._writes.execute(
                    "SELECT visitor FROM links WHERE site = ? AND contact = ? AND verified",
                    (site, contact_id),
                ).fetchall()
                now = min((m.at for m in messages), default=0)
                leased = [
                    self._writes.execute(LEASED_BY[column], (site, who, now)).fetchone()[0]
                    for column, who in [("contact", contact_id)]
                    + [("visitor", v) for (v,) in visitors]
                ]
                for (visitor,) in visitors:
                    stand_in = pseudonym()
                    for sql in PSEUDONYMISE:
                        self._writes.execute(sql, (stand_in, site, visitor))
                    self._writes.execute(ERASE_BROWSER, (site, visitor))
                    self._writes.execute(FORGET_BROWSER_PRODUCTS, (site, visitor))
                    for sql in ERASE_BY["visitor"]:
                        self._writes.execute(sql, (site, visitor))
                held = sum(self._writes.execute(sql, (site, contact_id)).rowcount for sql in FORGET)
                for sql in ERASE_BY["contact"]:
                    self._writes.execute(sql, (site, contact_id))
                if held:  # the downstream systems are told to erase the person too
                    until = max((t for t in leased if t is not None), default=None)
                    self._writes.executemany(INSERT_MESSAGE, erased_rows(messages, until))
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise
        # Secure delete zeroed what the erasure replaced in the database's pages; truncating
        # the log removes the copies of those pages it still holds.
        try:
            if not await self._checkpoints.checkpoint(truncate=True):
                log.warning("erasure: readers kept the WAL from being truncated; retrying")
        except sqlite3.Error as err:
            log.warning("erasure: the WAL could not be truncated yet (%s); retrying", err)
        return held > 0

    async def results(self, site: str, rule: str) -> list[VariantCounts]:
        return [variant_counts(row) for row in await self._rows(RESULTS, (site, rule))]

    async def report(self, site: str, rule: str, since_day: int, until_day: int) -> list[DayCounts]:
        return [
            day_counts(row) for row in await self._rows(REPORT, (site, rule, since_day, until_day))
        ]

    async def strategy_results(self, site: str, rule: str) -> list[StrategyCounts]:
        return [StrategyCounts(*row) for row in await self._rows(STRATEGY_RESULTS, (site, rule))]

    async def strategy_report(
        self, site: str, rule: str, since_day: int, until_day: int
    ) -> list[StrategyDay]:
        args = (site, rule, since_day, until_day)
        return [StrategyDay(*row) for row in await self._rows(STRATEGY_REPORT, args)]

    async def product_report(
        self, site: str, rule: str, since_day: int, until_day: int
    ) -> list[ProductCounts]:
        args = (site, rule, since_day, until_day)
        return [ProductCounts(*row) for row in await self._rows(PRODUCTS_REPORT, args)]

    async def prune_product_clicks(self, before: int, limit: int) -> int:
        async with self._write_lock():
            return int(self._writes.execute(PRUNE_CLICKS, (before, limit)).rowcount)

    async def holdout_results(self, site: str, goals: list[str]) -> list[GroupCounts]:
        params = (site, site, _encode(goals).decode())
        return [GroupCounts(*row) for row in await self._rows(_HOLDOUT_RESULTS, params)]

    async def add_api_key(self, key: ApiKey) -> None:
        await self._execute(
            INSERT_API_KEY,
            (key.id, key.secret_hash, _encode(key.sites).decode(), key.label, key.created),
        )

    async def api_key(self, key_id: str) -> ApiKey | None:
        row = await self._row(SELECT_API_KEY, (key_id,))
        return None if row is None else _api_key(row)

    async def api_keys(self) -> list[ApiKey]:
        return [_api_key(row) for row in await self._rows(LIST_API_KEYS)]

    async def touch_api_key(self, key_id: str, at: int) -> None:
        await self._execute(TOUCH_API_KEY, (at, key_id))

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                revoked = self._writes.execute(REVOKE_API_KEY, (at, key_id)).rowcount > 0
                self._writes.execute(END_KEY_SESSIONS, (key_id,))
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise
        return revoked

    async def add_session(self, session: AdminSession) -> None:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                self._writes.execute(PURGE_SESSIONS, (session.created,))
                self._writes.execute(
                    INSERT_SESSION,
                    (session.id_hash, session.key_id, session.created, session.expires),
                )
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise

    async def session_key(self, id_hash: str, now: int) -> ApiKey | None:
        row = await self._row(SESSION_KEY, (id_hash, now))
        return None if row is None else _api_key(row)

    async def end_session(self, id_hash: str) -> None:
        await self._execute(END_SESSION, (id_hash,))

    async def healthy(self) -> bool:
        if not await self.writer.healthy():
            return False
        try:
            return await self._row("SELECT COUNT(*) FROM api_keys") is not None
        # A failing read comes translated (StoreUnavailable); ValueError: the connection is
        # closed. Either way not healthy, which /healthz reports, rather than an error.
        except (StoreUnavailable, sqlite3.Error, ValueError):
            return False

    async def submit(
        self,
        submission: Submission,
        answers: dict[str, Any],
        event: EventRecord | None,
        key: str | None,
        limits: tuple[RateLimit, RateLimit],
        messages: Sequence[Message] = (),
    ) -> Submitted:
        async with self._write_lock():
            # BEGIN IMMEDIATE: the counts and the insert are one turn, for every process.
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                done = self._submit(submission, answers, event, key, limits)
                if done.outcome == "stored":
                    self._writes.executemany(INSERT_MESSAGE, map(message_row, messages))
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise
        return done

    def _submit(
        self,
        s: Submission,
        answers: dict[str, Any],
        event: EventRecord | None,
        key: str | None,
        limits: tuple[RateLimit, RateLimit],
    ) -> Submitted:
        w = self._writes
        if key is not None and w.execute(REPEATED, (s.site, key)).fetchone()[0]:
            return Submitted("repeated")
        for name, sql, who, limit in (
            ("visitor", BY_VISITOR, s.visitor if s.visitor != "-" else None, limits[0]),
            ("address", BY_CONTACT, s.contact, limits[1]),
        ):
            if who is not None:
                count, oldest = w.execute(sql, (s.site, who, s.at - limit.window_ms)).fetchone()
                wait = over(count, oldest, limit, s.at)
                if wait:
                    return Submitted("limited", name, wait)
        w.execute(INSERT_SUBMISSION, submission_row(s, key))
        # Its conversion is stored (and counted) unless the decision's was already.
        events = [event] if event is not None else []
        new = w.execute(KEYS_SQLITE, (_encode(key_rows(events, [])).decode(),)).fetchall()
        kept = [e for e, new_one in zip(events, stored(events, [], new)[0], strict=True) if new_one]
        w.executemany(INSERT_EVENT, map(event_row, kept))
        tally = Tally()
        tally.add(s.site, s.rule, s.variant, s.at, "submissions")
        self._count(tally, kept, [])
        w.executemany(UPSERT_ROLLUPS, tally.rows())
        if s.contact is not None:
            held = w.execute(CONTACT_ANSWERS, (s.site, s.contact)).fetchone()
            merged = merged_answers(held[0] if held else None, answers)
            w.execute(UPSERT_ANSWERS, (s.site, s.contact, s.at, merged))
            if s.visitor != "-":
                w.execute(UPSERT_LINK, (s.site, s.visitor, s.contact, s.at, False))
        return Submitted("stored")

    async def submissions(self, query: SubmissionQuery) -> list[Submission]:
        sql, args = list_sql(query)
        return [submission_of(row) for row in await self._rows(sql, args)]

    async def submission_counts(self, site: str) -> dict[str, int]:
        return {row[0]: int(row[1]) for row in await self._rows(COUNT_BY_RULE, (site,))}

    async def add_contact_events(self, events: list[ContactEvent]) -> int:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                # executemany sums the rows each insert changed: a retry's changes none.
                rows = map(contact_event_row, events)
                stored = self._writes.executemany(INSERT_CONTACT_EVENT, rows).rowcount
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise
        return int(stored)

    async def contact_events(self, site: str, contact_id: str) -> list[ContactEvent]:
        return [
            contact_event_of(row)
            for row in await self._rows(LIST_CONTACT_EVENTS, (site, contact_id))
        ]

    async def refresh(
        self,
        site: str,
        visitor: str,
        contact_id: str,
        names: list[str],
        since: int,
        purchase: str | None = None,
        bought_since: int = 0,
    ) -> Refreshed | None:
        args = (site, visitor, contact_id, _encode(names).decode(), since, purchase, bought_since)
        row = await self._row(REFRESH_SQLITE, args)
        return refreshed_of(*row) if row is not None else None

    async def put_products(self, site: str, products: Sequence[Product]) -> None:
        async with self._write_lock():
            w = self._writes
            w.execute("BEGIN IMMEDIATE")
            try:
                w.executemany(UPSERT_PRODUCT, (product_row(site, p, "site") for p in products))
                w.execute(BUMP_VERSION, (site,))
                w.execute("COMMIT")
            except BaseException:
                _rollback(w)
                raise

    async def product(self, site: str, product_id: str) -> Product | None:
        row = await self._row(SELECT_PRODUCT, (site, product_id))
        return None if row is None else product_of_row(row)

    async def products(
        self,
        site: str,
        category: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Product]:
        sql, args = product_list_sql(site, category, after, limit)
        return [product_of_row(row) for row in await self._rows(sql, args)]

    async def all_products(self, site: str) -> list[Product]:
        return [product_of_row(row) for row in await self._rows(ALL_PRODUCTS, (site,))]

    async def delete_product(self, site: str, product_id: str) -> bool:
        async with self._write_lock():
            w = self._writes
            w.execute("BEGIN IMMEDIATE")
            try:
                deleted = w.execute(DELETE_PRODUCT, (site, product_id)).rowcount > 0
                if deleted:
                    w.execute(BUMP_VERSION, (site,))
                w.execute("COMMIT")
            except BaseException:
                _rollback(w)
                raise
        return deleted

    async def catalog_version(self, site: str) -> int:
        row = await self._row(SELECT_VERSION, (site,))
        return 0 if row is None else int(row[0])

    async def confirm_page_products(
        self, site: str, claims: Sequence[PageClaim], confirm: int, now: int
    ) -> list[str]:
        written: list[str] = []
        async with self._write_lock():
            w = self._writes
            w.execute("BEGIN IMMEDIATE")
            try:
                w.execute(EXPIRE_CLAIMS, (site, now - CLAIM_TTL_MS))  # first: out of time
                held = {}
                for product_id in {c.product.id for c in claims}:
                    row = w.execute(SELECT_PRODUCT, (site, product_id)).fetchone()
                    if row is not None:
                        held[product_id] = product_of_row(row)
                kept = open_claims(claims, held)
                w.executemany(
                    INSERT_CLAIM, ((site, c.product.id, c.digest, c.visitor, now) for c in kept)
                )
                for (product_id, digest), product in descriptions(kept).items():
                    if product_id in written:
                        continue
                    (seen,) = w.execute(COUNT_PRODUCT_CLAIMS, (site, product_id, digest)).fetchone()
                    if seen < confirm:
                        continue
                    row = product_row(site, msgspec.structs.replace(product, updated=now), "page")
                    if w.execute(UPSERT_PAGE_PRODUCT, row).rowcount:
                        written.append(product_id)
                    w.execute(SETTLE_CLAIMS, (site, product_id))
                if written:
                    w.execute(BUMP_VERSION, (site,))
                w.execute("COMMIT")
            except BaseException:
                _rollback(w)
                raise
        return written

    async def claim_messages(
        self,
        targets: list[str],
        now: int,
        lease_ms: int,
        limit: int,
        rooms: list[int] | None = None,
    ) -> list[Claimed]:
        if not targets:
            return []
        lease = secrets.token_hex(16)
        room = dict(zip(targets, rooms or [limit] * len(targets), strict=True))
        ranked = DUE_RANKED.format(
            rooms="(SELECT key AS target, value AS room FROM json_each(:rooms)) r", now=":now"
        )
        # One statement, under the write lock: no two claims (of any process) take a row.
        sql = (
            "UPDATE outbox SET lease = :lease, lease_until = :until WHERE id IN (SELECT id"
            f" FROM ({ranked}) WHERE n <= room ORDER BY next_try LIMIT :limit)"
            f" RETURNING {CLAIMED_COLUMNS}"
        )
        args = {
            "lease": lease, "until": now + lease_ms, "now": now,
            "rooms": _encode(room).decode(), "limit": limit,
        }  # fmt: skip
        async with self._write_lock():
            rows = self._writes.execute(sql, args).fetchall()
        return [claimed_of(row, lease) for row in rows]

    async def settle_message(self, claimed: Claimed, attempt: Attempt, url: str) -> bool:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                held = self._writes.execute(SETTLE, settle_row(attempt, claimed)).rowcount > 0
                if held and attempt.code == 410:
                    m = claimed.message
                    self._writes.execute(DISABLE, (m.target, url, attempt.at, m.id))
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise
        return held

    async def deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        sql, args = outbox_list_sql(query)
        return [delivery_of(row) for row in await self._rows(sql, args)]

    async def retry_delivery(self, site: str, message_id: str, now: int) -> bool:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                row = self._writes.execute(TARGET_OF, (site, message_id)).fetchone()
                if row is not None:
                    self._writes.execute(RETRY, (now, now, site, message_id))
                    if self._writes.execute(ENABLE, (row[0],)).rowcount:
                        self._writes.execute(REVIVE, (now, now, row[0]))
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise
        return row is not None

    async def enable_webhook(self, target: str, url: str, now: int) -> bool:
        async with self._write_lock():
            self._writes.execute("BEGIN IMMEDIATE")
            try:
                enabled = self._writes.execute(ENABLE_AT, (target, url)).rowcount > 0
                if enabled:
                    self._writes.execute(REVIVE, (now, now, target))
                self._writes.execute("COMMIT")
            except BaseException:
                _rollback(self._writes)
                raise
        return enabled

    async def disabled_webhooks(self) -> list[DisabledWebhook]:
        return [disabled_of(row) for row in await self._rows(DISABLED)]

    async def prune_outbox(self, before: int, limit: int) -> int:
        async with self._write_lock():
            return int(self._writes.execute(PRUNE, (before, limit)).rowcount)

    async def outbox_depth(self) -> dict[tuple[str, str], int]:
        return {(r[0], r[1]): int(r[2]) for r in await self._rows(DEPTH)}

    async def expire(self, table: Table, site: str, before: int, limit: int) -> int:
        async with self._write_lock():
            gone = self._writes.execute(EXPIRE[table], expire_args(table, site, before, limit))
        self._checkpoints.committed()
        return int(gone.rowcount)

    async def prune_record_keys(self, before: int, limit: int) -> int:
        async with self._write_lock():
            gone = int(self._writes.execute(PRUNE_KEYS, (before, limit)).rowcount)
        self._checkpoints.committed()
        return gone

    async def rotate_partitions(self, now: int, cutoffs: Mapping[str, Cutoffs]) -> Rotation:
        return Rotation()  # one file, no partitions: expired rows go by expire()

    async def reclaim(self, pages: int) -> int:
        async with self._write_lock():
            # executescript steps the pragma to its end (execute frees one page a call).
            self._writes.executescript(f"PRAGMA incremental_vacuum({int(pages)})")
            (left,) = self._writes.execute("PRAGMA freelist_count").fetchone()
        self._checkpoints.committed()
        return int(left)

    async def publish_config(
        self,
        files: Mapping[str, bytes],
        author: str,
        message: str,
        created: int,
        *,
        only_if_empty: bool = False,
    ) -> tuple[ConfigHead, bool]:
        async with self._write_lock():
            return publish_sqlite(self._writes, files, author, message, created, only_if_empty)

    async def config_version(self) -> ConfigHead | None:
        row = await self._row(CONFIG_LATEST)
        return None if row is None else ConfigHead(int(row[0]), str(row[1]))

    async def config(self, version: int) -> ConfigVersion | None:
        row = await self._row(CONFIG_ONE, (version,))
        return None if row is None else version_of(row)

    async def config_history(self, limit: int = 100) -> list[ConfigInfo]:
        return [info_of(row) for row in await self._rows(CONFIG_HISTORY, (limit,))]

    async def listen_configs(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        async def stop() -> None:
            return None

        return stop  # one file, no notifications: the workers' polls find new versions

    async def close(self) -> None:
        await self.writer.stop()
        await self._checkpoints.close()
        self._writes.close()
        self._lock_file.close()
        await self._db.close()

    # The recommendations' job and index (see sitecue.recommend and store.recommend).

    async def recommend_claim(
        self, site: str, holder: str, now: int, lease_ms: int
    ) -> Checkpoint | None:
        async with self._write_lock():
            row = self._writes.execute(CLAIM, (site, holder, now + lease_ms, now)).fetchone()
        return None if row is None else Checkpoint(*map(int, row))

    async def recommend_horizon(self, site: str) -> Horizon:
        row = await self._row(HORIZON, (site,))
        return Horizon(int(row[0]) if row else 0, 0)  # one writer at a time: ids in order

    async def recommend_events(
        self, site: str, after: int, upto: int, limit: int
    ) -> list[ProductEvent]:
        rows = await self._rows(EVENTS, (site, after, upto, limit))
        return [event_of(row) for row in rows]

    async def recommend_visitors(
        self, site: str, kind: Kind, visitors: list[str]
    ) -> dict[str, bytes]:
        sql = (
            "SELECT visitor, touched FROM rec_visitors WHERE site = ? AND kind = ?"
            " AND visitor IN (SELECT value FROM json_each(?))"
        )
        args = (site, kind, _encode(visitors).decode())
        return {row[0]: bytes(row[1]) for row in await self._rows(sql, args)}

    async def _leased(
        self, guard: str, args: Row, body: Callable[[sqlite3.Connection], object]
    ) -> bool:
        """One transaction of the recommendations' job under its lease: ``guard`` renews (or
        moves) the lease, and must change one row, else the lease is lost and nothing is
        written (False); then ``body`` writes, and all of it commits, or rolls back."""
        w = self._writes
        async with self._write_lock():
            w.execute("BEGIN IMMEDIATE")
            try:
                if w.execute(guard, args).rowcount != 1:
                    _rollback(w)
                    return False
                body(w)
                w.execute("COMMIT")
            except BaseException:
                _rollback(w)
                raise
        self._checkpoints.committed()
        return True

    async def recommend_commit(
        self, site: str, holder: str, batch: Batch, lease_until: int
    ) -> bool:
        def write(w: sqlite3.Connection) -> None:
            w.executemany(UPSERT_VISITORS, [(site, *row) for row in batch.visitors])
            if batch.pairs:
                w.execute(INSERT_DELTAS, (site, encode_pairs(batch.pairs)))
            w.executemany(UPSERT_TOTALS, [(site, *row) for row in batch.totals])
            w.executemany(UPSERT_DAYS, [(site, *row) for row in batch.days])

        return await self._leased(COMMIT_STATE, (batch.done, lease_until, site, holder), write)

    async def recommend_deltas(self, site: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        return [(int(i), bytes(blob)) for i, blob in await self._rows(DELTAS, (site, after, limit))]

    async def recommend_merge(
        self,
        site: str,
        holder: str,
        upto: int,
        pairs: list[tuple[str, str, str, int]],
        lease_until: int,
    ) -> bool:
        def write(w: sqlite3.Connection) -> None:
            w.executemany(UPSERT_PAIRS, ((site, *row) for row in pairs))
            w.execute(DELETE_DELTAS, (site, upto))

        return await self._leased(RENEW, (lease_until, site, holder), write)

    async def recommend_pairs(
        self, site: str, kind: PairKind, min_support: int, after: tuple[str, str], limit: int
    ) -> list[tuple[str, str, int]]:
        args = (site, kind, min_support, after[0], after[0], after[1], limit)
        return [(a, b, int(n)) for a, b, n in await self._rows(PAIRS, args)]

    async def recommend_totals(self, site: str, kind: PairKind) -> dict[str, int]:
        return {p: int(n) for p, n in await self._rows(TOTALS, (site, kind))}

    async def recommend_popularity(self, site: str, since_day: int) -> dict[str, int]:
        return {p: int(n) for p, n in await self._rows(POPULARITY, (site, since_day))}

    async def recommend_lists(self, site: str) -> dict[str, str]:
        return {name: items for name, items in await self._rows(LISTS, (site,))}

    async def recommend_publish(self, site: str, holder: str, changes: ListChanges) -> bool:
        bump = 1 if changes.upserts or changes.deletes else 0
        state = (changes.seen, changes.seen_at, changes.published, changes.listed, bump, site)

        def write(w: sqlite3.Connection) -> None:
            w.executemany(UPSERT_LIST, [(site, *row) for row in changes.upserts])
            w.executemany(DELETE_LIST, [(site, name) for name in changes.deletes])

        return await self._leased(PUBLISH_STATE, (*state, holder), write)

    async def recommend_prune(
        self, site: str, kind: Kind, before: int, before_day: int, limit: int
    ) -> int:
        async with self._write_lock():
            args = (site, kind, before, site, kind, before, limit - 1, before)
            gone = self._writes.execute(PRUNE_VISITORS, args)
            self._writes.execute(PRUNE_DAYS, (site, before_day))
        self._checkpoints.committed()
        return int(gone.rowcount)

    async def recommend_version(self, site: str) -> tuple[int, int]:
        return lists_version_of(await self._row(VERSION, (site, site)))
