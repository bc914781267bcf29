"""Verdicts as the decision log stores them: compactly, keeping what "why did this visitor
see that?" needs.

A decision's verdicts name every rule of the site, but most say only that the rule's
conditions did not hold (``condition: page.path``): on a site of a few rules, that is most of
what a decision record weighs. They are not stored. What is kept: the shown rules (matched,
with their variant) and every rule kept back for another reason, with why (a cap, the
schedule, the holdout with its variant, the overlay budget, a rule that won its slot,
consent). A rule without a verdict in a record did not meet its conditions (or did not
exist yet); the dashboard reads it so (``not matched: conditions``). Records stored before,
with a verdict for every rule, read as they were.

The log's filters on ``rule``, ``variant`` and ``matched`` keep their meaning over both kinds of
record: ``matched=false`` finds where a rule was not shown (its verdict says why, or it has
none), see :func:`verdict_filter`.
"""

from __future__ import annotations

import msgspec

__all__ = ["Verdict", "VerdictFilter", "stored", "verdict_filter"]


class Verdict(msgspec.Struct, frozen=True, omit_defaults=True):
    """One rule's fate in one decision: shown (with its variant) or why not."""

    rule: str
    matched: bool
    variant: str | None = None
    reason: str | None = None


CONDITION = "condition: "  # how decide() says a rule's conditions did not hold


def stored(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts worth storing: all but those of rules whose conditions did not hold."""
    return [v for v in verdicts if v.matched or not (v.reason or "").startswith(CONDITION)]


# What one stored verdict of a qualifying record must hold, and whether a record qualifies by
# having one (False) or by having none (True).
VerdictFilter = tuple[dict[str, str | bool], bool]


def verdict_filter(rule: str | None, variant: str | None, matched: bool | None) -> VerdictFilter:
    """How the log's verdict filters read the stored verdicts.

    A record qualifies when one verdict has every field given, except for ``matched=false``
    without a ``variant``: a rule not shown may have no verdict, so that filter asks for the
    records where no verdict shows it (``rule``: the rule was not shown; without ``rule``:
    nothing was shown). With a ``variant``, ``matched=false`` finds the verdicts that name a
    variant but did not show it (the holdout's), which are always stored.

    >>> verdict_filter("newsletter", None, False)
    ({'rule': 'newsletter', 'matched': True}, True)
    """
    if matched is False and variant is None:
        return ({"rule": rule, "matched": True} if rule is not None else {"matched": True}), True
    fields = (("rule", rule), ("variant", variant), ("matched", matched))
    return {name: value for name, value in fields if value is not None}, False
