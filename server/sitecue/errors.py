"""Every error sitecue raises on purpose, in one shallow tree.

    SitecueError
     └── ConfigError          a site config is wrong; carries every Problem found
          └── ConditionError  a targeting condition cannot be compiled

Errors carry data (the JSON path and what was expected there), so the CLI and the HTTP
layer can each present them in their own way.
"""

from __future__ import annotations

from typing import NamedTuple


class Problem(NamedTuple):
    """One mistake: where it is (a JSON path such as ``$.rules[0].when.age.$gt``) and what
    was expected there."""

    path: str
    expected: str

    def __str__(self) -> str:
        return f"{self.path}: {self.expected}"


class SitecueError(Exception):
    """Base of every error sitecue raises on purpose."""


class ConfigError(SitecueError):
    """A configuration that cannot be used, with every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConditionError(ConfigError):
    """A targeting condition with an unknown operator or a malformed operand."""
