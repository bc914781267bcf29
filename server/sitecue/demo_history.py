"""The demo's made-up traffic history: four weeks of visits to every site of the demo, the
same on every run (a fixed seed), written through the store's writer like live traffic, so
the dashboard's reports have something to show for every rule from the first minute.

Each day brings some visitors (fewer at weekends); each visitor gets one decision in which
every rule either shows (a variant drawn by the configured weights, the control too) or says
why not, as live decisions do; what shows is seen, sometimes clicked or dismissed; and some
visitors then reach a goal (a purchase carries a value, for revenue), at the rate of the
best variant they saw of a rule with that goal. Each variant has its own fixed rate, so an
experiment has something to find.

A site with a catalogue also gets its shoppers: each visitor has a product in mind, views it
and a few others (mostly of its category), and a visitor who buys buys a basket (events with
the products, the purchase valued at their prices). The pattern recommendations must find is
planted: most who buy one of ``PLANTED``'s products buy its partner with it (the stove and
its gas), while everything else is noise that rarely repeats.

Only the demo's own config asks for it (it holds the file named by ``MARKER``), and only a
fresh store gets it: an operator's config directory, or a store with traffic, never does.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from .decide import Verdict
from .rules import CompiledRule, CompiledSite
from .store import DAY_MS, DecisionQuery, DecisionRecord, EventRecord, Product, Store

__all__ = ["DAYS", "MARKER", "PLANTED", "history", "seed_history"]

DAYS = 28
SEED = 17
VISITORS_PER_DAY = 120
EXPOSED = 0.6  # the share of visitors to whom a rule shows (its conditions hold)
CLICK, DISMISS = 0.12, 0.08
MARKER = "demo-history.txt"  # in the config directory: the demo's own, which asks for history
_ID_PREFIX = "5eed0017"  # decision ids as ids.record_id makes them, this prefix marks the demo's
# The demo catalogue's products most buyers buy together: product -> its partner.
PLANTED = {
    "stove-compact-gas": "gas-canister-230",
    "tent-trail-2p": "tent-footprint-2p",
    "boots-ridge-gtx": "socks-merino-hiking",
    "headlamp-400": "batteries-aaa-4",
}
BROWSE = 0.6  # the share of visitors who view products (every buyer does)
ANCHORED = 0.5  # the share of shoppers who have one of PLANTED's products in mind
WITH_PARTNER = 0.85  # ... and who buy its partner with it
NOISE = 0.3  # a basket's chance of one more product, any of them


class _Shop:
    """A catalogue's shoppers, drawn from a random stream of their own (the rules' traffic
    is the same with or without them)."""

    def __init__(self, site: str, products: Sequence[Product]) -> None:
        self.rng = random.Random(f"{SEED}:{site}:products")
        self.stocked = [p for p in products if p.in_stock]
        self.by_id = {p.id: p for p in products}
        self.anchors = [a for a, b in PLANTED.items() if {a, b} <= self.by_id.keys()]

    def shopper(self) -> tuple[list[str], list[str]]:
        """One visitor's product views (oldest first) and the basket they buy, if they buy."""
        rng = self.rng
        if self.anchors and rng.random() < ANCHORED:
            wanted = self.by_id[rng.choice(self.anchors)]
        else:
            wanted = rng.choice(self.stocked)
        basket = [wanted.id]
        partner = PLANTED.get(wanted.id)
        if partner is not None and partner in self.by_id and rng.random() < WITH_PARTNER:
            basket.append(partner)
        if rng.random() < NOISE:
            extra = rng.choice(self.stocked).id
            basket += [extra] if extra not in basket else []
        alike = [p for p in self.stocked if p.category == wanted.category]
        views = [wanted.id]
        for _ in range(rng.randint(1, 3)):
            views.append(rng.choice(alike if rng.random() < 0.6 else self.stocked).id)
        views += [b for b in basket if b not in views]
        return views, basket

    def value(self, basket: list[str]) -> float:
        """What a basket costs."""
        return round(sum(self.by_id[b].price or 0.0 for b in basket), 2)


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
    site: CompiledSite, until_day: int, days: int = DAYS, products: Sequence[Product] = ()
) -> list[tuple[list[EventRecord], list[DecisionRecord]]]:
    """The records of ``site``'s made-up traffic on the ``days`` UTC days before
    ``until_day`` (a day number, epoch ms // DAY_MS), one (events, decisions) batch per
    day, oldest first; with its catalogue's ``products`` when it has a ``catalog``, their
    views, carts and purchases too. The same site, days and products give the same records."""
    rng = random.Random(f"{SEED}:{site.name}")
    catalog = site.config.catalog
    shop = _Shop(site.name, products) if catalog is not None and products else None
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
            views, basket = shop.shopper() if shop is not None else ([], [])
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
            bought = False
            for goal, rate in sorted(goals.items()):
                if rng.random() >= rate:
                    continue
                value = round(rng.uniform(19, 180), 2) if goal == "purchase" else None
                later = at + rng.randrange(60_000, 3 * 3600_000)
                lines = None
                if shop is not None and catalog is not None and goal == catalog.purchase:
                    bought, lines, value = True, basket, shop.value(basket)
                    events += _carts(site.name, visitor, catalog.cart, basket, later)
                events.append(
                    EventRecord(
                        site.name, visitor, "event", later, name=goal, value=value,
                        products=lines,
                    )
                )  # fmt: skip
            if shop is not None and (bought or shop.rng.random() < BROWSE):
                events += [
                    EventRecord(site.name, visitor, "product_view", at + 5_000 * i, products=[v])
                    for i, v in enumerate(views)
                ]
            decisions.append(DecisionRecord(decision, site.name, visitor, at, _url(site), verdicts))
        batches.append((events, decisions))
    return batches


def _carts(
    site: str, visitor: str, cart: str | None, basket: list[str], bought: int
) -> list[EventRecord]:
    """The basket's add-to-cart events, the seconds before its purchase at ``bought``."""
    if cart is None:
        return []
    return [
        EventRecord(site, visitor, "trigger", bought - 1_000 * (len(basket) - i), name=cart,
                    products=[product])
        for i, product in enumerate(basket)
    ]  # fmt: skip


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


async def seed_history(
    store: Store,
    sites: Mapping[str, CompiledSite],
    now_ms: int,
    catalogues: Mapping[str, Sequence[Product]] | None = None,
) -> list[str]:
    """Write every site's history up to yesterday into a fresh store (see ``_fresh``), with
    the shoppers of the sites whose ``catalogues`` are given; the names of the sites written.
    A store with any traffic of any site is left as it is: a demo started again, or one
    whose retention emptied a site, gets no second history."""
    if not await _fresh(store, sites):
        return []
    seeded = []
    for name, site in sorted(sites.items()):
        products = (catalogues or {}).get(name, ())
        for events, decisions in history(site, now_ms // DAY_MS, products=products):
            await store.write(events, decisions)
        seeded.append(name)
    return seeded
