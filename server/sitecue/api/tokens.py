"""``POST /v1/tokens``: email tokens for a campaign, one per contact.

A JSON body lists the contacts; a CSV or NDJSON body (``Content-Type: text/csv`` or
``application/x-ndjson``, with ``site`` and ``ttl`` in the query) is a campaign list as an
email platform exports it, answered as CSV ``contact,token`` to merge into the links.
"""

from __future__ import annotations

import csv
import io
import time
from typing import TYPE_CHECKING, Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..bulk import contact_ids, format_of_type, text_of
from ..errors import BadRequest
from ..tokens import MAX_CONTACT_ID, parse_ttl
from .bodies import MAX_ADMIN_BODY, decode, json_response, read_body
from .keys import authenticate, require_sites

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["MAX_TOKENS", "MintedToken", "TokenRequest", "Tokens", "tokens_endpoint"]

MAX_TOKENS = 100_000
ContactId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CONTACT_ID)]


class TokenRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    site: str
    contacts: Annotated[list[ContactId], msgspec.Meta(min_length=1, max_length=MAX_TOKENS)]
    ttl: str = "30d"  # a lifetime such as 30d or 12h


class MintedToken(msgspec.Struct, frozen=True):
    contact: str
    token: str  # append to a link as ?sc_t=<token>


class Tokens(msgspec.Struct, frozen=True):
    expires: int  # epoch seconds
    tokens: list[MintedToken]


async def tokens_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    key = await authenticate(request, runtime.store)
    body = await read_body(request, MAX_ADMIN_BODY)
    kind = format_of_type(request.headers.get("content-type", "application/json"))
    listed = kind is not None  # a campaign list, answered as CSV
    if kind is not None:
        site, ttl = request.query_params.get("site", ""), request.query_params.get("ttl", "30d")
        ids = contact_ids(text_of(body), kind)
        if not ids or len(ids) > MAX_TOKENS:
            raise BadRequest(f"body: expected 1 to {MAX_TOKENS} contact ids, got {len(ids)}")
    else:
        asked = decode(body, TokenRequest)
        site, ttl, ids = asked.site, asked.ttl, asked.contacts
    require_sites(key, {site})
    runtime.site(site)  # 404 for a site that is not configured
    try:
        expires = int(time.time()) + parse_ttl(ttl)
    except ValueError as err:
        raise BadRequest(str(err)) from None
    tokens = [MintedToken(c, runtime.tokens.mint(site, c, expires)) for c in ids]
    if listed:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("contact", "token"))
        writer.writerows((t.contact, t.token) for t in tokens)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return json_response(Tokens(expires, tokens))
