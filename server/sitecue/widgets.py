"""Widget HTML: Jinja2 templates rendered in the sandbox with autoescaping.

Templates are compiled when the site loads. A widget whose HTML depends only on the config is
rendered then too, so a page view renders nothing for it; a *personal* one (see
sitecue.personal) is rendered per visitor at decide time with the same compiled template, and
tried at load with sample data. Either way a template that fails fails ``sitecue check``.
Data reaches a template only as escaped text, never as markup, and the sandbox keeps a
template from reaching Python internals.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["Reads", "TemplateProblem", "Templates", "money"]


class TemplateProblem(Exception):
    """A template that is missing or does not compile; the message says which and why."""


def money(value: Any, symbol: str = "", after: bool = False) -> str:
    """A price as text, two decimals and thousands grouped: ``{{ 1234.5|money("€") }}`` is
    ``€1,234.50``, ``{{ 99|money("kr", after=true) }}`` is ``99.00 kr``; no price (None, or
    not a finite number) is the empty string, so a card without one still renders."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    amount = f"{value:,.2f}"
    if not symbol:
        return amount
    return f"{amount} {symbol}" if after else f"{symbol}{amount}"


@dataclass(frozen=True)
class Reads:
    """What a template, with the templates it includes, reads of some variables: ``names``,
    those of them it reads at all; ``keys``, for each name read, the constant keys it reads
    (``answers.first_name``, ``answers["city"]``), or None where it reads the variable
    otherwise (looped over, passed on, indexed by a variable: then all of it counts);
    ``unsafe``, what in it would put text into the page as markup (``|safe``, ``{%
    autoescape false %}``)."""

    names: frozenset[str]
    keys: dict[str, frozenset[str] | None]
    unsafe: tuple[str, ...]


def _escape(value: Any) -> Any:
    """What a template prints, escaped: as ``markupsafe.escape`` does, but plain text comes
    back as a plain string, not a Markup (whose construction was a third of a product row's
    render). Printed output only goes into the page's text, joined (and, where a block's
    output is kept, wrapped in Markup by Jinja), so nothing tells the two apart; text that
    already is markup (``__html__``) goes through markupsafe as before."""
    if type(value) is str:
        return (
            value.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&#34;")
            .replace("'", "&#39;")
        )
    return markupsafe.escape(value)


class _Template(jinja2.Template):
    """A compiled template printing through :func:`_escape`: the name its generated code
    calls for every autoescaped output is set in its module's namespace."""

    @classmethod
    def _from_namespace(
        cls, environment: jinja2.Environment, namespace: Any, globals: Any
    ) -> jinja2.Template:
        namespace["escape"] = _escape
        return super()._from_namespace(environment, namespace, globals)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, reading a plain dict's own keys first: ``p.url`` on a product is the
    commonest lookup of a personal widget, and the sandbox would first try (and fail) to
    find an attribute ``url`` on the dict, an exception per lookup. A key's value is data,
    never a method, so nothing the sandbox guards is reached this way (a key named like a
    dict method, ``items``, reads the key: what a template author means)."""

    template_class = _Template

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


class Templates:
    """The compiled widget templates of one config directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._env = _Sandbox(
            loader=jinja2.FileSystemLoader(root),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["money"] = money
        self._compiled: dict[str, jinja2.Template] = {}

    def compile(self, name: str) -> jinja2.Template:
        """Compile ``name`` (relative to the config directory) once; raise TemplateProblem."""
        if name not in self._compiled:
            try:
                template = self._env.get_template(name)
                # Its globals as one plain dict, not Jinja's chain of the environment's and
                # its own (nothing changes either after load): each render copies them into
                # its context, and copying a chain was a tenth of a product row's render.
                template.globals = dict(template.globals)
                self._compiled[name] = template
            except jinja2.TemplateNotFound as err:
                raise TemplateProblem(f"a template file under {self.root} (no {err.name})") from err
            except jinja2.TemplateSyntaxError as err:
                raise TemplateProblem(
                    f"a valid template ({err.message}, line {err.lineno})"
                ) from err
        return self._compiled[name]

    def render(self, name: str, data: dict[str, Any]) -> str:
        """Render a compiled template; data it needs but lacks (or that the sandbox refuses)
        is a TemplateProblem, never a silent blank."""
        try:
            return self._compiled[name].render(data).strip()
        except (jinja2.UndefinedError, jinja2.exceptions.SecurityError) as err:
            raise TemplateProblem(f"a template that renders with its data ({err})") from err
        except Exception as err:  # a template is the config's code: 1/0, None + 1, …
            what = f"{type(err).__name__}: {err}"
            raise TemplateProblem(f"a template that renders with its data ({what})") from err

    def reads(self, name: str, watched: Collection[str]) -> Reads:
        """What the compiled template ``name`` and those it includes read of ``watched``
        (see :class:`Reads`); an include named by a variable cannot be followed, and is
        left to the sample renders to try."""
        names: set[str] = set()
        keys: dict[str, set[str] | None] = {}
        unsafe: list[str] = []
        todo, seen = [name], set()
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            try:
                source = self._env.loader.get_source(self._env, current)[0]  # type: ignore[union-attr]
                tree = self._env.parse(source)
            except (jinja2.TemplateNotFound, jinja2.TemplateSyntaxError):
                continue  # compiling the include reports it
            read = meta.find_undeclared_variables(tree) & set(watched)
            names |= read
            todo.extend(t for t in meta.find_referenced_templates(tree) if t is not None)
            keyed: set[int] = set()
            for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
                assert isinstance(node, (nodes.Getattr, nodes.Getitem))
                target = node.node
                if not isinstance(target, nodes.Name) or target.name not in read:
                    continue
                key = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
                if key is None:
                    continue
                keyed.add(id(target))
                found = keys.setdefault(target.name, set())
                if found is not None:
                    found.add(key)
            for used in tree.find_all(nodes.Name):
                if used.name in read and used.ctx == "load" and id(used) not in keyed:
                    keys[used.name] = None  # read whole: every key counts
            for call in tree.find_all(nodes.Filter):
                if call.name == "safe":
                    unsafe.append(f"|safe (line {call.lineno} of {current})")
            for modifier in tree.find_all(nodes.EvalContextModifier):
                for option in modifier.options:
                    value = option.value
                    if option.key == "autoescape" and not (
                        isinstance(value, nodes.Const) and value.value is True
                    ):
                        unsafe.append(f"autoescape off (line {modifier.lineno} of {current})")
        return Reads(
            frozenset(names),
            {k: None if v is None else frozenset(v) for k, v in keys.items()},
            tuple(unsafe),
        )


def _constant(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None
