"""Widget HTML: Jinja2 templates rendered in the sandbox with autoescaping.

Templates are compiled and rendered when the site loads (a widget's HTML depends only on
the config), so a page view renders nothing and a template that fails fails ``sitecue
check``. Data reaches a template only as escaped text, never as markup, and the sandbox keeps
a template from reaching Python internals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["TemplateProblem", "Templates"]


class TemplateProblem(Exception):
    """A template that is missing or does not compile; the message says which and why."""


class Templates:
    """The compiled widget templates of one config directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(root),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._compiled: dict[str, jinja2.Template] = {}

    def compile(self, name: str) -> jinja2.Template:
        """Compile ``name`` (relative to the config directory) once; raise TemplateProblem."""
        if name not in self._compiled:
            try:
                self._compiled[name] = self._env.get_template(name)
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
