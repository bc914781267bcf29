"""Server-side events of a person, as stored: what the site's own systems report about a
contact (an email opened, a purchase in a store), and the statements both engines run to
store them and to read them back when a browser of the person is refreshed.

They belong to the contact, not to a browser: they count for every browser verified as the
person's (see :mod:`sitecue.refresh`). A batch is stored in one transaction; an event whose
``id`` the contact already has is a retry's, skipped by a unique index with no read first.
Erasing the contact deletes them (``FORGET`` in :mod:`sitecue.store.base`).
"""

from __future__ import annotations

from typing import Any

import msgspec

# The bounds of a value and of a sum, as protocol.MAX_VALUE and state.MAX_SUM (the store
# does not import the layers above it; tests/test_store.py holds them equal).
MAX_VALUE = 1e9
MAX_SUM = 2**53
PURCHASE_BROWSERS = 20  # the verified browsers a refresh reads purchases of: HISTORY_BROWSERS

__all__ = ["MAX_REFRESH_EVENTS", "MAX_REFRESH_PURCHASES", "ContactEvent", "Refreshed"]


class ContactEvent(msgspec.Struct, frozen=True, omit_defaults=True):
    """One server-side event of a contact: a trigger the site declares, when it happened
    (epoch ms), an optional number (an order's value), and the sender's idempotency id."""

    site: str
    contact: str
    name: str
    at: int
    value: float | None = None
    id: str | None = None
    # The products a purchase (the site's ``catalog.purchase``) was of: the person bought
    # them, whichever browser they use (see sitecue.products).
    products: list[str] | None = None


class Refreshed(msgspec.Struct, frozen=True):
    """What one refresh read finds for a browser still verified as the contact's: their
    attributes, the newest server-side events of the counted triggers since the start of the
    longest day window (``[name, at, value]``, newest first, at most MAX_REFRESH_EVENTS),
    each counted trigger's number of server-side events in all, and the sum of their values
    in all. Values and sums are in hundredths, each value rounded as a browser's are (see
    ``VisitorState.add_value``: half to even) and within ±MAX_VALUE, a sum within ±MAX_SUM;
    an event without a value has 0, a trigger whose values come to 0 has no sum."""

    attributes: dict[str, Any]
    events: list[tuple[str, int, int]]
    totals: dict[str, int]
    sums: dict[str, int] = {}
    # The products the person bought (purchase events of their verified browsers and the
    # site's own purchase events, newest first, each once, see MAX_REFRESH_PURCHASES).
    bought: list[str] = []


MAX_REFRESH_PURCHASES = 64
"""The newest purchases a refresh reads of a person (each one's products: the state keeps
the newest 16 products)."""


MAX_REFRESH_EVENTS = 2_000
"""The newest server-side events a refresh reads per person: a day window counts at most
these (a ``total`` is counted in SQL, without the bound)."""

CONTACT_EVENT_COLUMNS = "site, contact, name, at, value, idempotency_key, products"
INSERT_CONTACT_EVENT = (
    f"INSERT INTO contact_events ({CONTACT_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site, contact, idempotency_key) WHERE idempotency_key IS NOT NULL"
    " DO NOTHING"
)
LIST_CONTACT_EVENTS = (
    f"SELECT {CONTACT_EVENT_COLUMNS} FROM contact_events WHERE site = ? AND contact = ?"
    " ORDER BY at, seq"
)
FORGET_CONTACT_EVENTS = "DELETE FROM contact_events WHERE site = ? AND contact = ?"


def contact_event_row(e: ContactEvent) -> tuple[object, ...]:
    """An event as a row of INSERT_CONTACT_EVENT."""
    return (e.site, e.contact, e.name, e.at, e.value, e.id, _products_text(e.products))


def _products_text(products: list[str] | None) -> str | None:
    return msgspec.json.encode(products).decode() if products is not None else None


def contact_event_of(row: Any) -> ContactEvent:
    """A row of CONTACT_EVENT_COLUMNS as a ContactEvent."""
    value = None if row[4] is None else float(row[4])
    products = _product_lists(f"[{row[6]}]")[0] if row[6] else None
    return ContactEvent(row[0], row[1], row[2], int(row[3]), value, row[5], products)


_attributes = msgspec.json.Decoder(dict[str, Any]).decode
_events = msgspec.json.Decoder(list[tuple[str, int, int]]).decode
_totals = msgspec.json.Decoder(dict[str, tuple[int, int]]).decode
_product_lists = msgspec.json.Decoder(list[list[str]]).decode


def refreshed_of(
    verified: object, attributes: str | bytes | None, events: str | bytes | None,
    totals: str | bytes | None, bought: str | bytes | None = None,
) -> Refreshed | None:  # fmt: skip
    """The refresh read's one row as a Refreshed; None when the browser is no longer
    verified as the contact's (the person was erased, or the link is gone)."""
    if not verified:
        return None
    counted = _totals(totals) if totals else {}
    purchases = _product_lists(bought) if bought else []
    return Refreshed(
        _attributes(attributes) if attributes else {},
        _events(events) if events else [],
        {name: n for name, (n, _) in counted.items()},
        {name: total for name, (_, total) in counted.items() if total},
        list(dict.fromkeys(p for products in purchases for p in products)),
    )


# Values are summed in hundredths, each rounded as Python's round() rounds a browser's
# (half to even, on the same double: value * 100), so that a server-side purchase adds up
# exactly as one reported by the tag. An integer (CAST truncates toward zero) and its exact
# remainder pick the neighbour; SQLite has no floor() in every build, PostgreSQL's round()
# of a double is rint(): half to even. A value is first held within ±MAX_VALUE (as the
# inbound endpoint takes them), so no stored value can overflow a sum; an event without one
# stays NULL (SQLite's MIN and MAX of several arguments are NULL when one is), adding
# nothing to a sum and 0 in the list.
_CENTS_SQLITE = "MIN(MAX(value, -{bound}), {bound}) * 100".format(bound=f"{MAX_VALUE:.0f}.0")
_HALF_EVEN_SQLITE = (
    "CASE WHEN x - CAST(x AS INTEGER) > 0.5"
    " OR (x - CAST(x AS INTEGER) = 0.5 AND CAST(x AS INTEGER) % 2)"
    " THEN CAST(x AS INTEGER) + 1"
    " WHEN x - CAST(x AS INTEGER) < -0.5"
    " OR (x - CAST(x AS INTEGER) = -0.5 AND CAST(x AS INTEGER) % 2)"
    " THEN CAST(x AS INTEGER) - 1"
    " ELSE CAST(x AS INTEGER) END"
)
# GREATEST and LEAST skip a NULL in PostgreSQL: an event without a value must stay NULL.
_CENTS_POSTGRES = (
    "CASE WHEN value IS NOT NULL THEN round(LEAST(GREATEST(value, -{bound}), {bound}) * 100) END"
).format(bound=f"{MAX_VALUE:.0f}::float8")


# The one read of a refresh, a single statement in each engine: whether the browser is still
# verified as the contact's, their attributes, the newest events of the counted triggers
# since the start of the longest day window with their values, and how many of each there
# are in all with the sum of their values ({name: [count, sum]}).
# Then the products the person bought: the newest MAX_REFRESH_PURCHASES purchases (events
# named ``purchase``, with products) since ``bought since``, of their verified browsers (the
# newest HISTORY_BROWSERS) and of the site's own records, as a JSON list of id lists; a
# browser merely claiming the contact adds nothing. With no purchase name, an empty list.
# Parameters: site, visitor, contact, the counted trigger names, since (epoch ms), the
# purchase's name (or NULL), bought since (epoch ms).
_PURCHASES = """
     SELECT {products} AS p, at FROM events
     WHERE site = {site} AND name = {name} AND type IN ('trigger', 'event')
       AND products IS NOT NULL AND at >= {since} AND visitor IN (
         SELECT visitor FROM links WHERE site = {site} AND contact = {contact} AND verified
         ORDER BY at DESC, visitor DESC LIMIT {browsers})
     UNION ALL
     SELECT {products}, at FROM contact_events
     WHERE site = {site} AND contact = {contact} AND name = {name} AND products IS NOT NULL
       AND at >= {since}
     ORDER BY at DESC LIMIT {most}"""
REFRESH_SQLITE = f"""
SELECT
  (SELECT verified FROM links WHERE site = ?1 AND visitor = ?2 AND contact = ?3),
  (SELECT attributes FROM contacts WHERE site = ?1 AND id = ?3),
  (SELECT json_group_array(json_array(name, at, IFNULL({_HALF_EVEN_SQLITE}, 0))) FROM (
     SELECT name, at, {_CENTS_SQLITE} AS x FROM contact_events
     WHERE site = ?1 AND contact = ?3 AND name IN (SELECT value FROM json_each(?4)) AND at >= ?5
     ORDER BY at DESC, seq DESC LIMIT {MAX_REFRESH_EVENTS})),
  (SELECT json_group_object(name, json_array(n, s)) FROM (
     SELECT name, COUNT(*) AS n,
       CAST(MIN(MAX(TOTAL({_HALF_EVEN_SQLITE}), -{MAX_SUM}), {MAX_SUM}) AS INTEGER) AS s
     FROM (
       SELECT name, {_CENTS_SQLITE} AS x FROM contact_events
       WHERE site = ?1 AND contact = ?3 AND name IN (SELECT value FROM json_each(?4)))
     GROUP BY name)),
  (SELECT json_group_array(json(p)) FROM ({
    _PURCHASES.format(
        products="products", site="?1", contact="?3", name="?6", since="?7",
        browsers=PURCHASE_BROWSERS, most=MAX_REFRESH_PURCHASES,
    )}))
"""  # fmt: skip
REFRESH_POSTGRES = f"""
SELECT
  (SELECT verified FROM links WHERE site = $1 AND visitor = $2 AND contact = $3),
  (SELECT attributes::text FROM contacts WHERE site = $1 AND id = $3),
  (SELECT json_agg(json_build_array(name, at, h) ORDER BY at DESC, seq DESC)::text FROM (
     SELECT name, at, seq, COALESCE(({_CENTS_POSTGRES})::bigint, 0) AS h FROM contact_events
     WHERE site = $1 AND contact = $3 AND name = ANY($4::text[]) AND at >= $5
     ORDER BY at DESC, seq DESC LIMIT {MAX_REFRESH_EVENTS}) AS e),
  (SELECT json_object_agg(name, json_build_array(n, s))::text FROM (
     SELECT name, COUNT(*) AS n, LEAST(GREATEST(COALESCE(SUM({_CENTS_POSTGRES}), 0),
       -{MAX_SUM}::float8), {MAX_SUM}::float8)::bigint AS s
     FROM contact_events
     WHERE site = $1 AND contact = $3 AND name = ANY($4::text[])
     GROUP BY name) AS t),
  (SELECT COALESCE(json_agg(p ORDER BY at DESC), '[]')::text FROM ({
    _PURCHASES.format(
        products="products::json", site="$1", contact="$3", name="$6::text",
        since="$7::bigint", browsers=PURCHASE_BROWSERS, most=MAX_REFRESH_PURCHASES,
    )}) AS b)
"""  # fmt: skip
# PostgreSQL inserts a batch in one statement, to count what it stored ("INSERT 0 <n>").
INSERT_CONTACT_EVENTS_POSTGRES = (
    f"INSERT INTO contact_events ({CONTACT_EVENT_COLUMNS})"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],"
    " $5::float8[], $6::text[], $7::text[])"
    " ON CONFLICT (site, contact, idempotency_key) WHERE idempotency_key IS NOT NULL"
    " DO NOTHING"
)
