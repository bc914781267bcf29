"""Site configs: every mistake reported with its JSON path, and the committed schema current."""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mistakes_site import TEN_PROBLEMS, write_ten_mistakes
from sitecue.config import json_schema, parse_site
from sitecue.errors import ConfigError
from sitecue.rules import compile_file, load_sites
from sites import CONFIG_DIR, NEWS, rule, site


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        site(raw)
    return [str(p) for p in caught.value.problems]


def with_changes(**changes: Any) -> dict[str, Any]:
    return {**NEWS, **changes}


VALUED = {**NEWS["triggers"], "purchase": {"on": "custom", "value": "number"}}


# One mistake each, and the start of what is said of it.
MISTAKES: list[tuple[dict[str, Any], str]] = [
    (
        {"origins": ["news.example"]},
        "$.origins[0]: expected an origin such as https://news.example",
    ),
    ({"consent": "maybe"}, "$.consent: expected one of implied, required, none, got 'maybe'"),
    ({"timezone": "Mars/Olympus"}, "$.timezone: expected an IANA time zone"),
    (
        {"triggers": {"t": {"on": "hover"}}},
        "$.triggers.t.on: expected one of pageview, click, change, visible, video, scroll, time,"
        " inactivity, exit, custom, got 'hover'",
    ),
    ({"triggers": {"t": {"on": "click"}}}, "$.triggers.t.selector: expected a CSS selector"),
    (
        {"widgets": {"w": {"template": "widgets/nope.html"}}},
        "$.widgets.w.template: expected a template file",
    ),
    (
        {"rules": [rule(placement={"type": "popup"})]},
        "$.rules[0].placement.type: expected one of modal, slide-in, bar, inline, replace,"
        " got 'popup'",
    ),
    (
        {"rules": [rule(placement={"type": "replace"})]},
        "$.rules[0].placement.selector: expected a CSS selector",
    ),
    (
        {"rules": [rule(when={"triggers.nope.7d": 1})]},
        '$.rules[0].when["triggers.nope.7d"]: expected triggers.<declared trigger>',
    ),
    (
        {"rules": [rule(namespace={"id": "hero", "range": [0.5, 0.2]})]},
        "$.rules[0].namespace.range: expected [start, end] with start below end",
    ),
    (
        {"rules": [rule(coverage=1.5)]},
        "$.rules[0].coverage: expected `float` <= 1",
    ),
    (
        {"triggers": {"deep": {"on": "scroll"}}},
        "$.triggers.deep.percent: expected a scroll depth from 1 to 100 for a scroll trigger",
    ),
    (
        {"triggers": {"idle": {"on": "inactivity", "seconds": 0}}},
        "$.triggers.idle.seconds: expected `int` >= 1",
    ),
    (
        {"triggers": {"stay": {"on": "time", "seconds": 30, "selector": "#x"}}},
        "$.triggers.stay.selector: expected no selector for a time trigger",
    ),
    (
        {"attributes": {"tier": "string"}, "rules": [rule(when={"attributes.tierr": "x"})]},
        '$.rules[0].when["attributes.tierr"]: expected attributes.<declared attribute> (tier)',
    ),
    (
        {"attributes": {"tier": "colour"}},
        "$.attributes.tier: expected one of boolean, number, string, got 'colour'",
    ),
    (
        {
            "page_data": {"cart_value": "number"},
            "rules": [rule(when={"page.data.cart_vaule": 1})],
        },
        '$.rules[0].when["page.data.cart_vaule"]: expected page.data.<declared page data>'
        " (cart_value)",
    ),
    (
        {"rules": [rule(when={"page.data.cart_value": 1})]},
        '$.rules[0].when["page.data.cart_value"]: expected page.data.<declared page data>'
        " (none are declared)",
    ),
    (
        {"page_data": {"cart.value": "number"}},
        '$.page_data["cart.value"]: expected an identifier',
    ),
    (
        {"page_data": {"cart_value": "money"}},
        "$.page_data.cart_value: expected one of boolean, number, string, got 'money'",
    ),
    (
        {
            "triggers": {**VALUED, "add_to_cart": {"on": "click", "selector": ".add"}},
            "rules": [rule(when={"sums.add_to_cart.30d": {"$gt": 100}})],
        },
        '$.rules[0].when["sums.add_to_cart.30d"]: expected sums.<trigger declaring "value":'
        ' "number">.<window> (purchase)',
    ),
    (
        {"triggers": VALUED, "rules": [rule(when={"sums.purchse.30d": {"$gt": 100}})]},
        '$.rules[0].when["sums.purchse.30d"]: expected sums.<trigger declaring',
    ),
    (
        {"triggers": VALUED, "rules": [rule(when={"sums.purchase": {"$gt": 100}})]},
        '$.rules[0].when["sums.purchase"]: expected sums.<trigger declaring',
    ),
    (
        {"triggers": VALUED, "rules": [rule(when={"sums.purchase.month": {"$gt": 100}})]},
        '$.rules[0].when["sums.purchase.month"]: expected a window',
    ),
    (
        {"triggers": {"add": {"on": "click", "selector": ".add", "value": "number"}}},
        "$.triggers.add.value: expected no value for a click trigger: only a custom event",
    ),
    (
        {"triggers": {"purchase": {"on": "custom", "value": "text"}}},
        "$.triggers.purchase.value: expected one of number, got 'text'",
    ),
    (
        {"rules": [rule(when={"triggers.paywall_view.week": 1})]},
        '$.rules[0].when["triggers.paywall_view.week"]: expected a window',
    ),
    (
        {"rules": [rule(when={"page.path": {"$regex": "(("}})]},
        '$.rules[0].when["page.path"].$regex: expected a valid regular expression',
    ),
    (
        {"rules": [rule(when={"page.path": {"$regx": "a"}})]},
        '$.rules[0].when["page.path"].$regx: expected a known operator',
    ),
    (
        {"rules": [rule(when={"pages.path": "/"})]},
        '$.rules[0].when["pages.path"]: expected a path starting with one of page',
    ),
    (
        {"rules": [rule(variants=[{"id": "a", "weight": 60, "widget": "faq"}])]},
        "$.rules[0].variants: expected weights adding up to 100, they add up to 60",
    ),
    (
        {"rules": [rule(variants=[{"id": "a", "weight": 100, "widget": "nope"}])]},
        "$.rules[0].variants[0].widget: expected a declared widget or null (faq), got 'nope'",
    ),
    (
        {"rules": [rule(), rule()]},
        "$.rules[1].id: expected a unique rule id, 'paywall-faq' is used twice",
    ),
    ({"rules": [rule(limit={"per": "week"})]}, "$.rules[0].limit.per: expected a window"),
    (
        {"rules": [rule(extra=1)]},
        "$.rules[0].extra: unknown field; expected one of id, placement, variants, when,",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), MISTAKES)
def test_each_mistake_names_its_path(changes: dict[str, Any], expected: str) -> None:
    found = problems_of(with_changes(**changes))
    assert any(p.startswith(expected) for p in found), found


def test_every_mistake_is_reported_not_just_the_first() -> None:
    found = problems_of(
        with_changes(
            origins=["bad"],
            triggers={"a": {"on": "hover"}, "b": {"on": "visible"}},
            rules=[rule(placement={"type": "popup"}), rule(id="two", variants=[])],
        )
    )
    assert [p.split(":")[0] for p in found] == [
        "$.origins[0]",
        "$.triggers.a.on",
        "$.rules[0].placement.type",
        "$.rules[1].variants",
    ]


@pytest.mark.parametrize(("changes", "expected"), MISTAKES)
def test_a_file_with_one_mistake_is_still_compiled_and_says_only_it(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    """What is wrong stands in as a default and the rest is compiled, never crashing on the
    stand-in; the mistake is said first (structure before meaning)."""
    shutil.copytree(CONFIG_DIR / "widgets", tmp_path / "widgets")
    (tmp_path / "sites").mkdir()
    path = tmp_path / "sites" / "news.json"
    path.write_text(json.dumps(with_changes(**changes)))
    with pytest.raises(ConfigError) as caught:
        compile_file(path, tmp_path)
    found = [str(p) for p in caught.value.problems]
    assert found[0].startswith(expected), found


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def test_wrong_values_anywhere_are_refused_never_crash_the_check(tmp_path: Path) -> None:
    """Seeded: 60 copies of the example sites with up to three values anywhere replaced by
    a value of the wrong kind (or taken out). Compiling what stands in for them says what is
    wrong (or nothing, when the new value happens to be right), and never raises anything
    else: the stand-ins are values of their types."""
    shutil.copytree(CONFIG_DIR, tmp_path, ignore=shutil.ignore_patterns("demo"), dirs_exist_ok=True)
    bases = [json.loads(p.read_text()) for p in sorted((CONFIG_DIR / "sites").glob("*.json"))]
    wrong: list[Any] = [None, -1, 1.5, "x", "", [], {}, [1], {"a": 1}, True, "popup", "99d"]
    rng = random.Random(18)
    path = tmp_path / "sites" / "mutant.json"
    for _ in range(60):
        raw = copy.deepcopy(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            *parents, last = rng.choice(list(_leaves(raw)))
            holder = raw
            for step in parents:
                holder = holder[step]
            if isinstance(holder, dict) and rng.random() < 0.1:
                del holder[last]
            else:
                holder[last] = copy.deepcopy(rng.choice(wrong))
        path.write_text(json.dumps(raw))
        try:
            compile_file(path, tmp_path)
        except ConfigError as err:
            assert err.problems


def test_what_is_said_of_a_stand_in_is_left_out(tmp_path: Path) -> None:
    """A widget's data that is not an object stands in as none, with which its template
    cannot render: that is about the stand-in, so only the data's mistake is said (the
    structure names the widget ["subscription-faq"], compiling .subscription-faq)."""
    shutil.copytree(CONFIG_DIR / "widgets", tmp_path / "widgets")
    (tmp_path / "sites").mkdir()
    path = tmp_path / "sites" / "news.json"
    faq = {"template": "widgets/faq.html", "data": 7}
    raw = with_changes(widgets={"subscription-faq": faq}, rules=[])
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        compile_file(path, tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        '$.widgets["subscription-faq"].data: expected `object`, got `int`'
    ]


def test_ten_mistakes_of_every_kind_are_reported_in_one_pass(tmp_path: Path) -> None:
    """Wrong types, an unknown field, bad enums, a missing field, a bad regex and references
    to what is not declared, in the same objects or apart: all ten at once, where they are,
    and none twice. Before, the first run said four of them."""
    path = write_ten_mistakes(tmp_path)
    with pytest.raises(ConfigError) as caught:
        compile_file(path, tmp_path)
    found = [(p.path, p.expected) for p in caught.value.problems]
    assert [at for at, _ in found] == [at for at, _ in TEN_PROBLEMS]
    for (_, said), (_, expected) in zip(found, TEN_PROBLEMS, strict=True):
        assert said.startswith(expected)


def test_a_template_syntax_error_is_reported(tmp_path: Path) -> None:
    (tmp_path / "sites").mkdir()
    (tmp_path / "widgets").mkdir()
    (tmp_path / "widgets" / "bad.html").write_text("{% if %}")
    raw = with_changes(widgets={"w": {"template": "widgets/bad.html"}}, rules=[])
    (tmp_path / "sites" / "news.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        load_sites(tmp_path)
    (problem,) = caught.value.problems
    assert problem.file.endswith("news.json")
    assert problem.path == "$.widgets.w.template" and "line 1" in problem.expected


def test_invalid_json_says_where(tmp_path: Path) -> None:
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "news.json").write_text('{"site": "news",\n  "origins": [}')
    with pytest.raises(ConfigError) as caught:
        load_sites(tmp_path)
    assert "line 2, column 15" in str(caught.value)


def test_the_example_configs_load() -> None:
    sites = load_sites(CONFIG_DIR)
    assert sorted(sites) == ["news", "shop"]
    assert sites["news"].rules[0].id == "paywall-faq"


def test_committed_schema_is_current() -> None:
    committed = json.loads((CONFIG_DIR / "sitecue.schema.json").read_text())
    assert committed == json_schema(), "run: sitecue schema > config/sitecue.schema.json"


def test_schema_describes_the_rule_fields() -> None:
    rule_schema = json_schema()["$defs"]["Rule"]
    assert {"id", "placement", "variants", "when", "limit", "priority", "schedule"} <= set(
        rule_schema["properties"]
    )
    assert rule_schema["additionalProperties"] is False


def test_schedule_is_read_from_from_and_until() -> None:
    config = parse_site(
        with_changes(
            rules=[rule(schedule={"from": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"})]
        )
    )
    schedule = config.rules[0].schedule
    assert schedule is not None and schedule.starts is not None and schedule.starts.month == 11


def test_a_template_missing_its_data_fails_at_load() -> None:
    found = problems_of(
        with_changes(widgets={"faq": {"template": "widgets/faq.html", "data": {"trial_days": 7}}})
    )
    assert found == [
        "$.widgets.faq.template: expected a template that renders with its data "
        "('price' is undefined)"
    ]


def test_how_many_browsers_a_token_identifies_is_a_checked_setting() -> None:
    assert site().config.identify.browsers_per_token == 3  # the default
    assert site(identify={"browsers_per_token": 1}).config.identify.browsers_per_token == 1
    for value, expected in (
        ({"browsers_per_token": 0}, "$.identify.browsers_per_token: expected `int` >= 1"),
        ({"browsers_per_token": "3"}, "$.identify.browsers_per_token: expected `int`, got"),
        (
            {"browsers": 3},
            "$.identify.browsers: unknown field; expected one of browsers_per_token, refresh",
        ),
    ):
        (problem,) = problems_of(with_changes(identify=value))
        assert problem.startswith(expected)
    described = json_schema()["$defs"]["Identify"]["properties"]["browsers_per_token"]
    assert (described["minimum"], described["default"]) == (1, 3)


def with_form(form: dict[str, Any], **more: Any) -> dict[str, Any]:
    """NEWS with a widget carrying ``form``, rendered by the shared partial alone."""
    widget = {"template": "widgets/_form.html", "form": form}
    return with_changes(widgets={**NEWS["widgets"], "signup": widget}, **more)


EMAIL = {"name": "email", "type": "email", "required": True}


@pytest.mark.parametrize(
    ("fields", "extra", "expected"),
    [
        ([{"name": "e-mail", "type": "email"}], {}, "$.widgets.signup.form.fields[0].name:"
         " expected an identifier of letters, digits and _"),
        ([{"name": "x", "type": "date"}], {},
         "$.widgets.signup.form.fields[0].type: expected one of email, phone,"),
        ([EMAIL, EMAIL], {}, "$.widgets.signup.form.fields[1].name: expected a unique field name"),
        ([{"name": "sc_hp", "type": "text"}], {}, "$.widgets.signup.form.fields[0].name: expected"
         " a name other than sc_hp"),
        ([{"name": "c", "type": "choice"}], {}, "$.widgets.signup.form.fields[0].options:"
         " expected the options of a choice"),
        ([{"name": "c", "type": "choice", "options": ["a", "a"]}], {},
         "$.widgets.signup.form.fields[0].options: expected options listed once each"),
        ([{"name": "c", "type": "choice", "options": []}], {},
         "$.widgets.signup.form.fields[0].options: expected `array` of length >= 1"),
        ([{"name": "t", "type": "text", "options": ["a"]}], {},
         "$.widgets.signup.form.fields[0].options: expected no options for a text field"),
        ([{"name": "t", "type": "text", "multiple": True}], {},
         "$.widgets.signup.form.fields[0].multiple: expected no multiple for a text field"),
        ([{"name": "n", "type": "number", "max_length": 3}], {},
         "$.widgets.signup.form.fields[0].max_length: expected no max_length for a number"),
        ([{"name": "n", "type": "number", "min": 5, "max": 1}], {},
         "$.widgets.signup.form.fields[0].max: expected a max at least min"),
        ([{"name": "t", "type": "text", "max_length": 5000}], {},
         "$.widgets.signup.form.fields[0].max_length: expected `int` <= 1000"),
        ([{"name": "ok", "type": "consent"}], {},
         "$.widgets.signup.form.fields[0].text: expected the exact consent text"),
        ([{"name": "t", "type": "text", "text": "I agree"}], {},
         "$.widgets.signup.form.fields[0].text: expected no text for a text field"),
        ([{"name": "h", "type": "hidden"}], {},
         "$.widgets.signup.form.fields[0].value: expected the value a hidden field sends"),
        ([EMAIL, {"name": "p", "type": "phone", "step": 3}], {},
         "$.widgets.signup.form.fields: expected steps numbered 1, 2, … without gaps, got [1, 3]"),
        ([EMAIL], {"contact": "mail"},
         "$.widgets.signup.form.contact: expected the name of a field, got 'mail'"),
        ([EMAIL, {"name": "ok", "type": "checkbox"}], {"contact": "ok"},
         "$.widgets.signup.form.contact: expected a field of type email, phone, text"),
        ([], {}, "$.widgets.signup.form.fields: expected `array` of length >= 1"),
        ([EMAIL], {"submit": "Go"},
         "$.widgets.signup.form.submit: unknown field; expected one of fields, contact"),
    ],
)  # fmt: skip
def test_each_form_mistake_names_its_path(
    fields: list[dict[str, Any]], extra: dict[str, Any], expected: str
) -> None:
    found = problems_of(with_form({"fields": fields, **extra}))
    assert any(p.startswith(expected) for p in found), found


def test_a_form_field_may_not_take_the_name_of_a_declared_offsite_attribute() -> None:
    """What a visitor types must never pass for what the site's systems said."""
    form = {"fields": [EMAIL, {"name": "tier", "type": "text"}]}
    found = problems_of(with_form(form, attributes={"tier": "string"}))
    assert found == [
        "$.widgets.signup.form.fields[1].name: expected a name that is not a declared offsite"
        " attribute ('tier' is one): what a visitor types must never pass for what the site's"
        " systems said"
    ]


def test_rules_may_read_form_answers_as_attributes_and_only_those_are_kept() -> None:
    form = {"fields": [EMAIL, {"name": "topic", "type": "choice", "options": ["a", "b"]},
                       {"name": "city", "type": "text"}]}  # fmt: skip
    compiled = site(with_form(form, rules=[rule(when={"attributes.topic": "a"})]))
    assert list(compiled.answers) == ["topic"]  # the email and city are read by no rule
    found = problems_of(with_form(form, rules=[rule(when={"attributes.topik": "a"})]))
    assert found == [
        '$.rules[0].when["attributes.topik"]: expected attributes.<declared attribute or form'
        " field> (email, topic, city)"
    ]


def test_a_form_renders_at_load_through_the_shared_partial() -> None:
    compiled = site(with_form({"fields": [EMAIL]}, rules=[rule(variants=[
        {"id": "f", "weight": 100, "widget": "signup"}])]))  # fmt: skip
    [html] = compiled.rules[0].html
    assert html is not None and 'data-sc-field="email"' in html
    assert compiled.form("paywall-faq", "f") is not None
    assert compiled.form("paywall-faq", "nope") is None


def test_one_field_name_means_one_type_across_forms() -> None:
    other = {"template": "widgets/_form.html", "form": {"fields": [
        {"name": "topic", "type": "text", "max_length": 900}]}}  # fmt: skip
    form = {"fields": [EMAIL, {"name": "topic", "type": "choice", "options": ["a", "b"]}]}
    signup = {"template": "widgets/_form.html", "form": form}
    found = problems_of(with_changes(widgets={**NEWS["widgets"], "other": other, "signup": signup}))
    assert found == ["$.widgets.signup.form.fields[1].type: expected text, as the other form's"
                     " 'topic'"]  # fmt: skip
    # The same type in two forms: the cookie's worst case takes the larger answer.
    longer = {"fields": [{"name": "topic", "type": "text", "max_length": 900}]}
    shorter = {"fields": [{"name": "topic", "type": "text", "max_length": 9}]}
    widgets = {**NEWS["widgets"], "a": {"template": "widgets/_form.html", "form": shorter},
               "b": {"template": "widgets/_form.html", "form": longer}}  # fmt: skip
    compiled = site(with_changes(widgets=widgets, rules=[rule(when={"attributes.topic": "x"})]))
    assert compiled.answers["topic"].max_length == 900


def test_a_widget_with_a_form_needs_a_template_that_renders_it() -> None:
    widgets = {**NEWS["widgets"], "signup": {"template": "widgets/faq.html",
               "data": NEWS["widgets"]["faq"]["data"], "form": {"fields": [EMAIL]}}}  # fmt: skip
    assert problems_of(with_changes(widgets=widgets)) == [
        "$.widgets.signup.template: expected a template that renders the widget's form"
        ' ({% include "widgets/_form.html" %})'
    ]


ONE: dict[str, Any] = {"variants": [{"id": "a", "weight": 100, "widget": "faq"}], "limit": {}}


def test_sums_and_page_data_rules_compile_to_what_they_read() -> None:
    """A sum keeps its trigger's counter (and asks the tag to watch it); a page-data key
    read by a rule is listed for the tag; neither needs state but the sum."""
    compiled = site(
        with_changes(
            triggers=VALUED,
            page_data={"cart_value": "number", "category": "string", "logged_in": "boolean"},
            rules=[
                rule(id="big-spender", when={"sums.purchase.30d": {"$gt": 100}}, **ONE),
                rule(id="big-cart", when={"page.data.cart_value": {"$gt": 500}}, **ONE),
            ],
        )
    )
    assert compiled.sums == {"purchase": frozenset({"30d"})}
    assert compiled.windows["purchase"] == frozenset({"30d"})
    assert compiled.trigger_days["purchase"] == 30
    assert "purchase" in [t.name for t in compiled.watched]
    assert compiled.data_keys == ("cart_value",)
    needs = {r.id: r.needs_state for r in compiled.rules}
    assert needs == {"big-spender": True, "big-cart": False}  # page data is this view's


def test_retention_is_a_checked_setting_of_days_or_hours_at_least_one_day() -> None:
    kept = site().config.retention
    assert (kept.decisions, kept.events) == ("90d", "400d")  # the defaults
    kept = site(retention={"decisions": "24h", "events": "2d"}).config.retention
    assert (kept.decisions, kept.events) == ("24h", "2d")
    meaning = "expected a duration of at least a day, such as 90d or 36h"
    for value, expected in (
        ({"decisions": "12h"}, f"$.retention.decisions: {meaning}"),
        ({"decisions": "0d"}, f"$.retention.decisions: {meaning}"),
        ({"events": "1y"}, f"$.retention.events: {meaning}"),
        ({"events": 400}, "$.retention.events: expected `str`, got `int`"),
        ({"raw": "9d"}, "$.retention.raw: unknown field; expected one of decisions, events"),
    ):
        (problem,) = problems_of(with_changes(retention=value))
        assert problem == expected
