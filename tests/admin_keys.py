"""Admin keys for tests, made the way an operator makes them: with the CLI."""

from __future__ import annotations

import pytest

from sitecue.cli import main

ORIGIN = "https://news.example"


def new_key(capsys: pytest.CaptureFixture[str], *sites: str) -> str:
    """A key made the way an operator makes one: with the CLI, on the same settings."""
    assert main(["apikey", "create", *[a for s in sites for a in ("--site", s)]]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]
