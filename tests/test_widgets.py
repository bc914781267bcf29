"""Widget templates: compiled once, autoescaped, sandboxed, and strict about missing data."""

from __future__ import annotations

from pathlib import Path

import jinja2
import markupsafe
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError

from sitecue.widgets import TemplateProblem, Templates, _escape, money


@pytest.fixture
def templates(tmp_path: Path) -> Templates:
    (tmp_path / "offer.html").write_text("<p>{{ text }}</p>")
    (tmp_path / "escape.html").write_text("{{ ''.__class__.__mro__ }}")
    (tmp_path / "broken.html").write_text("{% for %}")
    return Templates(tmp_path)


def test_data_is_escaped_never_rendered_as_html(templates: Templates) -> None:
    templates.compile("offer.html")
    html = templates.render("offer.html", {"text": '<img src=x onerror="alert(1)">'})
    assert html == "<p>&lt;img src=x onerror=&#34;alert(1)&#34;&gt;</p>"


def test_the_sandbox_keeps_templates_from_python_internals(templates: Templates) -> None:
    templates.compile("escape.html")
    with pytest.raises(TemplateProblem, match="renders with its data") as caught:
        templates.render("escape.html", {})
    assert isinstance(caught.value.__cause__, SecurityError)


def test_missing_data_is_an_error_not_a_blank(templates: Templates) -> None:
    templates.compile("offer.html")
    with pytest.raises(TemplateProblem, match="'text' is undefined") as caught:
        templates.render("offer.html", {})
    assert isinstance(caught.value.__cause__, jinja2.UndefinedError)


def test_compiled_once(templates: Templates) -> None:
    assert templates.compile("offer.html") is templates.compile("offer.html")


@pytest.mark.parametrize(
    ("name", "expected"), [("nope.html", "no nope.html"), ("broken.html", "line 1")]
)
def test_problems_say_what_is_wrong(templates: Templates, name: str, expected: str) -> None:
    with pytest.raises(TemplateProblem, match=expected):
        templates.compile(name)


@given(st.text())
def test_printed_text_is_escaped_exactly_as_markupsafe_escapes_it(text: str) -> None:
    assert _escape(text) == str(markupsafe.escape(text))
    assert _escape(markupsafe.Markup("<b>x</b>")) == "<b>x</b>"  # markup stays markup


def test_a_dict_key_is_read_as_data_and_internals_stay_out_of_reach(tmp_path: Path) -> None:
    (tmp_path / "keys.html").write_text("{{ d.items }}|{{ d.url }}|{{ d.get.__self__ }}")
    templates = Templates(tmp_path)
    templates.compile("keys.html")
    with pytest.raises(TemplateProblem, match="unsafe"):
        templates.render("keys.html", {"d": {"items": "<i>", "url": "/p"}})
    (tmp_path / "ok.html").write_text("{{ d.items }}|{{ d.url }}|{{ d.missing is defined }}")
    templates.compile("ok.html")
    assert templates.render("ok.html", {"d": {"items": "<i>", "url": "/p"}}) == "&lt;i&gt;|/p|False"


@pytest.mark.parametrize(
    ("price", "args", "text"),
    [
        (1234.5, ("€",), "€1,234.50"),
        (99, ("kr", True), "99.00 kr"),
        (0.5, (), "0.50"),
        (None, ("€",), ""),
        (float("nan"), ("€",), ""),
        (True, ("€",), ""),
    ],
)
def test_money_formats_a_price(price: float | None, args: tuple[str, ...], text: str) -> None:
    assert money(price, *args) == text


def test_reads_finds_the_keys_a_template_and_its_includes_read(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text(
        '{{ answers.first_name }}{{ answers["city"] }}{% include "b.html" %}{{ other }}'
    )
    (tmp_path / "b.html").write_text(
        "{{ attributes.tier }}{% for p in recommendations %}{% endfor %}"
    )
    (tmp_path / "c.html").write_text(
        "{% set all = answers %}{{ x | safe }}{% autoescape false %}{% endautoescape %}"
    )
    templates = Templates(tmp_path)
    watched = ("answers", "attributes", "recommendations")
    reads = templates.reads("a.html", watched)
    assert reads.names == set(watched)
    assert reads.keys == {
        "answers": {"first_name", "city"},
        "attributes": {"tier"},
        "recommendations": None,  # looped over: all of it
    }
    assert reads.unsafe == ()
    whole = templates.reads("c.html", watched)
    assert whole.keys == {"answers": None}
    assert whole.unsafe == ("|safe (line 1 of c.html)", "autoescape off (line 1 of c.html)")
