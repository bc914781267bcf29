"""``GET /v1/deliveries`` and ``POST /v1/deliveries/{id}/retry``: the webhook outbox of a
site, for operators.

A page lists messages newest first (attempts, status, the receiver's last status or error,
the next try) narrowed by ``webhook`` and ``status``, with the id to ask for the next page
(``cursor``), and the site's webhooks disabled by a 410. A retry makes a message due now in
a new round of tries (a day again before it is dead), whatever its status, and re-enables
its webhook if a 410 had disabled it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..errors import BadRequest, NotFound
from ..store import Delivery, DeliveryQuery, DeliveryStatus, DisabledWebhook
from .bodies import json_response
from .decisions import int_param
from .keys import authorised_site

if TYPE_CHECKING:
    from ..rules import CompiledSite
    from ..runtime import Runtime

__all__ = [
    "DeliveryPage",
    "Retried",
    "deliveries_endpoint",
    "disabled_of_site",
    "retry",
    "retry_endpoint",
]

MAX_PAGE = 1000
_ID = re.compile(r"[0-9a-f]{11}-[0-9a-f]{8}-[0-9a-f]{1,16}")
_STATUSES = get_args(DeliveryStatus)


class DeliveryPage(msgspec.Struct, frozen=True):
    items: list[Delivery]
    next: str | None  # pass as ``cursor`` for the next page; null on the last
    disabled: list[DisabledWebhook]  # the site's webhooks a 410 disabled


class Retried(msgspec.Struct, frozen=True):
    id: str
    status: DeliveryStatus = "pending"


def parse_query(site: CompiledSite, params: Mapping[str, str]) -> DeliveryQuery:
    """The query string as a DeliveryQuery; a bad parameter is a 400 that names it."""
    webhook = params.get("webhook")
    if webhook is not None and not any(h.id == webhook for h in site.webhooks):
        known = ", ".join(h.id for h in site.webhooks) or "none are configured"
        raise BadRequest(f"webhook: expected a webhook of site '{site.name}' ({known})")
    status = params.get("status")
    if status is not None and status not in _STATUSES:
        raise BadRequest(f"status: expected one of {', '.join(_STATUSES)}, got {status!r}")
    cursor = params.get("cursor")
    if cursor is not None and not _ID.fullmatch(cursor):
        raise BadRequest("cursor: expected the 'next' value of a previous page")
    return DeliveryQuery(
        site=site.name,
        webhook=webhook,
        status=status,  # type: ignore[arg-type]  # checked against DeliveryStatus above
        before=cursor,
        limit=int_param(params, "limit", 1, MAX_PAGE) or 100,
    )


async def disabled_of_site(runtime: Runtime, site: CompiledSite) -> list[DisabledWebhook]:
    """The site's webhooks that a 410 disabled, at the URL they still point to."""
    urls = {h.id: h.url for h in site.webhooks}
    return [
        d
        for d in await runtime.store.disabled_webhooks()
        if d.site == site.name and urls.get(d.webhook) == d.url
    ]


async def deliveries_endpoint(request: Request) -> Response:
    runtime, site = await authorised_site(request, "whose webhook deliveries to list")
    query = parse_query(site, request.query_params)
    # One more than asked shows whether there is a next page.
    found = await runtime.store.deliveries(msgspec.structs.replace(query, limit=query.limit + 1))
    more = len(found) > query.limit
    page = DeliveryPage(
        found[: query.limit],
        found[query.limit - 1].id if more else None,
        await disabled_of_site(runtime, site),
    )
    return json_response(page)


async def retry(runtime: Runtime, site: CompiledSite, message_id: str) -> None:
    """Make the message due now (re-enabling its webhook); NotFound if the site has none
    by that id."""
    if not _ID.fullmatch(message_id):
        raise BadRequest("id: expected the id of a delivery, as GET /v1/deliveries lists it")
    if not await runtime.store.retry_delivery(site.name, message_id, time.time_ns() // 1_000_000):
        raise NotFound(f"id: site {site.name} has no delivery '{message_id}'")
    runtime.wake_delivery()


async def retry_endpoint(request: Request) -> Response:
    runtime, site = await authorised_site(request, "the delivery belongs to")
    message_id = request.path_params["id"]
    await retry(runtime, site, message_id)
    return json_response(Retried(message_id))
