"""The recommendations' tables and the statements both engines share (see sitecue.recommend).

``rec_state``: per site, the job's checkpoint (the last event id it counted), the newest id
it saw and when (PostgreSQL's ids can commit out of order: see ``Horizon``), the version of
its published lists, and the lease that lets one node at a time run it. ``rec_visitors``:
per site, kind (``viewed``, ``cart``, ``bought``) and visitor, the products they touched
and the pairs already counted for them (``Touched``, msgpack), so each visitor counts once
per product and once per pair. ``rec_pairs``: how many visitors viewed (bought) both ``a``
and ``b`` (``a < b``) within the site's window. A batch appends its pairs to ``rec_deltas``
as one row (msgpack; adding them into ``rec_pairs`` at once would rewrite most of its pages
every batch, as a batch's pairs fall all over it), and the job merges them into
``rec_pairs``, summed and in key order, before it computes the lists; ``rec_totals``: how
many viewed (bought) each product; ``rec_days``: per product and UTC day, its viewers, cart
adders and buyers (popularity). ``rec_lists``: what the job publishes and every worker
loads: each product's neighbours (``viewed:<id>``, ``bought:<id>``) and the popular lists
(``popular``, ``popular:<category>``), each a JSON array of ``[id, score]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

__all__ = [
    "CLAIM",
    "COMMIT_STATE",
    "DELETE_DELTAS",
    "DELETE_LIST",
    "DELTAS",
    "EVENTS",
    "HORIZON",
    "INSERT_DELTAS",
    "KINDS",
    "LISTS",
    "PAIRS",
    "POPULARITY",
    "PRUNE_DAYS",
    "PRUNE_VISITORS",
    "PUBLISH_STATE",
    "RECOMMEND_POSTGRES",
    "RECOMMEND_SQLITE",
    "RENEW",
    "TOTALS",
    "UPSERT_DAYS",
    "UPSERT_LIST",
    "UPSERT_PAIRS",
    "UPSERT_TOTALS",
    "UPSERT_VISITORS",
    "VERSION",
    "Batch",
    "Checkpoint",
    "Horizon",
    "Kind",
    "ListChanges",
    "PairKind",
    "ProductEvent",
    "Touched",
    "decode_pairs",
    "encode_pairs",
    "event_of",
    "lists_version_of",
]

Kind = Literal["viewed", "cart", "bought"]
"""What a visitor did to a product: viewed its page, added it to the cart, bought it."""
PairKind = Literal["viewed", "bought"]
"""The co-occurrences counted: viewed together, bought together."""
KINDS: tuple[Kind, ...] = ("viewed", "cart", "bought")


class Checkpoint(msgspec.Struct, frozen=True):
    """A site's job state as a run claims it: events up to ``done`` are counted; ``seen``
    is the newest id observed at ``seen_at`` (epoch ms); ``version`` of the published
    lists; ``published``: when the lists were last computed (epoch ms, 0: never), from the
    events up to ``listed``."""

    done: int = 0
    seen: int = 0
    seen_at: int = 0
    version: int = 0
    published: int = 0
    listed: int = 0


class Horizon(msgspec.Struct, frozen=True):
    """The newest product event id of a site now, and how long (ms) an id must have been
    visible before every smaller id is sure to be: 0 on SQLite (one writer at a time, ids
    commit in order); on PostgreSQL a writer may take id 100 and commit after another
    took 101 and committed, so the job counts up to an id seen ``settle_ms`` ago."""

    id: int
    settle_ms: int


class ProductEvent(msgspec.Struct, frozen=True):
    """An event that names products, as the job reads it."""

    id: int
    visitor: str
    type: str
    name: str | None
    at: int
    products: list[str]
    detail: str | None = None


class Touched(msgspec.Struct, array_like=True):
    """One visitor's products of one kind within the window: ``products`` in the order
    first touched (never reordered, so ``pairs``' indexes hold), ``at`` each one's latest
    touch (epoch ms), and ``pairs`` already counted, each ``i * PAIR_BASE + j`` (i < j)."""

    products: list[str] = []
    at: list[int] = []
    pairs: list[int] = []


class Batch(msgspec.Struct):
    """What one batch of events adds, committed in one transaction with the checkpoint:
    rows of UPSERT_VISITORS, INSERT_DELTAS, UPSERT_TOTALS and UPSERT_DAYS (without the
    site, which the engine puts first)."""

    done: int
    visitors: list[tuple[str, str, bytes, int]] = []  # kind, visitor, Touched, latest at
    pairs: list[tuple[str, int]] = []  # "kind a b" (a < b), added
    totals: list[tuple[str, str, int]] = []  # kind, product, added
    days: list[tuple[str, int, int, int, int]] = []  # product, day, views, carts, buys


class ListChanges(msgspec.Struct):
    """The lists a run publishes: the ones changed or new (name, JSON items) and the ones
    gone; ``seen``/``seen_at`` as the run leaves them."""

    seen: int
    seen_at: int
    published: int
    listed: int
    upserts: list[tuple[str, str]] = []
    deletes: list[str] = []


_TABLES = """
CREATE TABLE rec_state (
    site TEXT PRIMARY KEY, done {big} NOT NULL DEFAULT 0, seen {big} NOT NULL DEFAULT 0,
    seen_at {big} NOT NULL DEFAULT 0, version {big} NOT NULL DEFAULT 0,
    published {big} NOT NULL DEFAULT 0, listed {big} NOT NULL DEFAULT 0,
    lease TEXT, lease_until {big} NOT NULL DEFAULT 0
){without};
CREATE TABLE rec_visitors (
    site TEXT NOT NULL, kind TEXT NOT NULL, visitor TEXT NOT NULL, touched {blob} NOT NULL,
    at {big} NOT NULL,
    PRIMARY KEY (site, kind, visitor)
){without};
CREATE INDEX rec_visitors_at ON rec_visitors (site, kind, at);
CREATE TABLE rec_pairs (
    site TEXT NOT NULL, kind TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL,
    n {big} NOT NULL,
    PRIMARY KEY (site, kind, a, b)
){without};
CREATE TABLE rec_deltas ({delta_id}site TEXT NOT NULL, pairs {blob} NOT NULL);
CREATE TABLE rec_totals (
    site TEXT NOT NULL, kind TEXT NOT NULL, product TEXT NOT NULL, n {big} NOT NULL,
    PRIMARY KEY (site, kind, product)
){without};
CREATE TABLE rec_days (
    site TEXT NOT NULL, day {big} NOT NULL, product TEXT NOT NULL,
    views {big} NOT NULL, carts {big} NOT NULL, buys {big} NOT NULL,
    PRIMARY KEY (site, day, product)
){without};
CREATE TABLE rec_lists (
    site TEXT NOT NULL, list TEXT NOT NULL, items TEXT NOT NULL,
    PRIMARY KEY (site, list)
){without};
CREATE INDEX events_products ON events (site, id) WHERE products IS NOT NULL;
"""
RECOMMEND_SQLITE = _TABLES.format(
    big="INTEGER", blob="BLOB", without=" WITHOUT ROWID", delta_id="id INTEGER PRIMARY KEY, "
)
RECOMMEND_POSTGRES = _TABLES.format(
    big="BIGINT", blob="BYTEA", without="", delta_id="id BIGSERIAL PRIMARY KEY, "
)

# The lease: taken when free or expired (one node at a time runs a site's job); the state
# as it was comes back, nothing when another holds it.
CLAIM = (
    "INSERT INTO rec_state (site, lease, lease_until) VALUES (?, ?, ?)"
    " ON CONFLICT (site) DO UPDATE SET lease = excluded.lease,"
    " lease_until = excluded.lease_until WHERE rec_state.lease_until <= ?"
    " RETURNING done, seen, seen_at, version, published, listed"
)
# A batch's checkpoint, only while the lease is ours (else the whole batch rolls back).
COMMIT_STATE = "UPDATE rec_state SET done = ?, lease_until = ? WHERE site = ? AND lease = ?"
# The end of a run: what it saw, its lists' version (bumped when they changed), the lease
# given back.
PUBLISH_STATE = (
    "UPDATE rec_state SET seen = ?, seen_at = ?, published = ?, listed = ?,"
    " version = version + ?, lease = NULL, lease_until = 0 WHERE site = ? AND lease = ?"
)
EVENTS = (
    "SELECT id, visitor, type, name, at, products, detail FROM events"
    " WHERE site = ? AND id > ? AND id <= ? AND products IS NOT NULL ORDER BY id LIMIT ?"
)
HORIZON = "SELECT COALESCE(MAX(id), 0) FROM events WHERE site = ? AND products IS NOT NULL"
UPSERT_VISITORS = (
    "INSERT INTO rec_visitors (site, kind, visitor, touched, at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (site, kind, visitor) DO UPDATE SET touched = excluded.touched,"
    " at = excluded.at"
)
INSERT_DELTAS = "INSERT INTO rec_deltas (site, pairs) VALUES (?, ?)"
DELTAS = "SELECT id, pairs FROM rec_deltas WHERE site = ? AND id > ? ORDER BY id LIMIT ?"
RENEW = "UPDATE rec_state SET lease_until = ? WHERE site = ? AND lease = ?"
UPSERT_PAIRS = (
    "INSERT INTO rec_pairs (site, kind, a, b, n) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (site, kind, a, b) DO UPDATE SET n = rec_pairs.n + excluded.n"
)
DELETE_DELTAS = "DELETE FROM rec_deltas WHERE site = ? AND id <= ?"
UPSERT_TOTALS = (
    "INSERT INTO rec_totals (site, kind, product, n) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (site, kind, product) DO UPDATE SET n = rec_totals.n + excluded.n"
)
UPSERT_DAYS = (
    "INSERT INTO rec_days (site, product, day, views, carts, buys) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site, day, product) DO UPDATE SET views = rec_days.views + excluded.views,"
    " carts = rec_days.carts + excluded.carts, buys = rec_days.buys + excluded.buys"
)
UPSERT_LIST = (
    "INSERT INTO rec_lists (site, list, items) VALUES (?, ?, ?)"
    " ON CONFLICT (site, list) DO UPDATE SET items = excluded.items"
)
DELETE_LIST = "DELETE FROM rec_lists WHERE site = ? AND list = ?"
# Keyset pages of the pairs with enough support, in key order.
PAIRS = (
    "SELECT a, b, n FROM rec_pairs WHERE site = ? AND kind = ? AND n >= ?"
    " AND (a > ? OR (a = ? AND b > ?)) ORDER BY a, b LIMIT ?"
)
TOTALS = "SELECT product, n FROM rec_totals WHERE site = ? AND kind = ?"
# A cart counts as much as three product views, a purchase as five (see recommend.job).
POPULARITY = (
    "SELECT product, SUM(views + 3 * carts + 5 * buys) FROM rec_days"
    " WHERE site = ? AND day >= ? GROUP BY product"
)
LISTS = "SELECT list, items FROM rec_lists WHERE site = ?"
# What a worker polls to know whether to reload a site: the lists' version and the
# catalogue's (the counter every change of the site's products moves on: store.catalog).
VERSION = (
    "SELECT (SELECT version FROM rec_state WHERE site = ?),"
    " (SELECT version FROM catalog_versions WHERE site = ?)"
)
# The oldest ``limit`` records before a time (and any tied with the last of them): one range
# of the (site, kind, at) index, where ``visitor IN (SELECT … LIMIT)`` made PostgreSQL join.
# Arguments: site, kind, before, site, kind, before, limit - 1, before.
PRUNE_VISITORS = (
    "DELETE FROM rec_visitors WHERE site = ? AND kind = ? AND at < ? AND at <= COALESCE("
    "(SELECT at FROM rec_visitors WHERE site = ? AND kind = ? AND at < ? ORDER BY at"
    " LIMIT 1 OFFSET ?), ?)"
)
PRUNE_DAYS = "DELETE FROM rec_days WHERE site = ? AND day < ?"


def lists_version_of(row: Sequence[Any] | None) -> tuple[int, int]:
    """A row of VERSION as (lists' version, catalogue's version), 0 for none yet."""
    if row is None:
        return (0, 0)
    return (int(row[0] or 0), int(row[1] or 0))


_products = msgspec.json.Decoder(list[str]).decode
encode_pairs = msgspec.msgpack.Encoder().encode
"""A batch's pairs ("kind a b", added) as one ``rec_deltas`` row."""
decode_pairs = msgspec.msgpack.Decoder(list[tuple[str, int]]).decode


def event_of(row: Sequence[Any]) -> ProductEvent:
    """A row of EVENTS as a ProductEvent; one whose products are not a list of ids (written
    by no version of sitecue) names none, so the job passes it by instead of stopping."""
    try:
        products = _products(row[5])
    except msgspec.DecodeError:
        products = []
    return ProductEvent(int(row[0]), row[1], row[2], row[3], int(row[4]), products, row[6])
