"""What ``POST /v1/events`` accepts: feedback only on decisions the server made for this
visitor, dated within a day of the server's clock, on decisions made yesterday or today.

An impression, click, dismiss or convert must carry a decision id that verifies (see
:mod:`sitecue.decision_ids`) for the visitor sending it and the rule and variant it names; a
goal event (``event``) needs none. The id carries its UTC day of issue (MAC'd): feedback on
a decision made before yesterday is refused, so feedback replayed once its idempotency key
is pruned (after two days) is never counted twice. A batch is accepted whole or refused
whole: the first bad event is named in a 400, and nothing of that batch is stored or
counted, so a client never has to guess which of its events were kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import decision_ids
from .errors import BadRequest
from .protocol import Feedback

__all__ = ["MAX_AGE_MS", "MAX_AHEAD_MS", "accept"]

MAX_AGE_MS = 24 * 3600 * 1000  # an event older than a day is refused, not back-dated
MAX_AHEAD_MS = 60 * 1000  # clocks drift; the tag dates its events by the server's clock
_REFUSED = "; nothing in this batch was stored"


def accept(
    events: Sequence[Feedback], keys: Sequence[bytes], visitor: str, now: int
) -> list[Feedback]:
    """The events of the batch to record and apply. Feedback on a decision made without
    consent (issued to no one in particular) or on a preview link is valid but left out:
    nothing about that visitor is kept, and a preview counts for nothing. Raises
    BadRequest naming the first bad event's field."""
    accepted = []
    for i, event in enumerate(events):
        where = f"$.events[{i}]"
        if event.at is not None and not now - MAX_AGE_MS <= event.at <= now + MAX_AHEAD_MS:
            raise BadRequest(
                f"{where}.at: expected a time (epoch ms) within the last day and at most a"
                f" minute ahead of the server's clock ({now}){_REFUSED}"
            )
        if event.type == "event":
            accepted.append(event)
            continue
        for field in ("decision", "rule", "variant"):
            if getattr(event, field) is None:
                raise BadRequest(
                    f"{where}.{field}: expected the {field} an {event.type} is about{_REFUSED}"
                )
        assert event.decision is not None and event.rule is not None
        assert event.variant is not None
        about = (event.decision, event.rule, event.variant)
        mine = decision_ids.verify(keys, about[0], visitor, *about[1:])
        if not mine and not any(
            decision_ids.verify(keys, about[0], nobody, *about[1:])
            for nobody in (decision_ids.ANONYMOUS, decision_ids.PREVIEW)
        ):
            # Forged, or issued to another visitor, site, rule or variant.
            raise BadRequest(
                f"{where}.decision: expected the id of a decision this visitor was given"
                f" for rule '{event.rule}' and variant '{event.variant}'{_REFUSED}"
            )
        if not decision_ids.current(event.decision, now):
            # Its "<type> <decision>" key is pruned after two days: feedback replayed later
            # (with no ``at``, so dated now) would count again. The day is MAC'd in the id.
            raise BadRequest(
                f"{where}.decision: expired: the decision was made before yesterday (UTC),"
                f" feedback on it is no longer taken{_REFUSED}"
            )
        if mine:
            accepted.append(event)
    return accepted
