"""``GET /v1/submissions``: the form submissions of a site, for the people who follow up.

Newest first, narrowed by rule, contact and time range (``from`` inclusive, ``to``
exclusive, epoch ms). A page holds at most ``limit`` submissions and the id to ask for the
next one (``cursor``). With ``Accept: application/x-ndjson`` every matching submission is
streamed, one JSON line each; with ``Accept: text/csv``, one row each, a column per form
field of the site. Either export is fetched in chunks, so it never sits in memory whole.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..errors import BadRequest
from ..store import Store, Submission, SubmissionQuery
from .bodies import json_response
from .decisions import int_param
from .keys import authorised_site

if TYPE_CHECKING:
    from ..rules import CompiledSite

__all__ = ["SubmissionPage", "csv_rows", "submissions_endpoint"]

MAX_PAGE = 1000
EXPORT_CHUNK = 500
_CURSOR = re.compile(r"[0-9a-f]{11}-[0-9a-f]{8}-[0-9a-f]{1,16}")
_encode = msgspec.json.Encoder().encode
COLUMNS = ("id", "at", "rule", "variant", "decision", "visitor", "contact")
# A cell a spreadsheet would run as a formula (=HYPERLINK(…) typed into a form): prefixed
# with an apostrophe, which spreadsheets show as text.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class SubmissionPage(msgspec.Struct, frozen=True):
    items: list[Submission]
    next: str | None  # pass as ``cursor`` for the next page; null on the last


def parse_query(site: CompiledSite, params: Mapping[str, str]) -> SubmissionQuery:
    """The query string as a SubmissionQuery; a bad parameter is a 400 that names it."""
    rule = params.get("rule")
    if rule is not None and not any(r.id == rule for r in site.rules):
        raise BadRequest(f"rule: expected a rule of site '{site.name}', got {rule!r}")
    cursor = params.get("cursor")
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        raise BadRequest("cursor: expected the 'next' value of a previous page")
    return SubmissionQuery(
        site=site.name,
        rule=rule,
        contact=params.get("contact"),
        since=int_param(params, "from", 0, 2**53),
        until=int_param(params, "to", 0, 2**53),
        before=cursor,
        limit=int_param(params, "limit", 1, MAX_PAGE) or 100,
    )


async def _all(store: Store, query: SubmissionQuery) -> AsyncIterator[list[Submission]]:
    chunk = msgspec.structs.replace(query, limit=EXPORT_CHUNK)
    while True:
        found = await store.submissions(chunk)
        yield found
        if len(found) < EXPORT_CHUNK:
            return
        chunk = msgspec.structs.replace(chunk, before=found[-1].id)


async def _ndjson(store: Store, query: SubmissionQuery) -> AsyncIterator[bytes]:
    async for found in _all(store, query):
        for submission in found:
            yield _encode(submission) + b"\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = "; ".join(map(str, value))
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def field_names(site: CompiledSite) -> list[str]:
    """Every form field of the site, in the order the forms declare them."""
    names: dict[str, None] = {}
    for widget in site.config.widgets.values():
        for field in widget.form.fields if widget.form is not None else ():
            names.setdefault(field.name)
    return list(names)


def csv_rows(fields: list[str], submissions: Iterable[Submission], header: bool) -> bytes:
    """Submissions as CSV lines: COLUMNS, a column per form field, and ``consents`` (the
    texts the visitor agreed to, one per line of the cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow([*COLUMNS, *fields, "consents"])
    for s in submissions:
        fixed = (s.id, s.at, s.rule, s.variant, s.decision, s.visitor, s.contact)
        writer.writerow(
            [
                *map(_cell, fixed),
                *(_cell(s.fields.get(name)) for name in fields),
                _cell("\n".join(s.consents.values())),
            ]
        )
    return out.getvalue().encode()


async def _csv(store: Store, site: CompiledSite, query: SubmissionQuery) -> AsyncIterator[bytes]:
    fields, header = field_names(site), True
    async for found in _all(store, query):
        yield csv_rows(fields, found, header)
        header = False


async def submissions_endpoint(request: Request) -> Response:
    runtime, site = await authorised_site(request, "whose submissions to list")
    query = parse_query(site, request.query_params)
    accept = request.headers.get("accept", "")
    if "application/x-ndjson" in accept:
        return StreamingResponse(_ndjson(runtime.store, query), media_type="application/x-ndjson")
    if "text/csv" in accept:
        return StreamingResponse(
            _csv(runtime.store, site, query),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{site.name}-submissions.csv"'},
        )
    # One more than asked shows whether there is a next page.
    found = await runtime.store.submissions(msgspec.structs.replace(query, limit=query.limit + 1))
    more = len(found) > query.limit
    return json_response(
        SubmissionPage(found[: query.limit], found[query.limit - 1].id if more else None)
    )
