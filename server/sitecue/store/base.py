"""The storage interface the HTTP layer writes through, and the records it writes."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from .contact_events import FORGET_CONTACT_EVENTS, ContactEvent, Refreshed
from .outbox import Attempt, Claimed, Delivery, DeliveryQuery, DisabledWebhook, Message
from .retention import Cutoffs, Rotation, Table
from .submissions import RateLimit, Submission, SubmissionQuery, Submitted
from .verdicts import Verdict, VerdictFilter, stored, verdict_filter

if TYPE_CHECKING:
    from .catalog import PageClaim, Product
    from .configs import ConfigHead, ConfigInfo, ConfigVersion
    from .product_rollups import ProductCounts, Purchases, StrategyCounts, StrategyDay
    from .recommend import (
        Batch,
        Checkpoint,
        Horizon,
        Kind,
        ListChanges,
        PairKind,
        ProductEvent,
    )
    from .rollups import DayCounts, Goals
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
    value: float | None = None  # what a valued event carried (a purchase's amount)
    key: str | None = None  # idempotency: a retry's record with the same key is not stored
    # The products the event is about (a product view, an add-to-cart, a purchase's lines, a
    # click on a recommended product; see sitecue.catalog), and for a product view the page's
    # own description of the product (JSON text, see catalog.from_pages), unverified.
    products: list[str] | None = None
    detail: str | None = None


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
    key: str | None = None  # idempotency: a retry's record with the same key is not stored


class DecisionQuery(msgspec.Struct, frozen=True):
    """Which decision records to list: one site, newest first, optionally narrowed. ``rule``,
    ``variant`` and ``matched`` look at the stored verdicts: a record qualifies when one
    verdict has them all (``matched`` without ``rule``: any rule matched, i.e. something was
    shown; ``rule`` alone: the rule met its conditions), except ``matched=false`` without
    ``variant``: the rule was not shown (without ``rule``: nothing was); see store.verdicts."""

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

    def verdict(self) -> VerdictFilter:
        """What one verdict of a qualifying record must hold (empty: any record), and
        whether a record qualifies by having none such instead."""
        return verdict_filter(self.rule, self.variant, self.matched)


_encode = msgspec.json.Encoder().encode
Row = tuple[object, ...]
EVENT_COLUMNS = "site, visitor, type, at, name, rule, variant, decision, value"
DECISION_COLUMNS = "id, site, visitor, at, url, verdicts, pageview"


# Statements both engines run, with ``?`` placeholders (PostgreSQL's are numbered on load).
# A record whose idempotency key (per site) is already stored is a retry's: the writer
# inserts only the records whose keys were new in ``record_keys`` (see store.rollups), so
# these are plain inserts (the old ``idempotency_key`` columns stay NULL on new rows).
# Written, not read back with the rest: the products and the detail are for sitecue.catalog
# and the recommendations' job, which read them on their own.
INSERT_EVENT = (
    f"INSERT INTO events ({EVENT_COLUMNS}, products, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DECISION = f"INSERT INTO decisions ({DECISION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
INSERT_API_KEY = (
    "INSERT INTO api_keys (id, secret_hash, sites, label, created) VALUES (?, ?, ?, ?, ?)"
)
API_KEY_COLUMNS = "id, secret_hash, sites, label, created, revoked, last_used"
SELECT_API_KEY = f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?"
LIST_API_KEYS = f"SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created, id"
# A key is revoked once (the first time is kept); its dashboard sessions end with it.
REVOKE_API_KEY = "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL"
TOUCH_API_KEY = "UPDATE api_keys SET last_used = ? WHERE id = ?"
END_KEY_SESSIONS = "DELETE FROM admin_sessions WHERE key_id = ?"
INSERT_SESSION = (
    "INSERT INTO admin_sessions (id_hash, key_id, created, expires) VALUES (?, ?, ?, ?)"
)
PURGE_SESSIONS = "DELETE FROM admin_sessions WHERE expires <= ?"
END_SESSION = "DELETE FROM admin_sessions WHERE id_hash = ?"
# A session proves its key only while it is unexpired and the key unrevoked: both are read
# from the store on every request, so a revoke or a sign-out holds on every node at once.
SESSION_KEY = (
    "SELECT k.id, k.secret_hash, k.sites, k.label, k.created, k.revoked, k.last_used"
    " FROM admin_sessions AS s JOIN api_keys AS k ON k.id = s.key_id"
    " WHERE s.id_hash = ? AND s.expires > ? AND k.revoked IS NULL"
)
UPSERT_CONTACT = (
    "INSERT INTO contacts (site, id, attributes, updated) VALUES (?, ?, ?, ?) ON CONFLICT"
    " (site, id) DO UPDATE SET attributes = excluded.attributes, updated = excluded.updated"
)
# A browser belongs to one contact at a time, but a claim (sitecue('identify')) never
# replaces a verified link: what page JavaScript says cannot undo what a token proved.
UPSERT_LINK = (
    "INSERT INTO links (site, visitor, contact, at, verified) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (site, visitor) DO UPDATE SET contact = excluded.contact, at = excluded.at,"
    " verified = excluded.verified WHERE excluded.verified OR NOT links.verified"
)
COUNT_CLAIMS = "SELECT COUNT(*) FROM links WHERE site = ? AND contact = ? AND NOT verified"
# The browsers whose history is the person's: verified ones, the most recently linked first.
HISTORY_BROWSERS = 20
HISTORY_RECORDS = 2_000  # the newest events, and the newest decisions, read per browser
VERIFIED_BROWSERS = (
    "SELECT visitor FROM links WHERE site = ? AND contact = ? AND verified"
    " ORDER BY at DESC, visitor DESC LIMIT ?"
)
# Token uses: the browsers one token has identified, keyed by a hash of the token.
PRUNE_TOKEN_USES = "DELETE FROM token_uses WHERE expires <= ?"
COUNT_TOKEN_USES = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN visitor = ? THEN 1 ELSE 0 END), 0)"
    " FROM token_uses WHERE site = ? AND token = ?"
)
INSERT_TOKEN_USE = (
    "INSERT INTO token_uses (site, token, visitor, contact, at, expires) VALUES (?, ?, ?, ?, ?, ?)"
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
    "UPDATE exposures SET visitor = ? WHERE site = ? AND visitor = ?",
    "UPDATE product_clicks SET visitor = ? WHERE site = ? AND visitor = ?",
]
# And what the recommendations' job keeps of each browser (the products it viewed, carted
# and bought, for pairing its next ones), with (site, visitor): the counts it made stay.
FORGET_BROWSER_PRODUCTS = "DELETE FROM rec_visitors WHERE site = ? AND visitor = ?"
FORGET = [
    "DELETE FROM links WHERE site = ? AND contact = ?",  # verified or not: each row names them
    "DELETE FROM token_uses WHERE site = ? AND contact = ?",
    "DELETE FROM contacts WHERE site = ? AND id = ?",
    "DELETE FROM submissions WHERE site = ? AND contact = ?",  # what they typed in forms
    FORGET_CONTACT_EVENTS,  # what the site's systems reported about them
]


def pseudonym() -> str:
    """A stand-in for an erased browser: random, so it links to nothing."""
    return f"erased-{secrets.token_hex(8)}"


def contact_row(c: Contact) -> Row:
    """A contact as a row of UPSERT_CONTACT, the attributes as JSON text."""
    return (c.site, c.id, _encode(c.attributes).decode(), c.updated)


def event_row(e: EventRecord) -> Row:
    """An event as a row of INSERT_EVENT: EVENT_COLUMNS, then its products (a JSON array)
    and its detail."""
    products = _encode(e.products).decode() if e.products is not None else None
    return (
        *(e.site, e.visitor, e.type, e.at, e.name, e.rule, e.variant, e.decision, e.value),
        *(products, e.detail),
    )


def decision_row(d: DecisionRecord) -> Row:
    """A decision as a row of INSERT_DECISION: DECISION_COLUMNS, the verdicts as JSON text
    (those worth storing: see store.verdicts)."""
    verdicts = _encode(stored(d.verdicts)).decode()
    return (d.id, d.site, d.visitor, d.at, d.url, verdicts, d.pageview)


class PageView(msgspec.Struct, frozen=True, array_like=True):
    """When a page view happened and where: all a history rebuild needs of a decision."""

    at: int
    url: str


class History(msgspec.Struct, frozen=True):
    """What a person's verified browsers did, bounded: the newest HISTORY_RECORDS events and
    decisions of each of their HISTORY_BROWSERS most recently linked browsers. ``events``
    come oldest first; ``pageviews`` are the page views among those decisions."""

    events: list[EventRecord]
    pageviews: list[PageView]


class TokenUse(msgspec.Struct, frozen=True):
    """A browser identified by an email token: the token's hash (never the token), the
    contact it names, and when the token expires (epoch ms), after which the row goes."""

    site: str
    token: str
    visitor: str
    contact: str
    at: int
    expires: int


_history_events = msgspec.json.Decoder(list[EventRecord]).decode
_history_pageviews = msgspec.json.Decoder(list[PageView]).decode


def decode_history(events: str | bytes, pageviews: str | bytes) -> History:
    """A History from the two JSON arrays its queries aggregate: events as objects, page
    views as ``[at, url]``. One C call each, so the thread that decodes them holds the
    interpreter only briefly (row by row, it would contend with the event loop per row)."""
    return History(_history_events(events), _history_pageviews(pageviews))


def token_use_row(use: TokenUse) -> Row:
    """A token use as a row of INSERT_TOKEN_USE."""
    return (use.site, use.token, use.visitor, use.contact, use.at, use.expires)


class Contact(msgspec.Struct, frozen=True):
    """A person the site knows (a customer, a subscriber), with the offsite attributes the
    site's own systems hold about them: loyalty tier, average order value, and so on."""

    site: str
    id: str
    attributes: dict[str, Any] = {}
    updated: int = 0  # epoch ms
    # What the person typed in forms (declared, never verified), kept apart from attributes.
    answers: dict[str, Any] = {}
    source: str = "site"  # "form" when a form submission created the contact


class VariantCounts(msgspec.Struct, frozen=True):
    """One variant of an experiment, counted in the database: the visitors decided into it
    (exposed; a control too), the impressions reported, and the exposed visitors who then
    converted (the rule's convert, or its goal event, after their first exposure), with the
    revenue (goal values) of those visitors and the sum of its squares per visitor."""

    variant: str
    visitors: int
    impressions: int
    conversions: int
    revenue: float = 0.0
    revenue_sq: float = 0.0
    clicks: int = 0
    dismissals: int = 0
    submissions: int = 0
    decisions: int = 0


class GroupCounts(msgspec.Struct, frozen=True):
    """One side of the global holdout, counted in the database: ``holdout``, the visitors
    held out where some rule would have shown, or ``personalised``, those given some rule
    (a control included) and never held out; and how many of each reached one of the goals
    at or after that first time (a goal reached before it does not count)."""

    group: str
    visitors: int
    conversions: int


class ApiKey(msgspec.Struct, frozen=True):
    """An admin key as stored: only a hash of its secret, and the sites it may act on."""

    id: str
    secret_hash: str
    sites: list[str]
    label: str
    created: int  # epoch seconds
    revoked: int | None = None  # epoch seconds; a revoked key proves nothing
    last_used: int | None = None  # epoch seconds, to the minute (see api.keys.USE_STEP_S)


class AdminSession(msgspec.Struct, frozen=True):
    """A signed-in dashboard: only a hash of the cookie's random id is stored, so a copy of
    the database signs nobody in. It ends at ``expires`` (epoch seconds), at sign-out, or
    when its key is revoked."""

    id_hash: str
    key_id: str
    created: int
    expires: int


class Store(Protocol):
    writer: GroupWriter  # every write goes through it
    # Which rules each goal event converts, per site: read by the writer as it counts the
    # rollups; the app sets it at start and on every config reload.
    goals: Goals
    # Each site's purchase event (its catalog's ``purchase``), which credits recommendation
    # clicks (see store.product_rollups); set with ``goals``.
    purchases: Purchases

    async def write(
        self,
        events: list[EventRecord],
        decisions: list[DecisionRecord],
        messages: Sequence[Message] = (),
    ) -> None:
        """Commit the records, and the outbox messages they cause, in one transaction;
        return only once they are durable."""

    async def decisions(self, query: DecisionQuery) -> list[DecisionRecord]:
        """One page of decision records, newest first."""

    async def events(self, site: str, visitors: list[str]) -> list[EventRecord]:
        """Every event of these visitors (one person's browsers), oldest first."""

    async def put_contacts(self, contacts: list[Contact]) -> None:
        """Create each contact, or replace its attributes, all in one transaction."""

    async def contact(self, site: str, contact_id: str) -> Contact | None: ...

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
        """Link a browser to a contact (a browser belongs to one contact at a time);
        ``verified`` by an email token, or only claimed by page JavaScript (which never
        replaces a verified link). ``messages`` are committed with the link."""

    async def visitors(self, site: str, contact_id: str) -> list[str]:
        """The browsers verified as this contact's, earliest link first."""

    async def claims(self, site: str, contact_id: str) -> int:
        """How many browsers claim to be this contact without verification."""

    async def history(self, site: str, contact_id: str) -> History:
        """The person's history across their verified browsers, bounded (see History)."""

    async def use_token(self, use: TokenUse, limit: int) -> bool:
        """Record that ``use.visitor`` was identified by the token ``use.token``: True when
        it already was, or when fewer than ``limit`` browsers were; False (nothing
        recorded) when the token has identified ``limit`` other browsers. Atomic across
        workers and nodes. Expired uses are forgotten on the way."""

    async def erase_contact(
        self, site: str, contact_id: str, messages: Sequence[Message] = ()
    ) -> bool:
        """Forget a person: the contact, its links (verified or not), the uses of their
        tokens, and who they were in the logs (their verified browsers' events and
        decisions stay, each browser under a random pseudonym and without URLs, so
        experiment counts hold; a browser that only claimed them is not theirs). Their
        outbox messages not yet delivered are dropped, the delivered ones' payloads
        emptied; ``messages`` (contact.erased) are committed with the erasure when
        something was held. False if nothing was held."""

    async def results(self, site: str, rule: str) -> list[VariantCounts]:
        """Per variant of ``rule``: its rollups summed over every day (conversions were
        attributed as the records were written, with the goals of that time)."""

    async def report(self, site: str, rule: str, since_day: int, until_day: int) -> list[DayCounts]:
        """The rollups of ``rule`` on the days ``since_day <= day < until_day`` (UTC day
        numbers), ordered by day and variant; a day or variant without a row is left out."""

    async def strategy_results(self, site: str, rule: str) -> list[StrategyCounts]:
        """Per variant and strategy of ``rule``: its recommendation clicks, the purchases
        they led to and their revenue, over every day (see store.product_rollups)."""

    async def strategy_report(
        self, site: str, rule: str, since_day: int, until_day: int
    ) -> list[StrategyDay]:
        """The same per day, on the days ``since_day <= day < until_day``, ordered by day,
        variant and strategy; a day without a click is left out."""

    async def product_report(
        self, site: str, rule: str, since_day: int, until_day: int
    ) -> list[ProductCounts]:
        """Per recommended product, variant and strategy of ``rule``, summed over the days
        ``since_day <= day < until_day``, ordered by product, variant and strategy."""

    async def prune_product_clicks(self, before: int, limit: int) -> int:
        """Delete up to ``limit`` recommendation clicks made before ``before``, past their
        attribution window; how many."""

    async def holdout_results(self, site: str, goals: list[str]) -> list[GroupCounts]:
        """The holdout and the personalised visitors of ``site``, and their conversions to
        any of ``goals``; a group nobody is in is left out."""

    async def add_api_key(self, key: ApiKey) -> None: ...

    async def api_key(self, key_id: str) -> ApiKey | None: ...

    async def api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""

    async def touch_api_key(self, key_id: str, at: int) -> None:
        """Record that the key was used at ``at``."""

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        """Mark the key revoked and end its dashboard sessions, in one transaction. False if
        there is no such key or it was already revoked."""

    async def add_session(self, session: AdminSession) -> None:
        """Store a new dashboard session (and drop the expired ones)."""

    async def session_key(self, id_hash: str, now: int) -> ApiKey | None:
        """The key a live session was started with; None once it expired, ended or the key
        was revoked."""

    async def end_session(self, id_hash: str) -> None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...

    async def publish_config(
        self,
        files: Mapping[str, bytes],
        author: str,
        message: str,
        created: int,
        *,
        only_if_empty: bool = False,
    ) -> tuple[ConfigHead, bool]:
        """Store ``files`` (relative path to content) as the next config version and return
        the live version after, with True; or the live version and False when it holds the
        same files already, or (``only_if_empty``) when any version exists. Atomic across
        processes and nodes (see store.configs)."""

    async def config_version(self) -> ConfigHead | None:
        """The live (newest) version's number and hash; None before the first. Cheap:
        every worker polls it."""

    async def config(self, version: int) -> ConfigVersion | None:
        """A version with its files, checked against its hash (ConfigError if not)."""

    async def config_history(self, limit: int = 100) -> list[ConfigInfo]:
        """The newest ``limit`` versions, newest first, without their files."""

    async def listen_configs(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        """Call ``wake`` as soon as a version is published anywhere (PostgreSQL: LISTEN on
        one pooled connection; SQLite: never, its workers poll); return what stops it."""

    async def submit(
        self,
        submission: Submission,
        answers: dict[str, Any],
        event: EventRecord | None,
        key: str | None,
        limits: tuple[RateLimit, RateLimit],
        messages: Sequence[Message] = (),
    ) -> Submitted:
        """Store a form submission in one transaction with its conversion ``event`` (None:
        the submission credits no rule's decision, as on an expired one), the
        contact's ``answers`` (creating the contact, marked ``form``, when new), the
        browser's unverified link and the outbox ``messages``, unless ``key`` names one
        stored before (``repeated``) or a rate limit refuses it (per visitor, then per
        address: ``limits``)."""

    async def submissions(self, query: SubmissionQuery) -> list[Submission]:
        """One page of submissions, newest first."""

    async def submission_counts(self, site: str) -> dict[str, int]:
        """How many submissions each rule of ``site`` has."""

    async def add_contact_events(self, events: list[ContactEvent]) -> int:
        """Store a batch of server-side events in one transaction; return how many were
        stored (the others have an ``id`` the contact already had: a retry's)."""

    async def contact_events(self, site: str, contact_id: str) -> list[ContactEvent]:
        """Every server-side event of the contact, oldest first."""

    async def put_products(self, site: str, products: Sequence[Product]) -> None:
        """Create or replace these products of ``site`` as the site's systems describe them
        (source ``site``: they replace a page's description), in one transaction."""

    async def product(self, site: str, product_id: str) -> Product | None: ...

    async def products(
        self,
        site: str,
        category: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Product]:
        """One page of the site's products by id, after the id ``after``, optionally of one
        ``category``."""

    async def all_products(self, site: str) -> list[Product]:
        """Every product of the site, by id (for the recommendations' index)."""

    async def delete_product(self, site: str, product_id: str) -> bool:
        """Delete the product; whether there was one."""

    async def catalog_version(self, site: str) -> int:
        """A number that changes whenever the site's products do (0: never written): one
        row's read, so each worker can poll it to reload its catalogue only on a change."""

    async def confirm_page_products(
        self, site: str, claims: Sequence[PageClaim], confirm: int, now: int
    ) -> list[str]:
        """Count each visitor's claim once, and take each description that ``confirm``
        distinct visitors sent (source ``page``), never over a product of source ``site``
        nor when the catalogue already says the same; the ids written (see
        sitecue.catalog.upsert_page_products)."""

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
        """One read: the contact's attributes and server-side events of the triggers
        ``names`` (see Refreshed), and the products they bought in the events named
        ``purchase`` since ``bought_since``, or None when ``visitor`` is no longer a browser
        verified as theirs (erased, or linked to someone else)."""

    async def claim_messages(
        self,
        targets: list[str],
        now: int,
        lease_ms: int,
        limit: int,
        rooms: list[int] | None = None,
    ) -> list[Claimed]:
        """Lease up to ``limit`` due messages of these webhooks (``site/id``) until
        ``now + lease_ms``, at most ``rooms[i]`` of ``targets[i]`` (each webhook's oldest
        due first); atomic across processes and nodes (see store.outbox)."""

    async def settle_message(self, claimed: Claimed, attempt: Attempt, url: str) -> bool:
        """Record an attempt's outcome, if the lease is still ours (False: it was not);
        one answered 410 disables the webhook while it points at ``url`` (the message
        stays pending: it waits for the webhook)."""

    async def deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        """One page of outbox messages, newest first."""

    async def retry_delivery(self, site: str, message_id: str, now: int) -> bool:
        """Make the message due now, in a new round of tries, and re-enable its webhook
        (whose waiting messages then get a new round too). False if the site has no such
        message."""

    async def enable_webhook(self, target: str, url: str, now: int) -> bool:
        """Enable the webhook (``site/id``) a 410 disabled at ``url`` (the config points
        it elsewhere now); its waiting messages get a new day of tries, due ``now``. False
        if it was not disabled at that URL."""

    async def disabled_webhooks(self) -> list[DisabledWebhook]:
        """The webhooks disabled by a 410, every site's."""

    async def prune_outbox(self, before: int, limit: int) -> int:
        """Delete up to ``limit`` delivered or dead messages last tried before ``before``;
        how many were deleted (fewer than ``limit``: none are left)."""

    async def outbox_depth(self) -> dict[tuple[str, str], int]:
        """Pending messages per (site, webhook)."""

    async def expire(self, table: Table, site: str, before: int, limit: int) -> int:
        """Delete up to ``limit`` of the site's ``table`` rows made before ``before`` (epoch
        ms), in one short transaction; how many went (0: none are left; PostgreSQL takes a
        batch from one partition, so fewer than ``limit`` does not say so)."""

    async def prune_record_keys(self, before: int, limit: int) -> int:
        """Delete up to ``limit`` idempotency keys recorded before ``before``; how many."""

    async def rotate_partitions(self, now: int, cutoffs: Mapping[str, Cutoffs]) -> Rotation:
        """PostgreSQL: create the day partitions of the coming days, move what the default
        partition caught into day partitions, and drop each day partition whose every row
        is past its site's cutoff (``cutoffs``: every configured site's; a site missing
        from it keeps its rows). One node at a time; each change waits for its locks at
        most a few milliseconds, or is left to the next round. SQLite: nothing to do."""

    async def reclaim(self, pages: int) -> int:
        """SQLite: give up to ``pages`` free pages back to the file system (an incremental
        vacuum step, one short write); how many free pages are left. PostgreSQL: 0 (dropped
        partitions free their files at once; autovacuum reuses deleted rows' space)."""

    # The recommendations' job and index (see sitecue.recommend and store.recommend).

    async def recommend_claim(
        self, site: str, holder: str, now: int, lease_ms: int
    ) -> Checkpoint | None:
        """Take the site's job for ``holder`` until ``now + lease_ms`` and return its state,
        or None while another holder's lease runs: one node at a time runs a site."""

    async def recommend_horizon(self, site: str) -> Horizon:
        """The site's newest product event id, and how long it must have been seen before
        the job counts up to it (see store.recommend.Horizon)."""

    async def recommend_events(
        self, site: str, after: int, upto: int, limit: int
    ) -> list[ProductEvent]:
        """Up to ``limit`` of the site's events naming products, ``after < id <= upto``,
        in id order."""

    async def recommend_visitors(
        self, site: str, kind: Kind, visitors: list[str]
    ) -> dict[str, bytes]:
        """The products each of ``visitors`` touched (a Touched, msgpack), those known."""

    async def recommend_commit(
        self, site: str, holder: str, batch: Batch, lease_until: int
    ) -> bool:
        """Add a batch's counts and move the checkpoint to ``batch.done`` in one
        transaction, extending the lease; False (nothing written) if the lease is lost."""

    async def recommend_deltas(self, site: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` of the batches' pair deltas (id, msgpack) after ``after``."""

    async def recommend_merge(
        self,
        site: str,
        holder: str,
        upto: int,
        pairs: list[tuple[str, str, str, int]],
        lease_until: int,
    ) -> bool:
        """Add ``pairs`` (kind, a, b, added: the deltas up to id ``upto``, summed) into
        the pairs and delete those deltas, in one transaction extending the lease; False
        (nothing changed) if the lease is lost."""

    async def recommend_pairs(
        self, site: str, kind: PairKind, min_support: int, after: tuple[str, str], limit: int
    ) -> list[tuple[str, str, int]]:
        """A page of the pairs (a < b) with at least ``min_support`` visitors, after the
        pair ``after`` in (a, b) order."""

    async def recommend_totals(self, site: str, kind: PairKind) -> dict[str, int]:
        """How many visitors viewed (bought) each product."""

    async def recommend_popularity(self, site: str, since_day: int) -> dict[str, int]:
        """Each product's popularity over the UTC days from ``since_day`` on."""

    async def recommend_lists(self, site: str) -> dict[str, str]:
        """The published lists (name: JSON items; see store.recommend)."""

    async def recommend_publish(self, site: str, holder: str, changes: ListChanges) -> bool:
        """Publish the changed lists (bumping the version when any changed), record what
        the run saw and give the lease back, in one transaction; False if it was lost."""

    async def recommend_prune(
        self, site: str, kind: Kind, before: int, before_day: int, limit: int
    ) -> int:
        """Forget the ``limit`` visitors of ``kind`` untouched longest, if since before
        ``before`` (epoch ms; and any tied with the last of them), and the popularity days
        before ``before_day``; how many visitors went."""

    async def recommend_version(self, site: str) -> tuple[int, int]:
        """Cheap, polled by every worker: the lists' version and the catalogue's
        (``catalog_version``); a change to either makes a worker reload the site."""
