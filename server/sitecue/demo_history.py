"""The demo's made-up traffic history: four weeks of visits to every site of the demo, the
same on every run (a fixed seed), written through the store's writer like live traffic, so
the dashboard's reports have something to show for every rule from the first minute.

Each day brings some visitors (fewer at weekends); each visitor gets one decision in which
every rule either shows (a variant drawn by the configured weights, the control too) or says
why not, as live decisions do; what shows is seen, sometimes clicked or dismissed; and some
visitors then reach a goal (a purchase carries a value, for revenue), at the rate of the
best variant they saw of a rule with that goal. Each variant has its own fixed rate, so an
experiment has something to find.

Only the demo's own config asks for it (it holds the file named by ``MARKER``), and only a
fresh store gets it: an operator's config directory, or a store with traffic, never does.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from .decide import Verdict
from .rules import CompiledRule, CompiledSite
from .store import DAY_MS, DecisionQuery, DecisionRecord, EventRecord, Store

__all__ = ["DAYS", "MARKER", "history", "seed_history"]

DAYS = 28
SEED = 17
VISITORS_PER_DAY = 120
EXPOSED = 0.6  # the share of visitors to whom a rule shows (its conditions hold)
CLICK, DISMISS = 0.12, 0.08
MARKER = "demo-history.txt"  # in the config directory: the demo's own, which asks for history
_ID_PREFIX = "5eed0017"  # decision ids as ids.record_id makes them, this prefix marks the demo's


def _rates(rule: CompiledRule, rng: random.Random) -> dict[str, float]:
    """A conversion rate per variant: the control at the rule's base rate, each variant a
    little above it, by a fixed amount of its own."""
    base = rng.uniform(0.03, 0.08)
    return {
        v.id: base if v.widget is None else base * rng.uniform(1.05, 1.6) for v in rule.variants
    }


def _feedback(about: tuple[str, str, str, str, str], kind: str, at: int) -> EventRecord:
    """Feedback on a decision: ``about`` is (site, visitor, rule, variant, decision id)."""
    site, visitor, rule, variant, decision = about
    return EventRecord(site, visitor, kind, at, rule=rule, variant=variant, decision=decision)


def _reason(rule: CompiledRule) -> str:
    """Why the rule did not show: its first condition, as decide would say it."""
    return f"condition: {rule.clauses[0][0]}" if rule.clauses else "cap: 1 per session"


def history(
    site: CompiledSite, until_day: int, days: int = DAYS
) -> list[tuple[list[EventRecord], list[DecisionRecord]]]:
    """The records of ``site``'s made-up traffic on the ``days`` UTC days before
    ``until_day`` (a day number, epoch ms // DAY_MS), one (events, decisions) batch per
    day, oldest first. The same site and days give the same records."""
    rng = random.Random(f"{SEED}:{site.name}")
    rates = {rule.id: _rates(rule, rng) for rule in site.rules}
    batches = []
    count = 0
    for day in range(until_day - days, until_day):
        weekend = (day + 3) % 7 >= 5  # day 0 (1970-01-01) was a Thursday
        visitors = round(VISITORS_PER_DAY * (0.7 if weekend else 1.0) * rng.uniform(0.85, 1.15))
        events: list[EventRecord] = []
        decisions: list[DecisionRecord] = []
        for _ in range(visitors):
            visitor = f"demo-{rng.getrandbits(64):016x}"
            at = day * DAY_MS + rng.randrange(DAY_MS - 4 * 3600_000)  # the goal on the day
            decision = f"{at:011x}-{_ID_PREFIX}-{count:x}"
            count += 1
            verdicts: list[Verdict] = []
            goals: dict[str, float] = {}
            for rule in site.rules:
                if rng.random() >= EXPOSED:
                    verdicts.append(Verdict(rule.id, False, reason=_reason(rule)))
                    continue
                weights = [v.weight for v in rule.variants]
                variant = rng.choices(rule.variants, weights)[0]
                verdicts.append(Verdict(rule.id, True, variant=variant.id))
                # Feedback names the decision id issued for this rule (one per rule shown).
                about = (site.name, visitor, rule.id, variant.id, f"{decision}.{len(verdicts)}")
                if variant.widget is not None:
                    events.append(_feedback(about, "impression", at + 1_000))
                    if rng.random() < CLICK:
                        events.append(_feedback(about, "click", at + 20_000))
                    elif rng.random() < DISMISS:
                        events.append(_feedback(about, "dismiss", at + 9_000))
                rate = rates[rule.id][variant.id]
                if rule.rule.goal:  # reached at the rate of the best variant seen
                    goals[rule.rule.goal] = max(rate, goals.get(rule.rule.goal, 0.0))
                elif rng.random() < rate:
                    events.append(_feedback(about, "convert", at + 60_000))
            # One goal event converts every rule whose goal it is.
            for goal, rate in sorted(goals.items()):
                if rng.random() >= rate:
                    continue
                value = round(rng.uniform(19, 180), 2) if goal == "purchase" else None
                later = at + rng.randrange(60_000, 3 * 3600_000)
                events.append(
                    EventRecord(site.name, visitor, "event", later, name=goal, value=value)
                )
            decisions.append(DecisionRecord(decision, site.name, visitor, at, _url(site), verdicts))
        batches.append((events, decisions))
    return batches


def _url(site: CompiledSite) -> str:
    """The page the visits were to: the site's first origin (with the demo's own among
    them, a site may list none of its own)."""
    return min(site.origins, default="http://localhost") + "/"


async def _fresh(store: Store, sites: Mapping[str, CompiledSite]) -> bool:
    """Has the store never held traffic of these sites? No decision of any of them, and no
    rollup of any rule (rollups outlive the decisions retention expires, so a store whose
    decisions all expired is not taken for a fresh one)."""
    for name, site in sites.items():
        if await store.decisions(DecisionQuery(site=name, limit=1)):
            return False
        for rule in site.rules:
            if await store.results(name, rule.id):
                return False
    return True


async def seed_history(store: Store, sites: Mapping[str, CompiledSite], now_ms: int) -> list[str]:
    """Write every site's history up to yesterday into a fresh store (see ``_fresh``); the
    names of the sites written. A store with any traffic of any site is left as it is: a
    demo started again, or one whose retention emptied a site, gets no second history."""
    if not await _fresh(store, sites):
        return []
    seeded = []
    for name, site in sorted(sites.items()):
        for events, decisions in history(site, now_ms // DAY_MS):
            await store.write(events, decisions)
        seeded.append(name)
    return seeded
