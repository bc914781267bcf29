"""The command line, as a marketer and an operator use it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from sitecue.cli import main
from sitecue.config import json_schema
from sitecue.identity import TokenCodec
from sitecue.settings import database_url
from sitecue.store import open_store
from sites import CONFIG_DIR


def test_check_passes_the_examples(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITECUE_CONFIG_DIR", str(CONFIG_DIR))
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "site 'news' OK, 2 rule(s)" in out and "site 'shop' OK, 3 rule(s)" in out


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


def test_token_mint_makes_tokens_the_server_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SITECUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SITECUE_SECRETS", "cli-token-secret-0000")
    assert main(["token", "mint", "--site", "news", "--contact", "customer-123"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert TokenCodec(["cli-token-secret-0000"]).verify("news", token, int(time.time())) == (
        "customer-123"
    )
    campaign = tmp_path / "campaign.ndjson"
    campaign.write_text('{"id": "a-1"}\n"a-2"\n')
    assert main(["token", "mint", "--site", "news", "--file", str(campaign), "--ttl", "12h"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "contact,token" and [r.split(",")[0] for r in rows[1:]] == ["a-1", "a-2"]
    assert main(["token", "mint", "--site", "nope", "--contact", "x"]) == 2


def test_contacts_import_names_the_bad_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SITECUE_DATA_DIR", str(tmp_path))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("id,customer,avg_order_value\nc-1,true,87.5\nc-2,false,\n")
    bad.write_text("id,customer\nc-3,maybe\n")
    assert main(["contacts", "import", str(good), "--site", "shop"]) == 0
    assert "imported 2 contact(s) into shop" in capsys.readouterr().out
    assert main(["contacts", "import", str(bad), "--site", "shop"]) == 1
    assert (
        f"{bad}: line 2: customer: expected true or false, got 'maybe'" in capsys.readouterr().err
    )

    async def held() -> object:
        store = await open_store(database_url())
        try:
            return await store.contact("shop", "c-1")
        finally:
            await store.close()

    contact: Any = asyncio.run(held())
    assert contact.attributes == {"customer": True, "avg_order_value": 87.5}


def test_lists_are_read_by_their_extension_not_their_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SITECUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SITECUE_SECRETS", "cli-token-secret-0000")
    folder = tmp_path / "csv-exports"
    folder.mkdir()
    campaign = folder / "campaign.ndjson"
    campaign.write_text('{"id": "a1"}\n{"id": "a2"}\n')
    assert main(["token", "mint", "--site", "news", "--file", str(campaign)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["a1", "a2"]

    customers = folder / "customers.jsonl"
    customers.write_text('{"id": "c-1", "attributes": {"loyalty_tier": "gold"}}\n')
    assert main(["contacts", "import", str(customers), "--site", "shop"]) == 0
    assert "imported 1 contact(s) into shop" in capsys.readouterr().out


def test_a_list_of_no_known_format_is_refused_unless_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SITECUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SITECUE_SECRETS", "cli-token-secret-0000")
    listed = tmp_path / "csv-exports" / "customers.txt"
    listed.parent.mkdir()
    listed.write_text("id,loyalty_tier\nc-1,gold\n")
    for command in (
        ["contacts", "import", str(listed), "--site", "shop"],
        ["token", "mint", "--site", "shop", "--file", str(listed)],
    ):
        assert main(command) == 2
        assert capsys.readouterr().err == (
            f"{listed}: expected a file ending in .csv, .ndjson, .jsonl, or --format csv|ndjson\n"
        )
    assert main(["contacts", "import", str(listed), "--site", "shop", "--format", "csv"]) == 0
    assert "imported 1 contact(s) into shop" in capsys.readouterr().out
    assert main(["token", "mint", "--site", "shop", "--file", str(listed), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("c-1,")
    missing = tmp_path / "missing.csv"
    assert main(["contacts", "import", str(missing), "--site", "shop"]) == 2
    assert capsys.readouterr().err == f"{missing}: cannot be read (No such file or directory)\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id,avg_order_value\nc-1,12\nc-2,nan\n", "line 3: avg_order_value: expected a finite"),
        (b"id,avg_order_value\nc-1,inf\n", "line 2: avg_order_value: expected a finite number"),
        (b"id,loyalty_tier\nc-1,gold\nc-2,g\xf6ld\n", "line 3: expected UTF-8 text"),
    ],
)
def test_contacts_import_refuses_what_it_cannot_store_as_sent(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    message: str,
) -> None:
    monkeypatch.setenv("SITECUE_DATA_DIR", str(tmp_path))
    customers = tmp_path / "customers.csv"
    customers.write_bytes(content)
    assert main(["contacts", "import", str(customers), "--site", "shop"]) == 1
    assert capsys.readouterr().err.startswith(f"{customers}: {message}")
