"""The command line, as a marketer and an operator use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitecue.cli import main
from sitecue.config import json_schema
from sites import CONFIG_DIR


def test_check_passes_the_examples(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITECUE_CONFIG_DIR", str(CONFIG_DIR))
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "site 'news' OK, 1 rule(s)" in out and "site 'shop' OK, 3 rule(s)" in out


def test_check_lists_every_mistake_with_file_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sites").mkdir()
    bad = tmp_path / "sites" / "news.json"
    bad.write_text(
        json.dumps(
            {
                "site": "news",
                "origins": ["https://news.example"],
                "rules": [
                    {"id": "r", "placement": {"type": "modal"}, "when": {"age": {"$gt": []}},
                     "variants": [{"id": "a", "weight": 50, "widget": None}]},
                ],
            }
        )
    )  # fmt: skip
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{bad}: $.rules[0].when.age: expected a path starting with one of "
        "page, utm, visitor, attributes, triggers, time, device",
        f"{bad}: $.rules[0].when.age.$gt: expected a number or a string, got []",
        f"{bad}: $.rules[0].variants: expected weights adding up to 100, they add up to 50",
        "3 mistake(s) found",
    ]


def test_schema_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()


def test_serve_without_secrets_refuses_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SITECUE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SITECUE_SECRETS", raising=False)
    assert main(["serve", "--config", str(CONFIG_DIR)]) == 2
    assert (
        "SITECUE_SECRETS: expected one or more comma-separated secrets" in capsys.readouterr().err
    )
