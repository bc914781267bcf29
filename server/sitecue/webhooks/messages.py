"""Which outbox messages an event produces for a site's webhooks, and their payloads.

A webhook gets the events it lists, each as its own message (its own id, its own tries).
Payloads are plain JSON data; the body a webhook sends is rendered from them with ``id``,
``event``, ``at`` (epoch ms) and ``site`` added (see :mod:`.bodies`):

- ``form.submitted``: ``submission``, ``rule``, ``variant``, ``decision``, ``contact`` (the
  contact the form names, or null), ``email`` (the same when that field is an email),
  ``fields`` (every answer, checked and normalised), ``consents`` (field -> the text shown)
- ``contact.identified``: ``contact`` (verified by an email link; once per link and browser)
- ``goal.converted``: ``goal``, ``rule``/``variant``/``decision`` (a rule's convert; null
  for a goal event), ``contact`` (verified, else null), ``verified``, ``claimed`` (the
  contact page JavaScript claimed, unverified, else null); at most one per goal per event
  id (and per browser), only for a browser whose state is kept
- ``decision.shown``: ``rule``, ``variant``, ``decision``, ``contact``, ``verified``,
  ``claimed`` (as for a goal)
- ``contact.erased``: ``contact`` and nothing else: all the downstream needs to erase too

Messages about a person carry their contact and browser (not sent) so that erasing them
reaches the outbox too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..config import Form
from ..forms import contact_field
from ..ids import record_id
from ..protocol import Feedback
from ..rules import CompiledSite
from ..store import Message, Submission
from .bodies import EVENTS

__all__ = [
    "EVENTS",
    "contact_erased",
    "contact_identified",
    "feedback",
    "form_submitted",
    "messages",
]


def messages(
    site: CompiledSite,
    event: str,
    payload: dict[str, Any],
    at: int,
    *,
    contact: str | None = None,
    visitor: str | None = None,
    key: str | None = None,
    queued: int | None = None,
) -> list[Message]:
    """One message per webhook of ``site`` that listens to ``event``. ``key`` (the
    request's idempotency key) keeps a retried request's messages from being stored twice;
    ``queued`` is when it is written, if later than the event's time ``at``."""
    return [
        Message(
            record_id(at),
            site.name,
            hook.id,
            event,
            at,
            payload,
            contact,
            visitor,
            key=f"{hook.id}:{event}:{key}" if key is not None else None,
            queued=queued,
        )
        for hook in site.webhooks
        if event in hook.events
    ]


def _listened(site: CompiledSite, event: str) -> bool:
    return any(event in hook.events for hook in site.webhooks)


def form_submitted(site: CompiledSite, s: Submission, form: Form) -> list[Message]:
    """A stored form submission."""
    if not _listened(site, "form.submitted"):
        return []
    named = contact_field(form)
    email = s.contact if named is not None and named.type == "email" else None
    payload = {
        "submission": s.id, "rule": s.rule, "variant": s.variant, "decision": s.decision,
        "contact": s.contact, "email": email, "fields": s.fields, "consents": s.consents,
    }  # fmt: skip
    visitor = s.visitor if s.visitor != "-" else None
    return messages(
        site, "form.submitted", payload, s.at, contact=s.contact, visitor=visitor, key=s.id
    )


def contact_identified(
    site: CompiledSite, contact: str, visitor: str, at: int, key: str | None = None
) -> list[Message]:
    """A browser verified as the contact's by an email link. ``key`` (the token's
    fingerprint and the browser) makes it one message per link and browser, however often
    the link is opened again (without the state cookie, each opening links once more)."""
    return messages(
        site,
        "contact.identified",
        {"contact": contact},
        at,
        contact=contact,
        visitor=visitor,
        key=key,
    )


def feedback(
    site: CompiledSite,
    events: Iterable[Feedback],
    visitor: str,
    contact: str | None,
    verified: bool,
    now: int,
) -> list[Message]:
    """Goals reached (a goal event, or a convert on a rule with a goal) and impressions."""
    if not (_listened(site, "goal.converted") or _listened(site, "decision.shown")):
        return []
    goals = {r.id: r.rule.goal for r in site.rules}
    # A contact only claimed (page JavaScript named it, no email link verified it) is not
    # sent as the person's: anyone can claim any id. It goes as ``claimed``, for what it is.
    who = {
        "contact": contact if verified else None,
        "verified": verified,
        "claimed": None if verified else contact,
    }
    browser = visitor if visitor != "-" else None
    out: list[Message] = []
    reached: set[tuple[str, str]] = set()
    for e in events:
        about = {"rule": e.rule, "variant": e.variant, "decision": e.decision}
        at = min(e.at or now, now)
        key = e.id or e.decision or None
        goal = None
        if e.type == "event" and e.name in site.goals:
            goal = e.name
            event, payload = "goal.converted", {"goal": goal, **dict.fromkeys(about), **who}
        elif e.type == "convert" and goals.get(e.rule or ""):
            goal = goals[e.rule or ""]
            event, payload = "goal.converted", {"goal": goal, **about, **who}
        elif e.type == "impression":
            event, payload = "decision.shown", {**about, **who}
        else:
            continue
        if goal is not None:
            # Anyone may post events (no decision needed for a goal event): a goal message
            # is only for a browser whose state is kept, once per goal and decision (or
            # browser) in a request, and keyed by the browser, goal and event id so that a
            # replayed or retried event is stored once. Flooding a webhook takes a request
            # with a new event id per message.
            if browser is None or (goal, e.decision or browser) in reached:
                continue
            reached.add((goal, e.decision or browser))
            key = f"{browser}:{goal}:{e.id or e.decision or ''}"
        out += messages(
            site, event, payload, at, contact=contact, visitor=browser, key=key, queued=now
        )
    return out


def contact_erased(site: CompiledSite, contact: str, at: int) -> list[Message]:
    """A person erased: only their contact id goes out (the outbox keeps no other trace)."""
    return messages(site, "contact.erased", {"contact": contact}, at)
