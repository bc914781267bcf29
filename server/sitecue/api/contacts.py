"""Contacts: the people a site knows, with typed offsite attributes from its own systems.

    GET    /v1/contacts/{id}?site=S          the contact and the browsers verified as theirs
    PUT    /v1/contacts/{id}?site=S          {"attributes": {…}}: create, or replace them all
    PATCH  /v1/contacts/{id}?site=S          {"attributes": {…}}: change some (null removes)
    DELETE /v1/contacts/{id}?site=S          erasure: the contact, its links, and who they
                                             were in the logs
    GET    /v1/contacts/{id}/export?site=S   everything held about them (an access request)
    POST   /v1/contacts/{id}/events?site=S   server-side events (see api/contact_events.py)
    POST   /v1/contacts/import?site=S        a customer list, NDJSON or CSV

A person's browsers are those an email token verified. A browser whose page JavaScript only
claimed the id (``sitecue('identify', …)``) is not theirs: anyone can claim any id, so it is
counted (``unverified``) but never listed, exported or recounted as theirs.

Attributes must be declared by the site (``"attributes": {"loyalty_tier": "string"}``) and
of their declared type; a mistake is a 400 that names the attribute, and the line.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..bulk import MEDIA_TYPES, contacts, format_of_type, text_of
from ..errors import BadRequest, NotFound, UnsupportedMediaType
from ..identity import MAX_CONTACT_ID, check_attributes
from ..store import (
    Contact,
    ContactEvent,
    DecisionQuery,
    DecisionRecord,
    EventRecord,
    Submission,
    SubmissionQuery,
)
from ..webhooks import messages
from .bodies import MAX_ADMIN_BODY, decode, json_response, read_body
from .keys import authorised_site

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = [
    "CONTROL",
    "AttributesBody",
    "ContactExport",
    "ContactView",
    "Imported",
    "contact_endpoint",
    "contact_id_of",
    "export_endpoint",
    "import_endpoint",
]

EXPORT_LIMIT = 100_000


class AttributesBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    attributes: dict[str, Any]


class ContactView(msgspec.Struct, frozen=True):
    site: str
    id: str
    attributes: dict[str, Any]
    updated: int  # epoch ms
    visitors: list[str]  # the browsers verified as this contact's (by an email token)
    unverified: int = 0  # browsers that only claimed this id, from page JavaScript
    answers: dict[str, Any] = {}  # what the person typed in forms: declared, never verified
    source: str = "site"  # "form" when a form submission created the contact


class ContactExport(msgspec.Struct, frozen=True):
    contact: ContactView | None
    decisions: list[DecisionRecord]
    events: list[EventRecord]
    submissions: list[Submission] = []  # the forms they sent, with the consent texts shown
    server_events: list[ContactEvent] = []  # what the site's systems reported about them


class Imported(msgspec.Struct, frozen=True):
    imported: int


CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""A control character: never part of an id."""


def contact_id_of(request: Request) -> str:
    """The path's contact id: not too long, and without control characters (PostgreSQL
    refuses a NUL in text: that would be a 500, not the caller's 400)."""
    contact_id: str = request.path_params["contact"]
    if len(contact_id) > MAX_CONTACT_ID:
        raise BadRequest(f"contact: expected an id of at most {MAX_CONTACT_ID} characters")
    if CONTROL.search(contact_id):
        raise BadRequest("contact: expected an id without control characters")
    return contact_id


def _set(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes that have a value (null clears one)."""
    return {k: v for k, v in attributes.items() if v is not None}


async def _view(runtime: Runtime, site: str, contact_id: str) -> ContactView | None:
    contact = await runtime.store.contact(site, contact_id)
    visitors = await runtime.store.visitors(site, contact_id)
    claims = await runtime.store.claims(site, contact_id)
    if contact is None and not visitors and not claims:
        return None
    if contact is None:
        return ContactView(site, contact_id, {}, 0, visitors, claims)
    return ContactView(
        site, contact_id, contact.attributes, contact.updated, visitors, claims,
        contact.answers, contact.source,
    )  # fmt: skip


async def contact_endpoint(request: Request) -> Response:
    runtime, site = await authorised_site(request, "the contact belongs to")
    contact_id = contact_id_of(request)
    if request.method == "DELETE":
        told = messages.contact_erased(site, contact_id, time.time_ns() // 1_000_000)
        if not await runtime.store.erase_contact(site.name, contact_id, told):
            raise NotFound(f"contact: nothing is held about '{contact_id}' on {site.name}")
        return Response(status_code=204)
    if request.method in ("PUT", "PATCH"):
        asked = decode(await read_body(request, MAX_ADMIN_BODY), AttributesBody)
        check_attributes(site.config.attributes, asked.attributes, "attributes")
        attributes = asked.attributes
        if request.method == "PATCH":
            held = await runtime.store.contact(site.name, contact_id)
            attributes = {**(held.attributes if held else {}), **attributes}
        attributes = _set(attributes)
        now = time.time_ns() // 1_000_000
        await runtime.store.put_contacts([Contact(site.name, contact_id, attributes, now)])
    view = await _view(runtime, site.name, contact_id)
    if view is None:
        raise NotFound(f"contact: nothing is held about '{contact_id}' on {site.name}")
    return json_response(view)


async def export_endpoint(request: Request) -> Response:
    """Everything held about a person: the contact, and every decision and event of every
    browser verified as theirs (not of browsers that merely claimed to be them: their
    records are someone else's), and the server-side events the site's systems sent, held
    even for an id the site has not otherwise stored."""
    runtime, site = await authorised_site(request, "the contact belongs to")
    contact_id = contact_id_of(request)
    view = await _view(runtime, site.name, contact_id)
    server_events = await runtime.store.contact_events(site.name, contact_id)
    if view is None and not server_events:
        raise NotFound(f"contact: nothing is held about '{contact_id}' on {site.name}")
    query = DecisionQuery(site=site.name, contact=contact_id, limit=EXPORT_LIMIT)
    decisions = await runtime.store.decisions(query)
    events = await runtime.store.events(site.name, view.visitors) if view and view.visitors else []
    sent = SubmissionQuery(site=site.name, contact=contact_id, limit=EXPORT_LIMIT)
    submissions = await runtime.store.submissions(sent)
    return json_response(ContactExport(view, decisions, events, submissions, server_events))


async def import_endpoint(request: Request) -> Response:
    """A customer list: NDJSON of ``{"id", "attributes"}`` or CSV ``id,<attribute>,…``, as
    its ``Content-Type`` says (415 for any other). Every line is checked before any is
    stored, so a bad file changes nothing."""
    runtime, site = await authorised_site(request, "the contact belongs to")
    content_type = request.headers.get("content-type", "")
    kind = format_of_type(content_type)
    if kind is None:
        raise UnsupportedMediaType(
            f"content-type: expected one of {', '.join(MEDIA_TYPES)}, got '{content_type}'"
        )
    body = await read_body(request, MAX_ADMIN_BODY)
    people = contacts(text_of(body), kind, site.config.attributes)
    now = time.time_ns() // 1_000_000
    await runtime.store.put_contacts(
        [Contact(site.name, p.id, _set(p.attributes), now) for p in people]
    )
    return json_response(Imported(len(people)))
