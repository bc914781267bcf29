"""How big a site's state cookie can grow: the figure ``sitecue check`` prints is what the
codec would send, it bounds real heavy use, and past the cap the dismissals still fit."""

from __future__ import annotations

import msgspec

from sitecue.config import Catalog
from sitecue.products import MAX_BOUGHT
from sitecue.rules import compile_site, load_sites
from sitecue.state import MAX_COOKIE_BYTES, MAX_SUM, StateCodec, sent_size
from sitecue.state_size import state_size, warnings, worst_state
from sites import CONFIG_DIR, NEWS, rule, site
from test_state import heavy_year


def test_the_worst_case_is_what_the_codec_sends() -> None:
    codec = StateCodec(["size-test-secret-0000"])
    for name, compiled in load_sites(CONFIG_DIR).items():
        size = state_size(compiled)
        assert size.floor < size.worst <= MAX_COOKIE_BYTES, name  # the demo sites fit
        assert len(f"sc_s={codec.encode(worst_state(compiled), name)}") == size.worst
        assert len(f"sc_s={codec.encode(heavy_year(compiled), name)}") < size.worst
        assert warnings(compiled) == []
    assert not codec.evicted


def test_past_the_cap_the_worst_case_loses_old_days_and_keeps_every_dismissal() -> None:
    windows = {f"triggers.paywall_view.{w}": {"$gte": 0} for w in ("1d", "90d", "total")}
    heavy = site(rules=[rule(id=f"rule-{i}", when=windows) for i in range(3)])
    size = state_size(heavy)
    assert size.floor < MAX_COOKIE_BYTES < size.worst
    (warning,) = warnings(heavy)
    assert f"can reach {size.worst} bytes at worst" in warning
    codec = StateCodec(["size-test-secret-0000"])
    state = worst_state(heavy)
    kept = codec.decode(codec.encode(state, "news"), "", "news")
    assert kept is not None and all(kept.rules[f"rule-{i}"].dismissed for i in range(3))
    days = kept.triggers["paywall_view"].days
    assert 0 < len(days) < 90 and max(days) == max(worst_state(heavy).triggers["paywall_view"].days)
    assert set(k for _, k in codec.evicted) == {"day bucket"}


def test_the_worst_case_counts_the_form_answers_rules_read_at_their_largest() -> None:
    """A text answer of its max_length in 3-byte characters, every option of a multiple
    choice: what a form can put in the cookie is bounded by its definition."""
    form = {
        "fields": [
            {"name": "email", "type": "email", "required": True},
            {"name": "note", "type": "text", "max_length": 100},
            {"name": "topics", "type": "choice", "options": ["a" * 20, "b" * 20], "multiple": True},
        ]
    }
    widgets = {**NEWS["widgets"], "signup": {"template": "widgets/_form.html", "form": form}}
    reads = {"attributes.note": {"$exists": True}, "attributes.topics": "a"}
    plain = site(widgets=widgets, rules=[rule()])
    reading = site(widgets=widgets, rules=[rule(when={**rule()["when"], **reads})])
    assert set(reading.answers) == {"note", "topics"}
    grown = state_size(reading).worst - state_size(plain).worst
    assert grown >= (300 + 2 * 20) * 4 // 3  # sealed and base64: a third more
    codec = StateCodec(["size-test-secret-0000"])
    assert len(f"sc_s={codec.encode(worst_state(reading), 'news')}") <= max(
        state_size(reading).worst, MAX_COOKIE_BYTES
    )
    assert worst_state(reading).answers["note"] == "\uffff" * 100
    assert state_size(reading).floor == state_size(plain).floor  # answers go before dismissals


def test_the_worst_case_counts_a_sum_beside_every_day_count_of_a_summed_trigger() -> None:
    triggers = {**NEWS["triggers"], "purchase": {"on": "custom", "value": "number"}}
    counting = site(triggers=triggers, rules=[rule(when={"triggers.purchase.30d": {"$gt": 1}})])
    summing = site(triggers=triggers, rules=[rule(when={"sums.purchase.30d": {"$gt": 100}})])
    state = worst_state(summing)
    assert set(state.sums["purchase"].days) == set(state.triggers["purchase"].days)
    assert len(state.sums["purchase"].days) == 30
    grown = state_size(summing).worst - state_size(counting).worst
    assert grown >= 30 * (5 + 5) * 4 // 3  # a day and its sum each, sealed and base64
    codec = StateCodec(["size-test-secret-0000"])
    assert len(f"sc_s={codec.encode(state, 'news')}") == state_size(summing).worst
    assert state_size(summing).floor == state_size(counting).floor  # sums go before dismissals


def test_the_worst_case_counts_the_server_side_sums_of_a_summed_trigger() -> None:
    """An identified person's server-side sums sit in the snapshot beside their counts: one
    at MAX_SUM per window some rule sums (none for ``session``)."""
    triggers = {**NEWS["triggers"], "purchase": {"on": "custom", "value": "number"}}
    summing = site(triggers=triggers, rules=[rule(when={"sums.purchase.90d": {"$gt": 2000}})])
    state = worst_state(summing)
    assert state.snapshot is not None
    assert state.snapshot.sums == {"purchase": {"90d": MAX_SUM}}
    assert state.snapshot.counts["purchase"] == {"90d": 2**32 - 1}
    assert sent_size(state) == state_size(summing).worst
    without = msgspec.structs.replace(state.snapshot, sums={})
    packed = len(msgspec.msgpack.encode(state.snapshot)) - len(msgspec.msgpack.encode(without))
    # {purchase: {90d: sum}} in place of an empty map: 1 + (1 + 8) + 1 + (1 + 3) + 9 - 1
    assert packed == 23
    state.snapshot = without
    # In base64: a third more, 30 or 31 characters as the whole cookie's length rounds.
    assert state_size(summing).worst - sent_size(state) in (30, 31)


def test_the_worst_case_holds_every_goal_some_rule_stops_after_and_the_budget() -> None:
    shop = load_sites(CONFIG_DIR)["shop"]
    assert worst_state(shop).goals == {"purchase": 2**53}  # the demo's offers stop after it
    assert worst_state(shop).budget is None  # no frequency budget: nothing for one
    plain = site(rules=[rule()])
    stopping = site(rules=[rule(limit={"stop_after": ["goal"]})])
    assert state_size(stopping).worst > state_size(plain).worst
    assert state_size(stopping).floor > state_size(plain).floor  # a goal outlives dismissals
    budgeted = site(
        rules=[rule(placement={"type": "modal"})], frequency={"per_view": 3, "per_session": 2}
    )
    budget = worst_state(budgeted).budget
    assert budget is not None and len(budget.given) == 1  # one overlay rule: one at most
    codec = StateCodec(["a-secret-of-some-length"])
    state = worst_state(budgeted)
    state.visitor = "v" * 22
    assert len(f"sc_s={codec.encode(state, 'news')}") == state_size(budgeted).worst


def test_the_worst_case_holds_the_products_a_catalog_keeps() -> None:
    """Where the site has a catalog: ``catalog.recent`` views and 16 purchases of this
    browser's and 16 of the verified person's, 6 bytes each; all evicted before any
    dismissal, so the floor does not move. The figures of issue 19's closing note."""
    plain = site()
    sizes = {}
    for recent in (8, 20):
        shop = site(catalog={"recent": recent, "purchase": "purchase"})
        products = worst_state(shop).products
        assert products is not None
        assert (len(products.viewed), len(products.bought), len(products.server)) == (
            6 * recent, 6 * MAX_BOUGHT, 6 * MAX_BOUGHT,
        )  # fmt: skip
        assert state_size(shop).floor == state_size(plain).floor
        sizes[recent] = state_size(shop).worst
    assert state_size(plain).worst == 561
    assert sizes == {8: 889, 20: 985}  # 328 and 424 bytes more for the products
    # The demo shop as configured (its offers, two rows of recommendations, 4 recent views)
    # fits under the cap at its worst; with 8 views it would not (the oldest go first).
    demo = load_sites(CONFIG_DIR)["shop"]
    assert state_size(demo).worst <= MAX_COOKIE_BYTES  # 1,533 B
    config = msgspec.structs.replace(demo.config, catalog=Catalog(recent=8, purchase="purchase"))
    assert state_size(compile_site(config, CONFIG_DIR)).worst > MAX_COOKIE_BYTES
