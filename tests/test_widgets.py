"""Widget templates: compiled once, autoescaped, sandboxed, and strict about missing data."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from jinja2.exceptions import SecurityError

from sitecue.widgets import TemplateProblem, Templates


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
