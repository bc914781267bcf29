"""The global holdout: a stable share of visitors kept out of every campaign.

``"holdout": 0.05`` keeps 5% of a site's browsers from seeing any rule, so that the
conversions of those visitors against everyone else's measure the lift of all the site's
personalisation together (see :mod:`sitecue.api.holdout`). A browser's place is a hash of
its visitor id (``sc_vid``) with a seed of the holdout's own, so it stays put from page to
page without a byte of state, and is independent of every rule's variant assignment. The
browser, not the person: an identification does not move anyone in or out mid-measurement.

A held-out visitor is decided as everyone else (conditions, caps, slots and budget all
apply), and where a rule would have been given, the log says ``holdout`` instead, with the
variant they would have seen: the records show which campaigns they were kept from.
"""

from __future__ import annotations

from .bucketing import fnv_hash

__all__ = ["HOLDOUT", "held_out"]

HOLDOUT = "holdout"
"""The reason a held-out visitor's verdict gives, where the rule would have shown."""


def held_out(site: str, share: float, visitor: str) -> bool:
    """Is the browser ``visitor`` of ``site`` in its holdout of ``share`` (0 to 1)? A
    visitor without an id (no consent where the site asks) never is: nothing about them is
    recorded, so they could not be counted anyway."""
    if not share or not visitor:
        return False
    # Rule ids (a rule's bucketing seed) never contain "/": this seed is nobody else's.
    n = fnv_hash(f"__sitecue/holdout/{site}", visitor, 2)
    return n is not None and n < share
