"""Personal widgets: rendered per visitor at decide time with the compiled template (fixed
ones still once at load), with recommendations, verified attributes and this browser's
answers; checked at load with empty and full sample data; everything rendered as text, never
a javascript: link, and no way to Python internals."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from admin_keys import new_key
from forms_site import FORMS, FORMS_SITE, write_config
from recommenders import ListRecommender, Pick
from sitecue import personal, preview
from sitecue.app import build_app
from sitecue.catalog import product_key
from sitecue.cli import main
from sitecue.config import parse_site
from sitecue.decide import Outcome, decide
from sitecue.errors import ConfigError
from sitecue.personal import NONE_TO_SHOW, NOT_LOADED, safe_link, split_cards
from sitecue.protocol import DecideRequest, Page
from sitecue.rules import CompiledSite, compile_site
from sitecue.settings import Settings
from sitecue.state import Products, VisitorState
from sitecue.state_size import state_size
from sitecue.store.catalog import Product
from sitecue.widgets import Templates
from sites import CONFIG_DIR

NOW = int(datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp() * 1000)
KEY = b"test-decision-key"
SHOP = "https://shop.example"
GREETING = '<p class="hi">Hello {{ attributes.first_name or answers.name or "there" }}!</p>'

SITE: dict[str, Any] = {
    "site": "shop",
    "origins": [SHOP],
    "timezone": "UTC",
    "attributes": {"first_name": "string", "tier": "string"},
    "catalog": {"fields": {"brand": "string"}},
    "widgets": {
        "fixed": {
            "template": "widgets/offer.html",
            "data": {"title": "T", "text": "x", "code": "C"},
        },
        "greeting": {"template": "widgets/greeting.html"},
        "survey": {
            "template": "widgets/survey.html",
            "data": {"button": "Send", "success": "Thanks"},
            "form": {
                "fields": [
                    {"name": "name", "type": "text", "label": "First name"},
                    {"name": "city", "type": "text", "label": "City"},
                ]
            },
        },
        "together": {
            "template": "widgets/recommendations.html",
            "data": {"title": "Often bought together", "currency": "€"},
            "recommend": {"strategies": ["bought_together", "popular"], "limit": 3},
        },
    },
    "rules": [
        {
            "id": "greet",
            "placement": {"type": "inline", "selector": "#hello"},
            "when": {"page.path": "/hello"},
            "variants": [{"id": "only", "weight": 100, "widget": "greeting"}],
        },
        {
            "id": "recs",
            "placement": {"type": "inline", "selector": "#recs"},
            "when": {"page.path": {"$regex": "^/products/"}},
            "priority": 5,
            "variants": [{"id": "only", "weight": 100, "widget": "together"}],
        },
        {
            "id": "fallback",
            "placement": {"type": "inline", "selector": "#recs"},
            "when": {"page.path": {"$regex": "^/products/"}},
            "variants": [{"id": "only", "weight": 100, "widget": "fixed"}],
        },
        {
            "id": "ask",
            "placement": {"type": "modal"},
            "when": {"page.path": "/ask"},
            "variants": [{"id": "only", "weight": 100, "widget": "survey"}],
        },
    ],
}

PRODUCTS = [
    Product("a", "Camera", f"{SHOP}/products/a", "/img/a.svg", 499.0, "cameras"),
    Product("b", "Camera bag", f"{SHOP}/products/b", "/img/b.svg", 1234.5, "bags",
            extra={"brand": "Acme"}),
    Product("c", "Tripod", "/products/c", None, None, "tripods"),
    Product("d", "Lens", f"{SHOP}/products/d", "/img/d.svg", 250.0, "lenses", in_stock=False),
    Product("e", "Strap", f"{SHOP}/products/e", "/img/e.svg", 19.0, "straps"),
]  # fmt: skip


def config_dir(tmp_path: Path, templates: dict[str, str] | None = None) -> Path:
    root = tmp_path / "config"
    if not root.exists():
        shutil.copytree(CONFIG_DIR / "widgets", root / "widgets")
        (root / "widgets" / "greeting.html").write_text(GREETING)
        (root / "widgets" / "survey.html").write_text(
            '<div>{{ answers.city or "" }}{% include "widgets/_form.html" %}</div>'
        )
    for name, text in (templates or {}).items():
        (root / "widgets" / name).write_text(text)
    return root


def compiled(
    tmp_path: Path, templates: dict[str, str] | None = None, **changes: Any
) -> CompiledSite:
    data = copy.deepcopy(SITE)
    data.update(changes)
    return compile_site(parse_site(data), config_dir(tmp_path, templates))


def problems(tmp_path: Path, templates: dict[str, str] | None = None, **changes: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        compiled(tmp_path, templates, **changes)
    return [f"{p.path}: {p.expected}" for p in caught.value.problems]


def page(path: str, product: str | None = None) -> DecideRequest:
    data = {"product": msgspec.Raw(msgspec.json.encode({"id": product}))} if product else {}
    return DecideRequest(site="shop", page=Page(url=f"{SHOP}{path}", data=data), view="v")


def run(
    site: CompiledSite,
    request: DecideRequest,
    state: VisitorState | None = None,
    recommender: Any = None,
) -> Outcome:
    state = state or VisitorState(visitor="visitor-0000000001")
    return decide(site, state, request, NOW, key=KEY, recommender=recommender)


def html(outcome: Outcome, rule: str) -> str | None:
    return next((d.html for d in outcome.decisions if d.rule == rule), None)


def reason(outcome: Outcome, rule: str) -> str | None:
    return next(v.reason for v in outcome.verdicts if v.rule == rule)


# Which widgets render when


def test_a_widget_with_only_fixed_data_still_renders_once_at_load(tmp_path: Path) -> None:
    site = compiled(tmp_path)
    fixed = next(r for r in site.rules if r.id == "fallback")
    assert fixed.html[0] is not None and "<h3>T</h3>" in fixed.html[0]
    assert fixed.personal == (None,)


@pytest.mark.parametrize("rule_id", ["greet", "recs", "ask"])
def test_a_widget_reading_per_visitor_data_renders_at_decide_time(
    tmp_path: Path, rule_id: str
) -> None:
    compiled_rule = next(r for r in compiled(tmp_path).rules if r.id == rule_id)
    assert compiled_rule.html == (None,) and compiled_rule.personal[0] is not None


# The greeting: a verified attribute, a form answer, neither


def test_a_greeting_by_first_name_from_a_verified_attribute(tmp_path: Path) -> None:
    state = VisitorState(
        visitor="visitor-0000000001",
        contact="ann@example.com",
        verified=True,
        attributes={"first_name": "Ann"},
    )
    assert html(run(compiled(tmp_path), page("/hello"), state), "greet") == (
        '<p class="hi">Hello Ann!</p>'
    )


def test_a_greeting_by_first_name_from_a_form_answer(tmp_path: Path) -> None:
    state = VisitorState(visitor="visitor-0000000001", answers={"name": "Bo"})
    assert html(run(compiled(tmp_path), page("/hello"), state), "greet") == (
        '<p class="hi">Hello Bo!</p>'
    )


def test_a_claimed_identity_unlocks_no_attribute(tmp_path: Path) -> None:
    state = VisitorState(
        visitor="visitor-0000000001",
        contact="ann@example.com",
        verified=False,  # sitecue('identify', …): a claim
        attributes={"first_name": "Ann"},
    )
    assert html(run(compiled(tmp_path), page("/hello"), state), "greet") == (
        '<p class="hi">Hello there!</p>'
    )


def test_every_declared_attribute_and_form_field_is_present_none_when_unknown(
    tmp_path: Path,
) -> None:
    shown = {
        "greeting.html": "{{ attributes | dictsort }}|{{ answers | dictsort }}",
    }
    state = VisitorState(
        visitor="visitor-0000000001", verified=True, contact="c", attributes={"tier": "gold"},
        answers={"city": "Malmö"},
    )  # fmt: skip
    out = html(run(compiled(tmp_path, shown), page("/hello"), state), "greet")
    assert out == (
        "[(&#39;first_name&#39;, None), (&#39;tier&#39;, &#39;gold&#39;)]|"
        "[(&#39;city&#39;, &#39;Malmö&#39;), (&#39;name&#39;, None)]"
    )


def test_the_cookie_keeps_the_answers_a_personal_template_reads(tmp_path: Path) -> None:
    site = compiled(tmp_path)
    assert set(site.answers) == {"name", "city"}  # greeting reads name, survey city
    state = VisitorState(visitor="visitor-0000000001", answers={"name": "Bo", "city": "Lund"})
    run(site, page("/elsewhere"), state)
    assert state.answers == {"name": "Bo", "city": "Lund"}
    # A site whose templates read only the name keeps only the name.
    only_name = compiled(tmp_path, {"survey.html": '<div>{% include "widgets/_form.html" %}</div>'})
    assert set(only_name.answers) == {"name"}
    state = VisitorState(visitor="visitor-0000000001", answers={"name": "Bo", "city": "Lund"})
    run(only_name, page("/elsewhere"), state)
    assert state.answers == {"name": "Bo"}
    # The worst-case cookie counts them.
    assert state_size(site).worst > state_size(only_name).worst


def test_answers_and_attributes_are_text_never_markup(tmp_path: Path) -> None:
    state = VisitorState(
        visitor="visitor-0000000001", answers={"name": '<img src=x onerror="alert(1)">{{ 7*7 }}'}
    )
    out = html(run(compiled(tmp_path), page("/hello"), state), "greet")
    assert out == ('<p class="hi">Hello &lt;img src=x onerror=&#34;alert(1)&#34;&gt;{{ 7*7 }}!</p>')


# Load-time checks: sitecue check catches a template that fails


def test_a_template_failing_with_empty_data_fails_the_check(tmp_path: Path) -> None:
    found = problems(tmp_path, {"greeting.html": "{{ answers.name.upper() }}"})
    assert len(found) == 1
    assert found[0].startswith("$.widgets.greeting.template: expected a template that renders")
    assert found[0].endswith("with empty sample data")


def test_a_template_failing_with_full_data_fails_the_check(tmp_path: Path) -> None:
    found = problems(
        tmp_path, {"greeting.html": "{% if answers.name %}{{ answers.name + 1 }}{% endif %}"}
    )
    assert len(found) == 1 and "TypeError" in found[0]
    assert found[0].endswith("with full sample data")


def test_a_recommendations_template_failing_on_a_product_without_a_price_fails_the_check(
    tmp_path: Path,
) -> None:
    bad = "{% for p in recommendations %}{{ '%.2f' % p.price }}{% endfor %}"
    found = problems(tmp_path, {"recommendations.html": bad})
    assert found == [
        "$.widgets.together.template: expected a template that renders with its data"
        " (TypeError: must be real number, not NoneType), with empty sample data"
    ]


def test_undeclared_attributes_and_form_fields_are_named(tmp_path: Path) -> None:
    found = problems(tmp_path, {"greeting.html": "{{ attributes.nickname }}{{ answers.age }}"})
    assert found == [
        "$.widgets.greeting.template: expected attributes.<declared attribute>"
        " (first_name, tier), got attributes.nickname",
        "$.widgets.greeting.template: expected answers.<form field> (name, city), got answers.age",
    ]


@pytest.mark.parametrize(
    "template",
    [
        "{{ answers.name | safe }}",
        "{% autoescape false %}{{ answers.name }}{% endautoescape %}",
    ],
)
def test_a_personal_template_cannot_render_visitor_text_as_markup(
    tmp_path: Path, template: str
) -> None:
    [found] = problems(tmp_path, {"greeting.html": template})
    assert found.startswith(
        "$.widgets.greeting.template: expected a template that renders per-visitor data as"
        " text only"
    )


@pytest.mark.parametrize(
    "template",
    [
        "{{ answers.__class__.__mro__ }}",
        "{{ recommendations.append(1) }}",
        "{{ attributes.items.__self__ }}",
        '{{ (answers | attr("__class__")).__mro__ }}',
        "{{ answers.get.__globals__ }}",
        "{% for p in recommendations %}{{ p.__class__.__subclasses__() }}{% endfor %}",
    ],
)
def test_a_personal_template_cannot_reach_python_internals(tmp_path: Path, template: str) -> None:
    changes = {}
    if "recommendations" in template:
        changes = {
            "widgets": {
                **SITE["widgets"],
                "greeting": {**SITE["widgets"]["together"], "template": "widgets/greeting.html"},
            }
        }
    found = problems(tmp_path, {"greeting.html": template}, **changes)
    # Refused at load, by name (not a declared attribute or form field) or by the sandbox.
    assert found and all(
        ("renders with its data" in f and ("unsafe" in f or "SecurityError" in f))
        or "got attributes." in f
        or "got answers." in f
        for f in found
    ), found


def test_per_visitor_names_are_not_widget_data(tmp_path: Path) -> None:
    widgets = {
        **SITE["widgets"],
        "fixed": {
            "template": "widgets/offer.html",
            "data": {"answers": 1, "title": "T", "text": "x", "code": "C"},
        },
    }
    found = problems(tmp_path, widgets=widgets)
    assert found == [
        "$.widgets.fixed.data.answers: expected a key other than recommendations, attributes,"
        " answers: the template reads those per visitor"
    ]


def test_recommend_needs_a_catalog_and_a_template_that_shows_them(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        catalog=None,
        widgets={
            **SITE["widgets"],
            "together": {**SITE["widgets"]["together"], "template": "widgets/greeting.html"},
        },
    )
    assert found == [
        "$.widgets.together.recommend: expected a site with a catalog section to recommend",
        "$.widgets.together.template: expected a template that shows the recommendations"
        " (reads recommendations)",
    ]
    reads = problems(tmp_path, {"greeting.html": "{{ recommendations | length }}"})
    assert reads == [
        "$.widgets.greeting.recommend: expected which products to recommend (a recommend"
        " section) for a template that reads recommendations"
    ]


# Recommendations


def test_the_recommendations_widget_shows_the_picks_as_accessible_cards(tmp_path: Path) -> None:
    recommender = ListRecommender(PRODUCTS, popular=["e", "a"], together={"a": ["b", "c", "d"]})
    out = run(compiled(tmp_path), page("/products/a", product="a"), recommender=recommender)
    shown = html(out, "recs")
    assert shown is not None and reason(out, "fallback") == "lost on priority to recs"
    # b and c bought with a, d out of stock, then the popular e (a is on the page).
    assert shown.count("<li>") == 3
    assert (
        f'<a href="{SHOP}/products/b" data-sc-product="b" data-sc-strategy="bought_together">'
        in shown
    )
    assert '<img src="/img/b.svg" alt="Camera bag"' in shown
    assert '<span class="sc-price">€1,234.50</span>' in shown
    assert 'data-sc-product="c"' in shown and 'data-sc-strategy="popular">' in shown
    assert 'aria-label="Often bought together"' in shown and '<ul role="list">' in shown
    assert ":focus-visible" in shown and "@media (max-width:30rem)" in shown
    assert 'data-sc-product="d"' not in shown and 'data-sc-product="a"' not in shown


def test_the_recommender_gets_the_page_s_product_recent_views_and_bought(tmp_path: Path) -> None:
    recommender = ListRecommender(PRODUCTS, popular=["e"], record=True)
    keys = [product_key(i) for i in ("b", "c", "d", "e")]
    state = VisitorState(
        visitor="visitor-0000000001",
        products=Products(viewed=keys[0] + keys[1], bought=keys[2], server=keys[3]),
    )
    run(compiled(tmp_path), page("/products/a", product="a"), state, recommender)
    # The page's own product is viewed first (the page view records it before the rules);
    # the person's purchases elsewhere count only once verified.
    viewed = [product_key("a"), keys[0], keys[1]]
    assert recommender.calls == [("a", viewed, {keys[2]})]
    # (An unverified state drops the server's purchases: the person's state is made anew.)
    state = VisitorState(
        visitor="visitor-0000000001",
        products=Products(viewed=keys[0] + keys[1], bought=keys[2], server=keys[3]),
        verified=True,
        contact="ann@example.com",
    )
    run(compiled(tmp_path), page("/products/a", product="a"), state, recommender)
    assert recommender.calls[-1] == ("a", viewed, {keys[2], keys[3]})


def test_a_recommendations_widget_with_nothing_to_show_is_not_shown(tmp_path: Path) -> None:
    nothing = ListRecommender(PRODUCTS[3:4])  # only the lens, out of stock
    out = run(compiled(tmp_path), page("/products/a", product="a"), recommender=nothing)
    assert reason(out, "recs") == NONE_TO_SHOW == "recommendations: none to show"
    # The slot is free for the next rule.
    assert html(out, "fallback") is not None and "recs" not in {d.rule for d in out.decisions}


def test_while_the_index_is_not_loaded_the_widget_is_not_shown(tmp_path: Path) -> None:
    out = run(compiled(tmp_path), page("/products/a", product="a"), recommender=None)
    assert reason(out, "recs") == NOT_LOADED
    assert html(out, "fallback") is not None


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://shop.example/p/1", True),
        ("HTTP://shop.example/p/1", True),
        ("/products/1?x=1", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//evil.example/p", False),
        ("/\\evil.example/p", False),
        ("products/1", False),
        ("https:///nohost", False),
        ("https://shop.example/\nx", False),
        ("vbscript:msgbox", False),
        ("", False),
        (None, False),
    ],
)
def test_only_http_links_and_paths_are_safe(url: str | None, safe: bool) -> None:
    assert safe_link(url) is safe


def test_a_product_whose_link_is_not_safe_is_never_rendered(tmp_path: Path) -> None:
    evil = [
        Product("x", "<script>alert(1)</script>", "javascript:alert(1)", "/img/x.svg", 1.0),
        Product("y", "Nice <b>thing</b>", f"{SHOP}/products/y", "data:image/svg+xml,<svg/>", 2.0),
    ]
    out = run(
        compiled(tmp_path),
        page("/products/a", product="a"),
        recommender=ListRecommender(evil, popular=["x", "y"]),
    )
    shown = html(out, "recs")
    assert shown is not None
    assert "javascript:" not in shown and "<script>" not in shown and "data:" not in shown
    assert "Nice &lt;b&gt;thing&lt;/b&gt;" in shown and "<img" not in shown.split("</style>")[1]
    # Only unsafe products: nothing to show.
    out = run(
        compiled(tmp_path),
        page("/products/a", product="a"),
        recommender=ListRecommender(evil[:1], popular=["x"]),
    )
    assert reason(out, "recs") == NONE_TO_SHOW


def test_a_template_sees_every_field_and_declared_extra(tmp_path: Path) -> None:
    dump = "{% for p in recommendations %}{{ p | dictsort }}{% endfor %}"
    recommender = ListRecommender(PRODUCTS, popular=["b"])
    shown = html(
        run(
            compiled(tmp_path, {"recommendations.html": dump}),
            page("/products/a", "a"),
            recommender=recommender,
        ),
        "recs",
    )
    assert shown == (
        "[(&#39;brand&#39;, &#39;Acme&#39;), (&#39;category&#39;, &#39;bags&#39;),"
        " (&#39;id&#39;, &#39;b&#39;), (&#39;image&#39;, &#39;/img/b.svg&#39;),"
        " (&#39;in_stock&#39;, True), (&#39;name&#39;, &#39;Camera bag&#39;),"
        " (&#39;price&#39;, 1234.5), (&#39;strategy&#39;, &#39;popular&#39;),"
        " (&#39;url&#39;, &#39;https://shop.example/products/b&#39;)]"
    )


def test_rows_are_shared_only_without_a_visitor_s_own_data(tmp_path: Path) -> None:
    mixed = "{% for p in recommendations %}{{ p.name }}{% endfor %} for {{ answers.name }}"
    site = compiled(tmp_path, {"recommendations.html": mixed})
    recommender = ListRecommender(PRODUCTS, popular=["b"])
    first = VisitorState(visitor="visitor-0000000001", answers={"name": "Ann"})
    second = VisitorState(visitor="visitor-0000000002", answers={"name": "Bo"})
    assert (
        html(run(site, page("/products/a", "a"), first, recommender), "recs")
        == "Camera bag for Ann"
    )
    assert (
        html(run(site, page("/products/a", "a"), second, recommender), "recs")
        == "Camera bag for Bo"
    )


def test_a_template_failing_on_one_visitor_s_data_is_a_verdict_not_an_error(
    tmp_path: Path,
) -> None:
    risky = "{% if answers.name %}{{ 10 // (answers.name | length - 3) }}{% endif %}"
    site = compiled(tmp_path, {"greeting.html": risky})
    out = run(
        site, page("/hello"), VisitorState(visitor="visitor-0000000001", answers={"name": "Bob"})
    )
    assert reason(out, "greet") == "template: ZeroDivisionError"
    assert out.decisions == []


def test_a_preview_renders_a_personal_widget_for_the_previewer(tmp_path: Path) -> None:
    site = compiled(tmp_path)
    state = VisitorState(visitor="visitor-0000000001", answers={"name": "Bo"})
    grant = preview.Grant("recs", "only", NOW // 1000 + 60)
    recommender = ListRecommender(PRODUCTS, popular=["b"])
    [shown], _ = preview.show(site, state, page("/hello"), NOW, KEY, grant, 0, recommender)
    assert shown.html is not None and 'data-sc-product="b"' in shown.html
    grant = preview.Grant("greet", "only", NOW // 1000 + 60)
    [shown], _ = preview.show(site, state, page("/products/a", "a"), NOW, KEY, grant, 0)
    assert shown.html == '<p class="hi">Hello Bo!</p>'


# Through the real app: the greeting in the answer of POST /v1/decide


@pytest.fixture
def greeting_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    site = copy.deepcopy(FORMS_SITE)
    site["attributes"]["first_name"] = "string"
    site["widgets"]["signup"]["form"]["fields"].append(
        {"name": "name", "type": "text", "label": "First name", "step": 2}
    )
    site["widgets"]["greeting"] = {"template": "widgets/greeting.html"}
    site["rules"].append(
        {
            "id": "greet",
            "placement": {"type": "inline", "selector": "#hello"},
            "when": {"page.path": "/hello"},
            "variants": [{"id": "only", "weight": 100, "widget": "greeting"}],
        }
    )
    config = write_config(tmp_path, site)
    (config / "widgets" / "greeting.html").write_text(GREETING)
    env = {
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "personal-test-secret-0123456789",
        "SITECUE_CONFIG_DIR": str(config),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # for the CLI that makes admin keys
    with TestClient(build_app(Settings.load(env=env)), base_url=FORMS) as client:
        yield client


def greeting(client: TestClient, **body: Any) -> str | None:
    answer = client.post(
        "/v1/decide",
        json={"site": "forms", "page": {"url": f"{FORMS}/hello"}, **body},
        headers={"origin": FORMS},
    )
    assert answer.status_code == 200, answer.text
    return next((d["html"] for d in answer.json()["decisions"] if d["rule"] == "greet"), None)


def test_the_app_greets_by_a_form_answer(greeting_client: TestClient) -> None:
    client = greeting_client
    assert greeting(client) == '<p class="hi">Hello there!</p>'
    decision = next(
        d
        for d in client.post(
            "/v1/decide",
            json={"site": "forms", "page": {"url": f"{FORMS}/signup"}},
            headers={"origin": FORMS},
        ).json()["decisions"]
        if d["rule"] == "newsletter"
    )
    submitted = client.post(
        "/v1/forms",
        json={
            "site": "forms", "decision": decision["id"], "rule": "newsletter",
            "variant": decision["variant"],
            "fields": {"email": "bo@example.com", "consent": True, "name": "<b>Bo</b>"},
        },
        headers={"origin": FORMS},
    )  # fmt: skip
    assert submitted.status_code == 200, submitted.text
    # Kept in the cookie (the greeting reads it), and shown as text.
    assert greeting(client) == '<p class="hi">Hello &lt;b&gt;Bo&lt;/b&gt;!</p>'


def test_the_app_greets_by_a_verified_attribute_never_a_claimed_one(
    greeting_client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client = greeting_client
    auth = {"authorization": f"Bearer {new_key(capsys, 'forms')}"}
    put = client.put(
        "/v1/contacts/ann@example.com",
        params={"site": "forms"},
        json={"attributes": {"first_name": "Ann"}},
        headers=auth,
    )
    assert put.status_code == 200, put.text
    # Claiming to be Ann (sitecue('identify')) shows nothing of hers.
    assert greeting(client, identify="ann@example.com") == '<p class="hi">Hello there!</p>'
    minted = client.post(
        "/v1/tokens", json={"site": "forms", "contacts": ["ann@example.com"]}, headers=auth
    ).json()["tokens"][0]["token"]
    assert greeting(client, token=minted) == '<p class="hi">Hello Ann!</p>'
    assert greeting(client) == '<p class="hi">Hello Ann!</p>'  # from the cookie's snapshot


def test_sitecue_check_reports_a_personal_template_that_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = config_dir(tmp_path, {"greeting.html": "{{ answers.name.upper() }}"})
    (root / "sites").mkdir()
    path = root / "sites" / "shop.json"
    path.write_text(json.dumps(SITE))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{path}: $.widgets.greeting.template: expected a template that")
    assert err[0].endswith("with empty sample data") and err[-1] == "1 mistake(s) found"


# A row from its cards: each product's card rendered once per widget and strategy


def whole_row(tmp_path: Path, shown: list[dict[str, Any]]) -> str:
    """The row as the whole template renders it (no split), for ``shown`` products."""
    templates = Templates(config_dir(tmp_path))
    templates.compile("widgets/recommendations.html")
    data = {"title": "Often bought together", "currency": "€", "rule": "recs"}
    data |= {"variant": "only", "widget": "together", "form": None}
    data |= {"recommendations": shown, "attributes": {}, "answers": {}}
    return templates.render("widgets/recommendations.html", data)


def test_a_row_renders_from_cards_as_the_whole_template_would_each_card_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    product = personal.product

    def counted(pick: Any, extras: Any) -> dict[str, Any] | None:
        seen.append(pick.product.id)
        return product(pick, extras)

    monkeypatch.setattr("sitecue.personal.product", counted)
    site = compiled(tmp_path)
    together = {"a": ["b", "c", "e"], "e": ["b", "c", "a"]}
    recommender = ListRecommender(PRODUCTS, together=together)
    first = html(run(site, page("/products/a", "a"), None, recommender), "recs")
    assert seen == ["b", "c", "e"]
    second = html(run(site, page("/products/e", "e"), None, recommender), "recs")
    assert seen == ["b", "c", "e", "a"]  # b and c: their cards kept from the first row
    by_id = {p.id: p for p in PRODUCTS}

    def shown(ids: list[str]) -> list[dict[str, Any]]:
        picks = [Pick(by_id[i], "bought_together") for i in ids]
        return [p for pick in picks if (p := product(pick, ("brand",))) is not None]

    assert first == whole_row(tmp_path, shown(["b", "c", "e"]))
    assert second == whole_row(tmp_path, shown(["b", "c", "a"]))
    assert first is not None and first.count("<li>") == 3


def test_cards_kept_are_escaped_and_never_an_unsafe_link(tmp_path: Path) -> None:
    hostile = [
        Product("x", '<script>alert("x")</script>', f"{SHOP}/x", "javascript:alert(1)"),
        Product("y", "Y", "javascript:alert(1)"),
        *PRODUCTS,
    ]
    site = compiled(tmp_path)
    recommender = ListRecommender(hostile, together={"a": ["x", "y", "b"], "e": ["x", "y"]})
    for path, product_id in (("/products/a", "a"), ("/products/e", "e"), ("/products/a", "a")):
        row = html(run(site, page(path, product_id), None, recommender), "recs")
        assert row is not None
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in row
        assert "<script>" not in row and "javascript:" not in row
        assert 'data-sc-product="y"' not in row


def test_a_template_reading_the_loop_renders_whole_each_time(tmp_path: Path) -> None:
    numbered = "{% for p in recommendations %}{{ loop.index }}. {{ p.name }} {% endfor %}"
    site = compiled(tmp_path, {"recommendations.html": numbered})
    recommender = ListRecommender(PRODUCTS, together={"a": ["b", "c"], "e": ["c", "b"]})
    assert html(run(site, page("/products/a", "a"), None, recommender), "recs") == (
        "1. Camera bag 2. Tripod"
    )
    assert html(run(site, page("/products/e", "e"), None, recommender), "recs") == (
        "1. Tripod 2. Camera bag"
    )
    templates = Templates(config_dir(tmp_path))
    template = templates.compile("widgets/recommendations.html")
    assert split_cards(template, "widgets/recommendations.html") is None
    template = templates.compile("widgets/offer.html")
    assert split_cards(template, "widgets/offer.html") is None  # no row of products


def test_a_row_reading_its_products_outside_the_loop_is_rendered_per_row(tmp_path: Path) -> None:
    counted = (
        "{{ recommendations | length }}:{% for p in recommendations %} {{ p.name }}{% endfor %}"
    )
    site = compiled(tmp_path, {"recommendations.html": counted})
    recommender = ListRecommender(PRODUCTS, together={"a": ["b", "c", "e"], "e": ["c", "b"]})
    assert html(run(site, page("/products/a", "a"), None, recommender), "recs") == (
        "3: Camera bag Tripod Strap"
    )
    assert html(run(site, page("/products/e", "e"), None, recommender), "recs") == (
        "2: Tripod Camera bag"
    )
    templates = Templates(config_dir(tmp_path))
    cards = split_cards(
        templates.compile("widgets/recommendations.html"), "widgets/recommendations.html"
    )
    assert cards is not None and not cards.fixed  # its frame is rendered for each row
    shipped = Templates(CONFIG_DIR)
    cards = split_cards(
        shipped.compile("widgets/recommendations.html"), "widgets/recommendations.html"
    )
    assert cards is not None and cards.fixed  # the shipped row: one frame for all its rows
