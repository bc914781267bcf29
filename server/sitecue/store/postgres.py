"""PostgreSQL (asyncpg, pooled): the engine for many stateless nodes sharing one database.

The same records and the same GroupWriter as the SQLite engine; each group is one
transaction on a pooled connection. Nodes starting together apply the migrations one at a
time under an advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from itertools import compress
from typing import Any

import asyncpg
import msgspec

from ..errors import StoreUnavailable
from .backfill import postgres_rollups
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
    CATALOG_CLAIMS_POSTGRES,
    CATALOG_POSTGRES,
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
from .configs import (
    CONFIG_CHANNEL,
    CONFIG_HISTORY,
    CONFIG_LATEST,
    CONFIG_ONE,
    ConfigHead,
    ConfigInfo,
    ConfigVersion,
    info_of,
    publish_postgres,
    version_of,
)
from .contact_events import (
    INSERT_CONTACT_EVENTS_POSTGRES,
    LIST_CONTACT_EVENTS,
    REFRESH_POSTGRES,
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
from .partitions import MIGRATION as PARTITION_BY_DAY
from .partitions import expire as expire_batch
from .partitions import rotate
from .product_rollups import (
    CLICKED_POSTGRES,
    CONVERT_CLICKS_POSTGRES,
    PRICES_POSTGRES,
    PRODUCT_ROLLUPS_POSTGRES,
    PRODUCTS_REPORT,
    PRUNE_CLICKS,
    STRATEGY_REPORT,
    STRATEGY_RESULTS,
    UPSERT_CLICKS_POSTGRES,
    UPSERT_PRODUCTS_POSTGRES,
    UPSERT_STRATEGIES_POSTGRES,
    ProductCounts,
    ProductTally,
    Purchases,
    StrategyCounts,
    StrategyDay,
    clicked_of,
    first_clicks,
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
    RECOMMEND_POSTGRES,
    RENEW,
    TOTALS,
    UPSERT_DAYS,
    UPSERT_LIST,
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
from .retention import PRUNE_KEYS, Cutoffs, Rotation, Table
from .rollups import (
    ATTRIBUTE_POSTGRES,
    EXPOSE_POSTGRES,
    EXPOSED_POSTGRES,
    KEYS_POSTGRES,
    REPORT,
    RESULTS,
    UPSERT_ROLLUPS_POSTGRES,
    DayCounts,
    Goals,
    Tally,
    columns,
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

__all__ = ["MIGRATIONS", "PostgresStore"]

# Versioned migrations, applied in order at start and recorded in schema_migrations.
# Append new ones; never edit one that has shipped. A migration is an SQL script, or a
# function of the connection and the goals (see store.rollups; None: not known) run in
# its transaction.
Migration = str | Callable[[asyncpg.Connection, Goals | None], Awaitable[None]]
MIGRATIONS: list[Migration] = [
    """
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        site TEXT NOT NULL, visitor TEXT NOT NULL, type TEXT NOT NULL, at BIGINT NOT NULL,
        name TEXT, rule TEXT, variant TEXT, decision TEXT
    );
    CREATE INDEX events_visitor ON events (site, visitor, at);
    CREATE TABLE decisions (
        site TEXT NOT NULL, id TEXT NOT NULL,
        visitor TEXT NOT NULL, at BIGINT NOT NULL, url TEXT NOT NULL,
        verdicts JSONB NOT NULL, pageview BOOLEAN NOT NULL,
        PRIMARY KEY (site, id)
    );
    CREATE INDEX decisions_visitor ON decisions (site, visitor, id);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL, sites TEXT[] NOT NULL, label TEXT NOT NULL,
        created BIGINT NOT NULL
    );
    """,
    """
    CREATE TABLE contacts (
        site TEXT NOT NULL, id TEXT NOT NULL, attributes JSONB NOT NULL, updated BIGINT NOT NULL,
        PRIMARY KEY (site, id)
    );
    CREATE TABLE links (
        site TEXT NOT NULL, visitor TEXT NOT NULL, contact TEXT NOT NULL, at BIGINT NOT NULL,
        PRIMARY KEY (site, visitor)
    );
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
    ALTER TABLE api_keys ADD COLUMN revoked BIGINT;
    ALTER TABLE api_keys ADD COLUMN last_used BIGINT;
    CREATE TABLE admin_sessions (
        id_hash TEXT PRIMARY KEY, key_id TEXT NOT NULL,
        created BIGINT NOT NULL, expires BIGINT NOT NULL
    );
    CREATE INDEX admin_sessions_key ON admin_sessions (key_id);
    """,
    """
    ALTER TABLE links ADD COLUMN verified BOOLEAN NOT NULL DEFAULT false;
    DROP INDEX links_contact;
    CREATE INDEX links_contact_verified ON links (site, contact, verified, at);
    CREATE TABLE token_uses (
        site TEXT NOT NULL, token TEXT NOT NULL, visitor TEXT NOT NULL, contact TEXT NOT NULL,
        at BIGINT NOT NULL, expires BIGINT NOT NULL,
        PRIMARY KEY (site, token, visitor)
    );
    CREATE INDEX token_uses_contact ON token_uses (site, contact);
    CREATE INDEX token_uses_expires ON token_uses (expires);
    """,
    """
    CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at BIGINT NOT NULL);
    """,
    """
    CREATE TABLE submissions (
        site TEXT NOT NULL, id TEXT NOT NULL, rule TEXT NOT NULL, variant TEXT NOT NULL,
        decision TEXT NOT NULL, visitor TEXT NOT NULL, contact TEXT,
        fields JSONB NOT NULL, consents JSONB NOT NULL, at BIGINT NOT NULL,
        idempotency_key TEXT,
        PRIMARY KEY (site, id)
    );
    CREATE UNIQUE INDEX submissions_once ON submissions (site, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX submissions_rule ON submissions (site, rule, id);
    CREATE INDEX submissions_visitor ON submissions (site, visitor, at);
    CREATE INDEX submissions_contact ON submissions (site, contact, at);
    ALTER TABLE contacts ADD COLUMN answers JSONB NOT NULL DEFAULT '{}';
    ALTER TABLE contacts ADD COLUMN source TEXT NOT NULL DEFAULT 'site';
    """,
    """
    CREATE TABLE contact_events (
        seq BIGSERIAL PRIMARY KEY,
        site TEXT NOT NULL, contact TEXT NOT NULL, name TEXT NOT NULL, at BIGINT NOT NULL,
        value DOUBLE PRECISION, idempotency_key TEXT
    );
    CREATE INDEX contact_events_name ON contact_events (site, contact, name, at);
    CREATE UNIQUE INDEX contact_events_once ON contact_events (site, contact, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    """,
    """
    ALTER TABLE events ADD COLUMN value DOUBLE PRECISION;
    """,
    """
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY, site TEXT NOT NULL, webhook TEXT NOT NULL, target TEXT NOT NULL,
        event TEXT NOT NULL, at BIGINT NOT NULL, payload TEXT NOT NULL,
        contact TEXT, visitor TEXT, idempotency_key TEXT,
        status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        since BIGINT NOT NULL, next_try BIGINT NOT NULL,
        lease TEXT, lease_until BIGINT NOT NULL DEFAULT 0,
        last_try BIGINT, last_status INTEGER, last_error TEXT, delivered BIGINT
    );
    CREATE UNIQUE INDEX outbox_once ON outbox (site, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX outbox_due ON outbox (next_try) WHERE status = 'pending';
    CREATE INDEX outbox_site ON outbox (site, id);
    CREATE INDEX outbox_contact ON outbox (site, contact) WHERE contact IS NOT NULL;
    CREATE INDEX outbox_visitor ON outbox (site, visitor) WHERE visitor IS NOT NULL;
    CREATE TABLE webhook_states (
        target TEXT PRIMARY KEY, url TEXT NOT NULL, at BIGINT NOT NULL, message TEXT NOT NULL
    );
    CREATE INDEX outbox_done ON outbox (last_try) WHERE status <> 'pending';
    """,
    postgres_rollups,
    PARTITION_BY_DAY,  # events and decisions: one partition per day (see store.partitions)
    """
    CREATE TABLE config_versions (
        version INTEGER PRIMARY KEY, hash TEXT NOT NULL, author TEXT, message TEXT,
        created BIGINT NOT NULL, files BYTEA NOT NULL
    );
    """,
    CATALOG_POSTGRES,
    CATALOG_CLAIMS_POSTGRES,
    """
    ALTER TABLE contact_events ADD COLUMN products TEXT;
    """,
    PRODUCT_ROLLUPS_POSTGRES,
    RECOMMEND_POSTGRES,
]


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, …``."""
    count = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


_INSERT_EVENT = _numbered(INSERT_EVENT)
_INSERT_DECISION = _numbered(INSERT_DECISION)
_INSERT_API_KEY = _numbered(INSERT_API_KEY)
_UPSERT_CONTACT = _numbered(UPSERT_CONTACT)
_UPSERT_PRODUCT = _numbered(UPSERT_PRODUCT)
_UPSERT_PAGE_PRODUCT = _numbered(UPSERT_PAGE_PRODUCT)
_SELECT_PRODUCT = _numbered(SELECT_PRODUCT)
_BUMP_VERSION = _numbered(BUMP_VERSION)
_UPSERT_LINK = _numbered(UPSERT_LINK)
_SELECT_API_KEY = _numbered(SELECT_API_KEY)
_REVOKE_API_KEY = _numbered(REVOKE_API_KEY)
_TOUCH_API_KEY = _numbered(TOUCH_API_KEY)
_END_KEY_SESSIONS = _numbered(END_KEY_SESSIONS)
_INSERT_SESSION = _numbered(INSERT_SESSION)
_PURGE_SESSIONS = _numbered(PURGE_SESSIONS)
_END_SESSION = _numbered(END_SESSION)
_SESSION_KEY = _numbered(SESSION_KEY)
_COUNT_CLAIMS = _numbered(COUNT_CLAIMS)
_PRUNE_TOKEN_USES = _numbered(PRUNE_TOKEN_USES)
_COUNT_TOKEN_USES = _numbered(COUNT_TOKEN_USES)
_INSERT_TOKEN_USE = _numbered(INSERT_TOKEN_USE)
_TOKEN_USES_LOCK = 0x5C0F  # with a hash of (site, token): one token's uses, one at a time
# A person's history, bounded in SQL: their most recently linked verified browsers, and the
# newest HISTORY_RECORDS rows of each (an index range scan per browser, however much it has).
_BROWSERS = f"({_numbered(VERIFIED_BROWSERS)})"
_EVENT_JSON = (
    "json_build_object(" + ", ".join(f"'{c}', e.{c}" for c in EVENT_COLUMNS.split(", ")) + ")"
)
# Aggregated into one JSON text by the server, decoded on a thread in one call: no row by
# row work on the event loop.
_HISTORY_EVENTS = f"""
SELECT COALESCE(json_agg({_EVENT_JSON} ORDER BY e.at, e.id), '[]')::text
FROM {_BROWSERS} AS b CROSS JOIN LATERAL (
    SELECT * FROM events WHERE site = $1 AND visitor = b.visitor
    ORDER BY at DESC, id DESC LIMIT {HISTORY_RECORDS}
) AS e
"""
_HISTORY_PAGEVIEWS = f"""
SELECT COALESCE(json_agg(json_build_array(d.at, d.url)), '[]')::text
FROM {_BROWSERS} AS b CROSS JOIN LATERAL (
    SELECT at, url, pageview FROM decisions WHERE site = $1 AND visitor = b.visitor
    ORDER BY id DESC LIMIT {HISTORY_RECORDS}
) AS d WHERE d.pageview
"""
_HEARTBEAT = _numbered(HEARTBEAT)
_PSEUDONYMISE = [_numbered(sql) for sql in PSEUDONYMISE]
_FORGET = [_numbered(sql) for sql in FORGET]
_SUBMISSIONS_LOCK = 0x5C10  # with a hash of the site: its submissions are counted one at a time
_REPEATED = _numbered(REPEATED)
_BY_VISITOR = _numbered(BY_VISITOR)
_BY_CONTACT = _numbered(BY_CONTACT)
_INSERT_SUBMISSION = _numbered(INSERT_SUBMISSION)
_CONTACT_ANSWERS = _numbered(CONTACT_ANSWERS.replace("SELECT answers", "SELECT answers::text"))
_UPSERT_ANSWERS = _numbered(UPSERT_ANSWERS)
_COUNT_BY_RULE = _numbered(COUNT_BY_RULE)
_ERASE_BROWSER = _numbered(ERASE_BROWSER)
_RESULTS = _numbered(RESULTS)
_STRATEGY_RESULTS = _numbered(STRATEGY_RESULTS)
_STRATEGY_REPORT = _numbered(STRATEGY_REPORT)
_PRODUCTS_REPORT = _numbered(PRODUCTS_REPORT)
_PRUNE_CLICKS = _numbered(PRUNE_CLICKS)
_REPORT = _numbered(REPORT)
_INSERT_MESSAGE = _numbered(INSERT_MESSAGE)
_SETTLE = _numbered(SETTLE)
_DISABLE = _numbered(DISABLE)
_ENABLE = _numbered(ENABLE)
_ENABLE_AT = _numbered(ENABLE_AT)
_PRUNE = _numbered(PRUNE)
_REVIVE = _numbered(REVIVE)
_RETRY = _numbered(RETRY)
_TARGET_OF = _numbered(TARGET_OF)
_PRUNE_KEYS = _numbered(PRUNE_KEYS)
_LEASED_BY = {column: _numbered(sql) for column, sql in LEASED_BY.items()}
_ERASE_BY = {column: [_numbered(sql) for sql in sqls] for column, sqls in ERASE_BY.items()}
# SKIP LOCKED: nodes claiming at once each take rows no other claim holds, without waiting.
# Each webhook's oldest due messages, at most its room, each webhook's rows locked on their
# own (SKIP LOCKED: a node claiming at the same time takes the next ones, not none).
_CLAIM = f"""
UPDATE outbox SET lease = $1, lease_until = $2 WHERE id IN (
    SELECT due.id FROM unnest($4::text[], $6::int[]) AS r(target, room)
    CROSS JOIN LATERAL (
        SELECT id, next_try FROM outbox
        WHERE target = r.target AND status = 'pending' AND next_try <= $3 AND lease_until <= $3
        ORDER BY next_try LIMIT r.room FOR UPDATE SKIP LOCKED
    ) AS due
    ORDER BY due.next_try LIMIT $5
) RETURNING {CLAIMED_COLUMNS}
"""
# Claims and settlements need not wait for the WAL's flush: one lost in a crash only sends a
# message again (the lease expires), which delivery allows anyway; the messages themselves
# are committed durably, with their records.
_NO_FLUSH_WAIT = "SET LOCAL synchronous_commit TO OFF"
# The global holdout against the personalised (see the SQLite store's twin).
_HOLDOUT_RESULTS = """
WITH firsts AS (
    SELECT d.visitor, bool_or(v->>'reason' = 'holdout') AS held, MIN(d.at) AS first
    FROM decisions AS d, jsonb_array_elements(d.verdicts) AS v
    WHERE d.site = $1 AND d.visitor <> '-'
      AND ((v->>'matched')::boolean OR v->>'reason' = 'holdout')
    GROUP BY d.visitor
)
SELECT CASE WHEN f.held THEN 'holdout' ELSE 'personalised' END AS grp, COUNT(*)::int,
       (COUNT(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM events AS c
           WHERE c.site = $1 AND c.visitor = f.visitor AND c.at >= f.first
             AND c.type IN ('event', 'trigger') AND c.name = ANY($2::text[])
       )))::int
FROM firsts AS f GROUP BY grp ORDER BY grp
"""
_MIGRATION_LOCK = 0x5C0E  # the advisory lock nodes take turns on while migrating
# The recommendations' job counts events up to an id seen this long ago: a writer's group
# (milliseconds) that took a smaller id has committed by then (see store.recommend.Horizon).
RECOMMEND_SETTLE_MS = 10_000
_MERGE_PAIRS = (
    "INSERT INTO rec_pairs (site, kind, a, b, n) SELECT $1, k, a, b, n"
    " FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS t (k, a, b, n)"
    " ON CONFLICT (site, kind, a, b) DO UPDATE SET n = rec_pairs.n + excluded.n"
)
_encode = msgspec.json.Encoder().encode
_verdicts = msgspec.json.Decoder(list[Verdict]).decode
_attributes = msgspec.json.Decoder(dict[str, Any]).decode


async def migrate(db: asyncpg.Connection, goals: Goals | None = None) -> int:
    """Apply the migrations this database has not seen; return the schema version."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)"
        )
        done = await db.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        for version, script in enumerate(MIGRATIONS, start=1):
            if version > done:
                if callable(script):
                    await script(db, goals)
                else:
                    await db.execute(script)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2)", version, int(time.time())
                )
    return len(MIGRATIONS)


def _api_key(row: asyncpg.Record) -> ApiKey:
    """A row of API_KEY_COLUMNS as a key."""
    return ApiKey(row[0], row[1], list(row[2]), row[3], row[4], row[5], row[6])


_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,  # 08: the connection failed or was lost
    asyncpg.InsufficientResourcesError,  # 53: disk full, out of memory or connections
    asyncpg.OperatorInterventionError,  # 57: shutting down, starting up
    asyncpg.PostgresSystemError,  # 58: I/O errors
    asyncpg.ReadOnlySQLTransactionError,  # a standby, or a read-only server
)


def _unavailable(err: BaseException) -> bool:
    """The server is stopped, unreachable, shutting down, out of disk or connections, or
    read-only (a standby): nothing is wrong with what we asked. A client-side error raised
    while handling such a fault (leaving a transaction on a connection the server closed)
    is that fault too, and so is asyncpg losing track of a connection that the server cut
    mid-operation (seen when PostgreSQL stops under load): the operation did not complete."""
    if isinstance(err, (OSError, TimeoutError, asyncpg.InternalClientError, *_UNAVAILABLE)):
        return True
    during = err.__cause__ or err.__context__
    if not isinstance(err, asyncpg.InterfaceError) or during is None:
        return False
    return isinstance(during, StoreUnavailable) or _unavailable(during)


def _without_password(url: str) -> str:
    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", url)


@translate_faults(_unavailable)
class PostgresStore:
    """Reads and writes through one asyncpg pool; writes grouped by a GroupWriter."""

    def __init__(self, pool: asyncpg.Pool, goals: Goals | None = None) -> None:
        self.goals: Goals = goals or {}
        self.purchases: Purchases = {}
        self._pool = pool
        self.writer = GroupWriter(self._flush, heartbeat=self._heartbeat)
        self.writer.start()

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 10, goals: Goals | None = None
    ) -> PostgresStore:
        """Connect and bring the schema up to date (the rollups' backfill counts conversions
        by ``goals``); a server that cannot be reached raises StoreUnavailable naming it
        (without its password) and why."""
        try:
            # A server that drops packets fails each connection attempt (the pool's reconnects
            # in requests too) after 10 s, not asyncpg's default of 60.
            pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, timeout=10)
        except Exception as err:
            if not _unavailable(err) and not isinstance(err, asyncpg.PostgresError):
                raise
            raise StoreUnavailable(
                f"cannot open the database {_without_password(url)}: {err}"
            ) from err
        try:
            async with pool.acquire() as db:
                await migrate(db, goals)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, goals)

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
        keys = key_rows(events, decisions)
        async with self._pool.acquire() as db, db.transaction():
            if messages:
                await db.executemany(_INSERT_MESSAGE, map(message_row, messages))
            new = await db.fetch(KEYS_POSTGRES, *columns(keys, 3)) if keys else []
            kept_events, kept_decisions = stored(events, decisions, map(tuple, new))
            sent = events
            events = list(compress(events, kept_events))
            decisions = list(compress(decisions, kept_decisions))
            if events:
                await db.executemany(
                    _INSERT_EVENT,
                    map(event_row, events),
                )
            if decisions:
                await db.executemany(
                    _INSERT_DECISION,
                    map(decision_row, decisions),
                )
            tally = Tally()
            await self._count_products(db, tally, sent, kept_events, [tuple(r) for r in new])
            await self._count(db, tally, events, decisions)

    async def _count_products(
        self,
        db: asyncpg.Connection,
        tally: Tally,
        events: list[EventRecord],
        kept: list[bool],
        new: list[Any],
    ) -> None:
        """Count the stored events' recommendation clicks and credit their purchases (see
        store.product_rollups); a product click's variant click goes to ``tally``."""
        stored_events = list(compress(events, kept))
        products = ProductTally()
        products.clicks(stored_events, list(compress(first_clicks(events, new), kept)), tally)
        clicks = products.click_rows()
        if clicks:
            await db.execute(UPSERT_CLICKS_POSTGRES, *columns(clicks, 7))
        bought = purchase_rows(stored_events, self.purchases)
        if bought:
            found = await db.fetch(CLICKED_POSTGRES, *columns(clicked_of(bought), 3))
            if found:
                priced = await db.fetch(PRICES_POSTGRES, *columns(priced_of(found), 2))
                prices = {(site, product): price for site, product, price in priced}
                changed = products.credit(bought, found, prices)
                if changed:
                    await db.execute(CONVERT_CLICKS_POSTGRES, *columns(changed, 4))
        for sql, rows, width in (
            (UPSERT_PRODUCTS_POSTGRES, products.product_rows(), 9),
            (UPSERT_STRATEGIES_POSTGRES, products.strategy_rows(), 8),
        ):
            if rows:
                await db.execute(sql, *columns(rows, width))

    async def _count(
        self,
        db: asyncpg.Connection,
        tally: Tally,
        events: list[EventRecord],
        decisions: list[DecisionRecord],
    ) -> None:
        """Record the stored records' exposures and conversions, and add them with their
        activity to the rollups, one statement each (see store.rollups)."""
        tally.activity(events, decisions)
        exposures = exposure_rows(decisions)
        if exposures:
            tally.exposed(await db.fetch(EXPOSE_POSTGRES, *columns(exposures, 5)))
        candidates = conversion_rows(events, self.goals)
        if candidates:
            named = columns(exposures_of(candidates), 3)
            changed = tally.attribute(await db.fetch(EXPOSED_POSTGRES, *named), candidates)
            if changed:
                await db.execute(ATTRIBUTE_POSTGRES, *columns(changed, 5))
        rows = tally.rows()
        if rows:
            await db.execute(UPSERT_ROLLUPS_POSTGRES, *columns(rows, 13))

    async def decisions(self, query: DecisionQuery) -> list[DecisionRecord]:
        where = ["site = $1"]
        args: list[object] = [query.site]
        if query.contact is not None:
            args.append(query.contact)
            where.append(
                "visitor IN (SELECT visitor FROM links"
                f" WHERE site = $1 AND contact = ${len(args)} AND verified)"
            )
        for column, op, value in (
            ("visitor", "=", query.visitor),
            ("at", ">=", query.since),
            ("at", "<", query.until),
            ("id", "<", query.before),
        ):
            if value is not None:
                args.append(value)
                where.append(f"{column} {op} ${len(args)}")
        verdict, none = query.verdict()
        if verdict:  # some single verdict has every one of them: JSONB containment says so
            args.append(_encode([verdict]).decode())  # (or, with ``none``, none has)
            where.append(f"{'NOT ' * none}verdicts @> ${len(args)}::jsonb")
        args.append(query.limit)
        sql = (
            f"SELECT {DECISION_COLUMNS} FROM decisions"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ${len(args)}"
        )
        async with self._pool.acquire() as db:
            rows = await db.fetch(sql, *args)
        return [DecisionRecord(r[0], r[1], r[2], r[3], r[4], _verdicts(r[5]), r[6]) for r in rows]

    async def events(self, site: str, visitors: list[str]) -> list[EventRecord]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events"
                " WHERE site = $1 AND visitor = ANY($2::text[]) ORDER BY at, id",
                site,
                visitors,
            )
        return [EventRecord(*row) for row in rows]

    async def put_contacts(self, contacts: list[Contact]) -> None:
        async with self._pool.acquire() as db, db.transaction():
            await db.executemany(_UPSERT_CONTACT, map(contact_row, contacts))

    async def contact(self, site: str, contact_id: str) -> Contact | None:
        async with self._pool.acquire() as db:
            row = await db.fetchrow(
                "SELECT attributes::text, updated, answers::text, source FROM contacts"
                " WHERE site = $1 AND id = $2",
                site,
                contact_id,
            )
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
        async with self._pool.acquire() as db, db.transaction():
            if messages:
                await db.executemany(_INSERT_MESSAGE, map(message_row, messages))
            await db.execute(
                _UPSERT_LINK,
                site,
                visitor,
                contact_id,
                at,
                verified,
            )

    async def visitors(self, site: str, contact_id: str) -> list[str]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(
                "SELECT visitor FROM links WHERE site = $1 AND contact = $2 AND verified"
                " ORDER BY at, visitor",
                site,
                contact_id,
            )
        return [row[0] for row in rows]

    async def claims(self, site: str, contact_id: str) -> int:
        async with self._pool.acquire() as db:
            return int(await db.fetchval(_COUNT_CLAIMS, site, contact_id))

    async def history(self, site: str, contact_id: str) -> History:
        async with self._pool.acquire() as db:
            events = await db.fetchval(_HISTORY_EVENTS, site, contact_id, HISTORY_BROWSERS)
            pageviews = await db.fetchval(_HISTORY_PAGEVIEWS, site, contact_id, HISTORY_BROWSERS)
        return await asyncio.to_thread(decode_history, events, pageviews)

    async def use_token(self, use: TokenUse, limit: int) -> bool:
        async with self._pool.acquire() as db, db.transaction():
            # Two nodes seeing two new browsers at once must not both take the last place.
            await db.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                _TOKEN_USES_LOCK,
                f"{use.site}/{use.token}",
            )
            await db.execute(_PRUNE_TOKEN_USES, use.at)
            used, mine = await db.fetchrow(_COUNT_TOKEN_USES, use.visitor, use.site, use.token)
            allowed = bool(mine) or used < limit
            if allowed and not mine:
                await db.execute(_INSERT_TOKEN_USE, *token_use_row(use))
        return allowed

    async def erase_contact(
        self, site: str, contact_id: str, messages: Sequence[Message] = ()
    ) -> bool:
        held = 0
        async with self._pool.acquire() as db, db.transaction():
            visitors = await db.fetch(
                "SELECT visitor FROM links WHERE site = $1 AND contact = $2 AND verified",
                site,
                contact_id,
            )
            now = min((m.at for m in messages), default=0)
            leased = [
                await db.fetchval(_LEASED_BY[column], site, who, now)
                for column, who in [("contact", contact_id)] + [("visitor", v) for (v,) in visitors]
            ]
            for (visitor,) in visitors:
                stand_in = pseudonym()
                for sql in _PSEUDONYMISE:
                    await db.execute(sql, stand_in, site, visitor)
                await db.execute(_ERASE_BROWSER, site, visitor)
                await db.execute(_numbered(FORGET_BROWSER_PRODUCTS), site, visitor)
                for sql in _ERASE_BY["visitor"]:
                    await db.execute(sql, site, visitor)
            for sql in _FORGET:
                held += int((await db.execute(sql, site, contact_id)).split()[-1])
            for sql in _ERASE_BY["contact"]:
                await db.execute(sql, site, contact_id)
            if held and messages:  # the downstream systems are told to erase the person too
                until = max((t for t in leased if t is not None), default=None)
                await db.executemany(_INSERT_MESSAGE, erased_rows(messages, until))
        return held > 0

    async def results(self, site: str, rule: str) -> list[VariantCounts]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_RESULTS, site, rule)
        return [variant_counts(row) for row in rows]

    async def report(self, site: str, rule: str, since_day: int, until_day: int) -> list[DayCounts]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_REPORT, site, rule, since_day, until_day)
        return [day_counts(row) for row in rows]

    async def strategy_results(self, site: str, rule: str) -> list[StrategyCounts]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_STRATEGY_RESULTS, site, rule)
        return [StrategyCounts(*row) for row in rows]

    async def strategy_report(
        self, site: str, rule: str, since_day: int, until_day: int
    ) -> list[StrategyDay]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_STRATEGY_REPORT, site, rule, since_day, until_day)
        return [StrategyDay(*row) for row in rows]

    async def product_report(
        self, site: str, rule: str, since_day: int, until_day: int
    ) -> list[ProductCounts]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_PRODUCTS_REPORT, site, rule, since_day, until_day)
        return [ProductCounts(*row) for row in rows]

    async def prune_product_clicks(self, before: int, limit: int) -> int:
        async with self._pool.acquire() as db:
            status: str = await db.execute(_PRUNE_CLICKS, before, limit)
        return int(status.split()[-1])

    async def holdout_results(self, site: str, goals: list[str]) -> list[GroupCounts]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_HOLDOUT_RESULTS, site, goals)
        return [GroupCounts(*row) for row in rows]

    async def add_api_key(self, key: ApiKey) -> None:
        async with self._pool.acquire() as db:
            await db.execute(
                _INSERT_API_KEY, key.id, key.secret_hash, key.sites, key.label, key.created
            )

    async def api_key(self, key_id: str) -> ApiKey | None:
        async with self._pool.acquire() as db:
            row = await db.fetchrow(_SELECT_API_KEY, key_id)
        return None if row is None else _api_key(row)

    async def api_keys(self) -> list[ApiKey]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(LIST_API_KEYS)
        return [_api_key(row) for row in rows]

    async def touch_api_key(self, key_id: str, at: int) -> None:
        async with self._pool.acquire() as db:
            await db.execute(_TOUCH_API_KEY, at, key_id)

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        async with self._pool.acquire() as db, db.transaction():
            status: str = await db.execute(_REVOKE_API_KEY, at, key_id)  # "UPDATE <n>"
            revoked = status.split()[-1] != "0"
            await db.execute(_END_KEY_SESSIONS, key_id)
        return revoked

    async def add_session(self, session: AdminSession) -> None:
        async with self._pool.acquire() as db, db.transaction():
            await db.execute(_PURGE_SESSIONS, session.created)
            await db.execute(
                _INSERT_SESSION, session.id_hash, session.key_id, session.created, session.expires
            )

    async def session_key(self, id_hash: str, now: int) -> ApiKey | None:
        async with self._pool.acquire() as db:
            row = await db.fetchrow(_SESSION_KEY, id_hash, now)
        return None if row is None else _api_key(row)

    async def end_session(self, id_hash: str) -> None:
        async with self._pool.acquire() as db:
            await db.execute(_END_SESSION, id_hash)

    async def submit(
        self,
        submission: Submission,
        answers: dict[str, Any],
        event: EventRecord | None,
        key: str | None,
        limits: tuple[RateLimit, RateLimit],
        messages: Sequence[Message] = (),
    ) -> Submitted:
        s = submission
        async with self._pool.acquire() as db, db.transaction():
            # Two nodes taking the last place under a limit at once must not both store.
            await db.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", _SUBMISSIONS_LOCK, s.site
            )
            if key is not None and await db.fetchval(_REPEATED, s.site, key):
                return Submitted("repeated")
            for name, sql, who, limit in (
                ("visitor", _BY_VISITOR, s.visitor if s.visitor != "-" else None, limits[0]),
                ("address", _BY_CONTACT, s.contact, limits[1]),
            ):
                if who is not None:
                    count, oldest = await db.fetchrow(sql, s.site, who, s.at - limit.window_ms)
                    wait = over(count, oldest, limit, s.at)
                    if wait:
                        return Submitted("limited", name, wait)
            await db.execute(_INSERT_SUBMISSION, *submission_row(s, key))
            # Its conversion is stored (and counted) unless the decision's was already.
            events = [event] if event is not None else []
            keys = key_rows(events, [])
            new = await db.fetch(KEYS_POSTGRES, *columns(keys, 3)) if keys else []
            fresh = stored(events, [], map(tuple, new))[0]
            kept = [e for e, new_one in zip(events, fresh, strict=True) if new_one]
            for e in kept:
                await db.execute(_INSERT_EVENT, *event_row(e))
            tally = Tally()
            tally.add(s.site, s.rule, s.variant, s.at, "submissions")
            await self._count(db, tally, kept, [])
            if s.contact is not None:
                held = await db.fetchval(_CONTACT_ANSWERS, s.site, s.contact)
                merged = merged_answers(held, answers)
                await db.execute(_UPSERT_ANSWERS, s.site, s.contact, s.at, merged)
                if s.visitor != "-":
                    await db.execute(_UPSERT_LINK, s.site, s.visitor, s.contact, s.at, False)
            if messages:
                await db.executemany(_INSERT_MESSAGE, map(message_row, messages))
        return Submitted("stored")

    async def submissions(self, query: SubmissionQuery) -> list[Submission]:
        sql, args = list_sql(query)
        async with self._pool.acquire() as db:
            rows = await db.fetch(
                _numbered(sql.replace("fields, consents", "fields::text, consents::text")), *args
            )
        return [submission_of(row) for row in rows]

    async def submission_counts(self, site: str) -> dict[str, int]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_COUNT_BY_RULE, site)
        return {row[0]: int(row[1]) for row in rows}

    async def add_contact_events(self, events: list[ContactEvent]) -> int:
        columns = (
            [e.site for e in events], [e.contact for e in events], [e.name for e in events],
            [e.at for e in events], [e.value for e in events], [e.id for e in events],
            [contact_event_row(e)[6] for e in events],
        )  # fmt: skip
        async with self._pool.acquire() as db, db.transaction():
            status: str = await db.execute(INSERT_CONTACT_EVENTS_POSTGRES, *columns)
        return int(status.split()[-1])  # "INSERT 0 <n>": a retry's events are not counted

    async def contact_events(self, site: str, contact_id: str) -> list[ContactEvent]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_numbered(LIST_CONTACT_EVENTS), site, contact_id)
        return [contact_event_of(row) for row in rows]

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
        args = (site, visitor, contact_id, names, since, purchase, bought_since)
        async with self._pool.acquire() as db:
            row = await db.fetchrow(REFRESH_POSTGRES, *args)
        return refreshed_of(*row) if row is not None else None

    async def put_products(self, site: str, products: Sequence[Product]) -> None:
        async with self._pool.acquire() as db, db.transaction():
            await db.executemany(_UPSERT_PRODUCT, [product_row(site, p, "site") for p in products])
            await db.execute(_BUMP_VERSION, site)

    async def product(self, site: str, product_id: str) -> Product | None:
        async with self._pool.acquire() as db:
            row = await db.fetchrow(_SELECT_PRODUCT, site, product_id)
        return None if row is None else product_of_row(row)

    async def products(
        self,
        site: str,
        category: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Product]:
        sql, args = product_list_sql(site, category, after, limit)
        async with self._pool.acquire() as db:
            rows = await db.fetch(_numbered(sql), *args)
        return [product_of_row(row) for row in rows]

    async def all_products(self, site: str) -> list[Product]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_numbered(ALL_PRODUCTS), site)
        return [product_of_row(row) for row in rows]

    async def delete_product(self, site: str, product_id: str) -> bool:
        async with self._pool.acquire() as db, db.transaction():
            status: str = await db.execute(_numbered(DELETE_PRODUCT), site, product_id)
            deleted = status != "DELETE 0"
            if deleted:
                await db.execute(_BUMP_VERSION, site)
        return deleted

    async def catalog_version(self, site: str) -> int:
        async with self._pool.acquire() as db:
            version = await db.fetchval(_numbered(SELECT_VERSION), site)
        return 0 if version is None else int(version)

    async def confirm_page_products(
        self, site: str, claims: Sequence[PageClaim], confirm: int, now: int
    ) -> list[str]:
        written: list[str] = []
        async with self._pool.acquire() as db, db.transaction():
            await db.execute(_numbered(EXPIRE_CLAIMS), site, now - CLAIM_TTL_MS)  # out of time
            ids = sorted({c.product.id for c in claims})
            rows = await db.fetch(
                f"{_SELECT_PRODUCT.removesuffix(' AND id = $2')} AND id = ANY($2::text[])",
                site,
                ids,
            )
            kept = open_claims(claims, {row[0]: product_of_row(row) for row in rows})
            await db.executemany(
                _numbered(INSERT_CLAIM),
                [(site, c.product.id, c.digest, c.visitor, now) for c in kept],
            )
            for (product_id, digest), product in descriptions(kept).items():
                if product_id in written:
                    continue
                seen = await db.fetchval(_numbered(COUNT_PRODUCT_CLAIMS), site, product_id, digest)
                if seen < confirm:
                    continue
                row = product_row(site, msgspec.structs.replace(product, updated=now), "page")
                if await db.execute(_UPSERT_PAGE_PRODUCT, *row) != "INSERT 0 0":
                    written.append(product_id)
                await db.execute(_numbered(SETTLE_CLAIMS), site, product_id)
            if written:
                await db.execute(_BUMP_VERSION, site)
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
        room = rooms or [limit] * len(targets)
        async with self._pool.acquire() as db, db.transaction():
            await db.execute(_NO_FLUSH_WAIT)
            rows = await db.fetch(_CLAIM, lease, now + lease_ms, now, targets, limit, room)
        return [claimed_of(row, lease) for row in rows]

    async def settle_message(self, claimed: Claimed, attempt: Attempt, url: str) -> bool:
        async with self._pool.acquire() as db, db.transaction():
            await db.execute(_NO_FLUSH_WAIT)
            status: str = await db.execute(_SETTLE, *settle_row(attempt, claimed))
            held = status.split()[-1] != "0"
            if held and attempt.code == 410:
                m = claimed.message
                await db.execute(_DISABLE, m.target, url, attempt.at, m.id)
        return held

    async def deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        sql, args = outbox_list_sql(query)
        async with self._pool.acquire() as db:
            rows = await db.fetch(_numbered(sql), *args)
        return [delivery_of(row) for row in rows]

    async def retry_delivery(self, site: str, message_id: str, now: int) -> bool:
        async with self._pool.acquire() as db, db.transaction():
            target = await db.fetchval(_TARGET_OF, site, message_id)
            if target is not None:
                await db.execute(_RETRY, now, now, site, message_id)
                if (await db.execute(_ENABLE, target)).split()[-1] != "0":
                    await db.execute(_REVIVE, now, now, target)
        return target is not None

    async def enable_webhook(self, target: str, url: str, now: int) -> bool:
        async with self._pool.acquire() as db, db.transaction():
            status: str = await db.execute(_ENABLE_AT, target, url)
            enabled = status.split()[-1] != "0"
            if enabled:
                await db.execute(_REVIVE, now, now, target)
        return enabled

    async def disabled_webhooks(self) -> list[DisabledWebhook]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(DISABLED)
        return [disabled_of(row) for row in rows]

    async def prune_outbox(self, before: int, limit: int) -> int:
        async with self._pool.acquire() as db:
            status: str = await db.execute(_PRUNE, before, limit)
        return int(status.split()[-1])

    async def outbox_depth(self) -> dict[tuple[str, str], int]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(DEPTH)
        return {(r[0], r[1]): int(r[2]) for r in rows}

    async def expire(self, table: Table, site: str, before: int, limit: int) -> int:
        return await expire_batch(self._pool, table, site, before, limit)

    async def prune_record_keys(self, before: int, limit: int) -> int:
        async with self._pool.acquire() as db:
            status: str = await db.execute(_PRUNE_KEYS, before, limit)
        return int(status.split()[-1])

    async def rotate_partitions(self, now: int, cutoffs: Mapping[str, Cutoffs]) -> Rotation:
        return await rotate(self._pool, now, cutoffs)

    async def reclaim(self, pages: int) -> int:
        return 0  # dropped partitions free their files; autovacuum reuses deleted rows' space

    async def _heartbeat(self) -> None:
        """A real commit, which a full disk or a read-only server refuses."""
        async with self._pool.acquire(timeout=2) as db:
            await db.execute(_HEARTBEAT, time.time_ns() // 1_000_000, timeout=2)

    async def healthy(self) -> bool:
        if not await self.writer.healthy():
            return False
        try:
            async with self._pool.acquire(timeout=2) as db:
                return bool(await db.fetchval("SELECT 1", timeout=2) == 1)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    async def publish_config(
        self,
        files: Mapping[str, bytes],
        author: str,
        message: str,
        created: int,
        *,
        only_if_empty: bool = False,
    ) -> tuple[ConfigHead, bool]:
        async with self._pool.acquire() as db:
            return await publish_postgres(db, files, author, message, created, only_if_empty)

    async def config_version(self) -> ConfigHead | None:
        async with self._pool.acquire(timeout=2) as db:
            row = await db.fetchrow(CONFIG_LATEST)
        return None if row is None else ConfigHead(int(row[0]), str(row[1]))

    async def config(self, version: int) -> ConfigVersion | None:
        async with self._pool.acquire() as db:
            row = await db.fetchrow(_numbered(CONFIG_ONE), version)
        return None if row is None else version_of(row)

    async def config_history(self, limit: int = 100) -> list[ConfigInfo]:
        async with self._pool.acquire() as db:
            return [info_of(row) for row in await db.fetch(_numbered(CONFIG_HISTORY), limit)]

    async def listen_configs(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        db = await self._pool.acquire()

        def notified(*_: object) -> None:
            wake()

        try:
            await db.add_listener(CONFIG_CHANNEL, notified)
        except BaseException:
            await self._pool.release(db)
            raise

        async def stop() -> None:
            # A connection lost meanwhile has no listener left to remove: polls go on.
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await db.remove_listener(CONFIG_CHANNEL, notified)
            await self._pool.release(db)

        return stop

    async def close(self) -> None:
        await self.writer.stop()
        await self._pool.close()

    # The recommendations' job and index (see sitecue.recommend and store.recommend).

    async def recommend_claim(
        self, site: str, holder: str, now: int, lease_ms: int
    ) -> Checkpoint | None:
        async with self._pool.acquire() as db:
            row = await db.fetchrow(_numbered(CLAIM), site, holder, now + lease_ms, now)
        return None if row is None else Checkpoint(*map(int, row))

    async def recommend_horizon(self, site: str) -> Horizon:
        async with self._pool.acquire() as db:
            newest = await db.fetchval(_numbered(HORIZON), site)
        return Horizon(int(newest or 0), RECOMMEND_SETTLE_MS)

    async def recommend_events(
        self, site: str, after: int, upto: int, limit: int
    ) -> list[ProductEvent]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_numbered(EVENTS), site, after, upto, limit)
        return [event_of(row) for row in rows]

    async def recommend_visitors(
        self, site: str, kind: Kind, visitors: list[str]
    ) -> dict[str, bytes]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(
                "SELECT visitor, touched FROM rec_visitors WHERE site = $1 AND kind = $2"
                " AND visitor = ANY($3::text[])",
                site,
                kind,
                visitors,
            )
        return {row[0]: bytes(row[1]) for row in rows}

    async def recommend_commit(
        self, site: str, holder: str, batch: Batch, lease_until: int
    ) -> bool:
        async with self._pool.acquire() as db, db.transaction():
            status = await db.execute(
                _numbered(COMMIT_STATE), batch.done, lease_until, site, holder
            )
            if status.split()[-1] != "1":
                return False  # nothing was written yet: the transaction ends empty
            if batch.pairs:
                await db.execute(_numbered(INSERT_DELTAS), site, encode_pairs(batch.pairs))
            for sql, rows in (
                (UPSERT_VISITORS, batch.visitors),
                (UPSERT_TOTALS, batch.totals),
                (UPSERT_DAYS, batch.days),
            ):
                if rows:
                    await db.executemany(_numbered(sql), [(site, *row) for row in rows])
        return True

    async def recommend_deltas(self, site: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_numbered(DELTAS), site, after, limit)
        return [(int(i), bytes(blob)) for i, blob in rows]

    async def recommend_merge(
        self,
        site: str,
        holder: str,
        upto: int,
        pairs: list[tuple[str, str, str, int]],
        lease_until: int,
    ) -> bool:
        async with self._pool.acquire() as db, db.transaction():
            status = await db.execute(_numbered(RENEW), lease_until, site, holder)
            if status.split()[-1] != "1":
                return False
            if pairs:  # one statement of arrays: a row at a time is a round of the server's
                await db.execute(_MERGE_PAIRS, site, *(list(c) for c in zip(*pairs, strict=True)))
            await db.execute(_numbered(DELETE_DELTAS), site, upto)
        return True

    async def recommend_pairs(
        self, site: str, kind: PairKind, min_support: int, after: tuple[str, str], limit: int
    ) -> list[tuple[str, str, int]]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(
                _numbered(PAIRS), site, kind, min_support, after[0], after[0], after[1], limit
            )
        return [(a, b, int(n)) for a, b, n in rows]

    async def recommend_totals(self, site: str, kind: PairKind) -> dict[str, int]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_numbered(TOTALS), site, kind)
        return {p: int(n) for p, n in rows}

    async def recommend_popularity(self, site: str, since_day: int) -> dict[str, int]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_numbered(POPULARITY), site, since_day)
        return {p: int(n) for p, n in rows}

    async def recommend_lists(self, site: str) -> dict[str, str]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(_numbered(LISTS), site)
        return {name: items for name, items in rows}

    async def recommend_publish(self, site: str, holder: str, changes: ListChanges) -> bool:
        bump = 1 if changes.upserts or changes.deletes else 0
        async with self._pool.acquire() as db, db.transaction():
            status = await db.execute(
                _numbered(PUBLISH_STATE),
                *(changes.seen, changes.seen_at, changes.published, changes.listed, bump),
                *(site, holder),
            )
            if status.split()[-1] != "1":
                return False
            if changes.upserts:
                await db.executemany(
                    _numbered(UPSERT_LIST), [(site, *row) for row in changes.upserts]
                )
            if changes.deletes:
                await db.executemany(
                    _numbered(DELETE_LIST), [(site, name) for name in changes.deletes]
                )
        return True

    async def recommend_prune(
        self, site: str, kind: Kind, before: int, before_day: int, limit: int
    ) -> int:
        async with self._pool.acquire() as db:
            args = (site, kind, before, site, kind, before, limit - 1, before)
            status = await db.execute(_numbered(PRUNE_VISITORS), *args)
            await db.execute(_numbered(PRUNE_DAYS), site, before_day)
        return int(status.split()[-1])

    async def recommend_version(self, site: str) -> tuple[int, int]:
        async with self._pool.acquire(timeout=2) as db:
            return lists_version_of(await db.fetchrow(_numbered(VERSION), site, site))
