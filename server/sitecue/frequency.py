"""The site's overlay budget: how many popups one visitor gets, across every rule.

``"frequency": {"per_view": 1, "per_session": 2, "per_day": 3, "cooldown": "10m"}`` holds
for the overlays (modal, slide-in, bar; inline and replace too when ``applies_to`` lists
them) of all the site's rules together. What spends it:

- ``per_view``: the overlays *given* to the tag in one page view. The tag decides a page
  view again when a watched trigger fires (a click), sending the same view id; the state
  remembers that view and what it was given, so a second call cannot bring a second popup.
  An overlay given earlier in the view is given again (the same decision id: the tag does
  not show it twice) at no further cost. Given, not shown: a decision waiting for exit
  intent or a scroll depth may show at any moment of the view.
- ``per_session``, ``per_day`` (calendar days in the site's time zone) and ``cooldown``:
  the overlays *shown*, as the tag's impressions report them, a control's included (an
  experiment then compares its campaign with nothing rather than with the next campaign
  in line). A decision that never showed (the exit intent never came) spends nothing.

The server keeps and enforces all of it in the sealed state cookie; the tag is told nothing
of the budget and cannot widen it. Without a state (no consent where the site asks) no
budget can be kept, so the rules it covers then need consent, like a capped rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .config import Frequency
from .state import Budget, VisitorState

__all__ = ["FrequencyCap", "compile_frequency", "enter_view", "give", "refusal", "shown"]

_UNITS_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


@dataclass(frozen=True)
class FrequencyCap:
    """A site's ``frequency``, compiled: the limits (None: no limit of that kind), the
    cooldown in milliseconds, and the placement types it covers."""

    per_view: int | None
    per_session: int | None
    per_day: int | None
    cooldown_ms: int
    applies_to: frozenset[str]


def compile_frequency(config: Frequency | None) -> FrequencyCap | None:
    if config is None:
        return None
    cooldown = config.cooldown
    return FrequencyCap(
        config.per_view,
        config.per_session,
        config.per_day,
        int(cooldown[:-1]) * _UNITS_MS[cooldown[-1]] if cooldown else 0,
        frozenset(config.applies_to),
    )


def _mark(text: str) -> int:
    """A 32-bit digest of a view id or a rule id: the cookie keeps these, not the ids (a
    rule id may take 64 bytes). A collision would at worst let one overlay be given again
    in a view, as the decision it was already given."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest())


def enter_view(state: VisitorState, view: str | None) -> Budget:
    """The visitor's budget, in the page view ``view`` (the tag's id for it): a view other
    than the one last decided starts with nothing given. A call without a view id is a
    page view of its own."""
    budget = state.budget
    if budget is None:
        budget = state.budget = Budget()
    mark = _mark(view) if view else 0
    if not mark or mark != budget.view:
        budget.view, budget.given = mark, []
    return budget


def refusal(cap: FrequencyCap, budget: Budget, rule: str, today: int, now: int) -> str | None:
    """Why the budget refuses an overlay of ``rule`` now (the reason the decision log
    shows), or None when it may be given."""
    if _mark(rule) in budget.given:
        return None  # given in this view already: the same decision again, at no cost
    if cap.per_view is not None and len(budget.given) >= cap.per_view:
        return "frequency: per_view"
    if cap.per_session is not None and budget.session >= cap.per_session:
        return "frequency: per_session"
    if cap.per_day is not None and budget.day == today and budget.today >= cap.per_day:
        return "frequency: per_day"
    if cap.cooldown_ms and budget.last_shown and now - budget.last_shown < cap.cooldown_ms:
        return "frequency: cooldown"
    return None


def give(budget: Budget, rule: str) -> None:
    """Record that an overlay of ``rule`` was given in the current page view."""
    mark = _mark(rule)
    if mark not in budget.given:
        budget.given.append(mark)


def shown(state: VisitorState, day: int, at: int) -> None:
    """Count an overlay's impression (a new one: the caller skips a repeated report) on
    ``day`` at ``at`` (epoch ms)."""
    budget = state.budget
    if budget is None:
        budget = state.budget = Budget()
    budget.session += 1
    if day > budget.day:
        budget.day, budget.today = day, 0
    if day == budget.day:
        budget.today += 1
    budget.last_shown = max(budget.last_shown, at)
