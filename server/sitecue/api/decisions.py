"""``GET /v1/decisions``: the decision log, for "why did this visitor see that?".

Newest first, narrowed by site (required), visitor, contact (every browser linked to them),
rule, variant, matched and time range.
A page holds at most ``limit`` records and the id to ask for the next one (``cursor``); with
``Accept: application/x-ndjson`` every matching record is streamed, one JSON line each,
fetched in chunks so an export of any size never sits in memory whole.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..errors import BadRequest
from ..store import DecisionQuery, DecisionRecord, Store
from .bodies import json_response
from .keys import authenticate, require_sites

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["DecisionPage", "decisions_endpoint"]

MAX_PAGE = 1000
EXPORT_CHUNK = 500
_CURSOR = re.compile(r"[0-9a-f]{11}-[0-9a-f]{8}-[0-9a-f]{1,16}")
_encode = msgspec.json.Encoder().encode


class DecisionPage(msgspec.Struct, frozen=True):
    items: list[DecisionRecord]
    next: str | None  # pass as ``cursor`` for the next page; null on the last


def int_param(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    """The whole-number query parameter ``name`` within [low, high], or None if absent."""
    text = params.get(name)
    if text is None:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(f"{name}: expected a whole number from {low} to {high}, got {text!r}")
    return int(text)


def parse_query(params: Mapping[str, str]) -> DecisionQuery:
    """The query string as a DecisionQuery; a bad parameter is a 400 that names it."""
    site = params.get("site")
    if not site:
        raise BadRequest("site: expected the site whose decisions to list")
    matched = params.get("matched")
    if matched not in (None, "true", "false"):
        raise BadRequest(f"matched: expected true or false, got {matched!r}")
    cursor = params.get("cursor")
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        raise BadRequest("cursor: expected the 'next' value of a previous page")
    return DecisionQuery(
        site=site,
        visitor=params.get("visitor"),
        contact=params.get("contact"),
        rule=params.get("rule"),
        variant=params.get("variant"),
        matched=None if matched is None else matched == "true",
        since=int_param(params, "from", 0, 2**53),
        until=int_param(params, "until", 0, 2**53),
        before=cursor,
        limit=int_param(params, "limit", 1, MAX_PAGE) or 100,
    )


async def _export(store: Store, query: DecisionQuery) -> AsyncIterator[bytes]:
    chunk = msgspec.structs.replace(query, limit=EXPORT_CHUNK)
    while True:
        records = await store.decisions(chunk)
        for record in records:
            yield _encode(record) + b"\n"
        if len(records) < EXPORT_CHUNK:
            return
        chunk = msgspec.structs.replace(chunk, before=records[-1].id)


async def decisions_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    key = await authenticate(request, runtime.store)
    query = parse_query(request.query_params)
    require_sites(key, {query.site})
    if "application/x-ndjson" in request.headers.get("accept", ""):
        return StreamingResponse(_export(runtime.store, query), media_type="application/x-ndjson")
    # One more than asked shows whether there is a next page.
    records = await runtime.store.decisions(msgspec.structs.replace(query, limit=query.limit + 1))
    more = len(records) > query.limit
    page = DecisionPage(records[: query.limit], records[query.limit - 1].id if more else None)
    return json_response(page)
