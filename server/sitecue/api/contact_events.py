"""Server-side events in: what the site's own systems know a person did.

    POST /v1/contacts/{id}/events?site=S   a JSON list, or NDJSON (one event a line)

    [{"name": "store_purchase", "at": 1764000000000, "value": 59.9, "id": "order-1017"},
     {"name": "email_open"}]

Each event names a trigger the site declares (declare one for the purpose as
``{"on": "custom"}``; an undeclared name is refused, so a typo never stores events no rule
can count). ``at`` (epoch ms, default: now) may be at most MAX_SKEW_MS ahead of the server's
clock and at most MAX_AGE_DAYS old; ``value`` is an optional number within ±MAX_VALUE (kept,
exported, and summed for a trigger that declares ``"value": "number"``);
``products`` the ids of the products a purchase was of (``{"name": "purchase", "products":
["sku-1"]}`` where the site's ``catalog.purchase`` is ``purchase``: it needs no trigger); and
``id`` an optional idempotency id: an event whose id the contact already has is a retry's,
counted as ``duplicate`` and not stored again. The batch is checked whole before anything
is stored: one bad event is a 400 naming it (``events[3].name: …``) and nothing is stored.
The answer is 200 with how many were ``stored`` and how many were ``duplicate``.

The events count in ``triggers.<name>.<window>`` (their values in ``sums.<name>.<window>``)
for every browser verified as the person's, from their next identification or refresh (see
:mod:`sitecue.refresh`). Only an admin key
with access to the site may send them: they are as trusted as the contact's attributes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..bulk import text_of
from ..errors import BadRequest, UnsupportedMediaType
from ..protocol import Number, ProductIds
from ..store import ContactEvent
from .bodies import json_response, read_body, utf8_error
from .contacts import CONTROL, contact_id_of
from .keys import authorised_site

if TYPE_CHECKING:
    from ..rules import CompiledSite

__all__ = ["InboundEvent", "Recorded", "contact_events_endpoint", "read_events"]

MAX_EVENTS = 1_000
"""Events in one batch: a larger backlog is sent in several."""
MAX_EVENTS_BODY = 1024 * 1024
"""A batch's body: a thousand events of a few hundred bytes each fit with room."""
MAX_SKEW_MS = 5 * 60 * 1000
"""How far ahead of the server's clock an event may be dated (the sender's clock may run
a little fast); later is refused."""
MAX_AGE_DAYS = 400
"""The oldest event accepted: no rule window is longer (cookies last 400 days too)."""
MAX_ID = 128
JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")


class InboundEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One event as sent: the trigger's name, and optionally when (epoch ms), a number and
    an idempotency id."""

    name: str
    at: int | None = None
    # Bounded as a browser's values are (±MAX_VALUE), so that no sum loses its hundredths.
    value: Number | None = None
    id: str | None = None
    # A purchase's products (ids checked by pattern, as the tag's are): where the event is
    # the site's ``catalog.purchase``, they are what the person bought (see sitecue.products).
    products: ProductIds | None = None


class Recorded(msgspec.Struct, frozen=True):
    """What a batch did: events stored, and events skipped as retries (an id already held)."""

    stored: int
    duplicate: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _field(err: msgspec.ValidationError, where: str) -> str:
    """msgspec's ``Expected `str`, got `int` - at `$.name``` as ``events[3].name: Expected
    `str`, got `int```."""
    message, _, path = str(err).partition(" - at `$")
    return f"{where}{path.rstrip('`')}: {message}"


def _raw_events(body: bytes, content_type: str) -> list[tuple[str, Any]]:
    """(where, value) for each event of the body, by its content type: a JSON list, or
    NDJSON of one object a line (blank lines are skipped; ``where`` names the line too)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES:
        try:
            values = msgspec.json.decode(body)
        except msgspec.DecodeError as err:  # NaN and Infinity too: they are not JSON
            raise BadRequest(f"body: expected a JSON list of events ({err})") from None
        except UnicodeDecodeError:
            raise BadRequest(f"body: expected UTF-8 text ({utf8_error(body)})") from None
        except RecursionError:
            raise BadRequest("body: expected JSON nested less deeply") from None
        if not isinstance(values, list):
            raise BadRequest("body: expected a JSON list of events")
        return [(f"events[{i}]", value) for i, value in enumerate(values)]
    if kind in NDJSON_TYPES:
        found: list[tuple[str, Any]] = []
        for number, line in enumerate(text_of(body).splitlines(), start=1):
            if line.strip():
                where = f"events[{len(found)}] (line {number})"
                try:
                    found.append((where, msgspec.json.decode(line)))
                except msgspec.DecodeError as err:
                    raise BadRequest(f"{where}: expected one JSON object ({err})") from None
                except RecursionError:
                    raise BadRequest(f"{where}: expected JSON nested less deeply") from None
        return found
    accepted = ", ".join((*JSON_TYPES, *NDJSON_TYPES))
    raise UnsupportedMediaType(f"content-type: expected one of {accepted}, got '{content_type}'")


def read_events(
    site: CompiledSite, contact: str, body: bytes, content_type: str, now: int
) -> list[ContactEvent]:
    """The events of a batch, every one checked against ``site``; the first mistake is a
    BadRequest naming the event and its field."""
    raw = _raw_events(body, content_type)
    if not raw:
        raise BadRequest("events: expected at least one event")
    if len(raw) > MAX_EVENTS:
        raise BadRequest(f"events: expected at most {MAX_EVENTS} events, got {len(raw)}")
    # The triggers the site declares, and its catalog's events (a purchase with its products
    # needs no trigger: no rule has to count it for the person's purchases to be known).
    catalog = site.config.catalog
    declared = {
        *site.config.triggers,
        *((catalog.cart, catalog.purchase) if catalog is not None else ()),
    } - {None}
    oldest = now - MAX_AGE_DAYS * 86_400_000
    events = []
    for where, value in raw:
        try:
            event = msgspec.convert(value, InboundEvent)
        except msgspec.ValidationError as err:
            raise BadRequest(_field(err, where)) from None
        if event.name not in declared:
            known = ", ".join(sorted(declared)) or "none are declared"
            raise BadRequest(f"{where}.name: expected a trigger the site declares ({known})")
        at = now if event.at is None else event.at
        if at > now + MAX_SKEW_MS:
            raise BadRequest(
                f"{where}.at: expected a time at most {MAX_SKEW_MS // 60_000} minutes ahead"
                f" of the server's clock ({now}), got {at}"
            )
        if at < oldest:
            raise BadRequest(f"{where}.at: expected a time within the last {MAX_AGE_DAYS} days")
        if event.id is not None and not 0 < len(event.id) <= MAX_ID:
            raise BadRequest(f"{where}.id: expected an id of 1 to {MAX_ID} characters")
        if event.id is not None and CONTROL.search(event.id):
            raise BadRequest(f"{where}.id: expected an id without control characters")
        products = list(dict.fromkeys(event.products)) if event.products else None
        events.append(
            ContactEvent(site.name, contact, event.name, at, event.value, event.id, products)
        )
    return events


async def contact_events_endpoint(request: Request) -> Response:
    runtime, site = await authorised_site(request, "the contact belongs to")
    contact = contact_id_of(request)
    body = await read_body(request, MAX_EVENTS_BODY)
    events = read_events(site, contact, body, request.headers.get("content-type", ""), _now_ms())
    stored = await runtime.store.add_contact_events(events)
    return json_response(Recorded(stored, len(events) - stored))
