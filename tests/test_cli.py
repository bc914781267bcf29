"""The command line, as a marketer and an operator use it."""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from forms_site import FORMS_SITE, write_config
from mistakes_site import TEN_PROBLEMS, write_ten_mistakes
from servers import free_port, sitecue_process
from sitecue.cli import main
from sitecue.config import json_schema, load_site
from sitecue.rules import compile_site
from sitecue.settings import database_url
from sitecue.state import MAX_COOKIE_BYTES
from sitecue.state_size import state_size
from sitecue.store import Store, open_store
from sitecue.tokens import TokenCodec
from sites import CONFIG_DIR


def test_check_passes_the_examples(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITECUE_CONFIG_DIR", str(CONFIG_DIR))
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "site 'news' OK, 2 rule(s)" in out and "site 'shop' OK, 6 rule(s)" in out


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
        "page, utm, visitor, attributes, triggers, sums, time, device, reading",
        f"{bad}: $.rules[0].when.age.$gt: expected a number or a string, got []",
        f"{bad}: $.rules[0].variants: expected weights adding up to 100, they add up to 50",
        "3 mistake(s) found",
    ]


def test_check_warns_about_a_regex_with_nested_quantifiers_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sites").mkdir()
    risky = tmp_path / "sites" / "news.json"
    risky.write_text(
        json.dumps(
            {
                "site": "news",
                "origins": ["https://news.example"],
                "rules": [
                    {"id": "r", "placement": {"type": "modal"},
                     "when": {"page.title": {"$regex": "^(\\w+\\s?)*$"}},
                     "variants": [{"id": "a", "weight": 100, "widget": None}]},
                ],
            }
        )
    )  # fmt: skip
    assert main(["check", str(risky)]) == 0
    captured = capsys.readouterr()
    (warning,) = captured.err.splitlines()
    assert warning.startswith(
        f'{risky}: $.rules[0].when["page.title"].$regex: warning: the group at position 1 '
        "repeats a repetition"
    )
    assert "stops after 5 ms and does not match" in warning
    assert "site 'news' OK" in captured.out


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


def test_apikey_list_shows_every_key_and_never_its_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SITECUE_DATA_DIR", str(tmp_path))
    assert main(["apikey", "list"]) == 0
    assert "no admin keys yet" in capsys.readouterr().out
    keys = []
    for sites, label in ((["news"], "newsroom"), (["news", "shop"], "ops")):
        flags = [a for s in sites for a in ("--site", s)]
        assert main(["apikey", "create", *flags, "--label", label]) == 0
        keys.append(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["apikey", "revoke", keys[0].split("_")[1]]) == 0
    capsys.readouterr()
    assert main(["apikey", "list"]) == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split() == ["id", "created", "last", "used", "status", "sites", "label"]
    by_id = {row.split()[0]: row for row in rows}
    assert sorted(by_id) == sorted(k.split("_")[1] for k in keys)
    newsroom, ops = (by_id[k.split("_")[1]] for k in keys)
    assert re.search(r"\d\d:\d\d:\d\dZ\s+never\s+revoked \d{4}-\d\d-\d\d ", newsroom)
    assert newsroom.split()[-2:] == ["news", "newsroom"]
    assert " active " in ops and ops.split()[-2:] == ["news,shop", "ops"]
    for key in keys:
        assert key.split("_", 2)[2] not in out  # the secret


def test_check_warns_when_a_site_can_outgrow_the_state_cookie(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A year-long window on four triggers, and twenty campaigns with long ids: the site
    works (exit status 0), but the check says how big its cookie can get."""
    (tmp_path / "sites").mkdir()
    path = tmp_path / "sites" / "heavy.json"
    triggers = {f"trigger_{i}": {"on": "custom"} for i in range(4)}
    rules = [
        {
            "id": f"campaign-{i:02d}-" + "x" * 50,
            "placement": {"type": "inline", "selector": f"#slot-{i}"},
            "when": {f"triggers.trigger_{i % 4}.365d": {"$gte": 1}},
            "limit": {"stop_after": ["dismiss"]},
            "variants": [{"id": "a", "weight": 100, "widget": None}],
        }
        for i in range(20)
    ]
    site = {"site": "heavy", "origins": ["https://heavy.example"], "triggers": triggers}
    path.write_text(json.dumps({**site, "rules": rules}))
    assert main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    size = state_size(compile_site(load_site(path), tmp_path))
    assert size.worst > size.floor > MAX_COOKIE_BYTES
    assert f"site 'heavy' OK, 20 rule(s), state cookie up to {size.worst} bytes" in captured.out
    assert captured.err.splitlines() == [
        f"{path}: warning: the state cookie can reach {size.worst} bytes at worst, over the "
        f"{MAX_COOKIE_BYTES}-byte cap: the oldest day buckets are evicted first, so long "
        "windows may count short for the heaviest visitors",
        f"{path}: warning: the rules' dismissals and conversions alone take {size.floor} "
        f"bytes, over the {MAX_COOKIE_BYTES}-byte cap: a visitor who dismissed many of them "
        "may see the oldest dismissed ones again (fewer or shorter rule ids fit)",
    ]


def test_check_does_not_warn_about_the_demo_sites(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITECUE_CONFIG_DIR", str(CONFIG_DIR))
    assert main(["check"]) == 0
    assert capsys.readouterr().err == ""


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make files and directories read-only even for root (immutable, with chattr), or, for
    anyone else, by their mode; as they were afterwards."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    else:
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
        else:
            for path in paths:
                path.chmod(0o755 if path.is_dir() else 0o644)


def serve_exits(db: str, tmp_path: Path) -> tuple[int, list[str]]:
    """Run ``sitecue serve`` as a user would; its exit code and what it said (it must exit
    by itself within 30 s)."""
    env = {**os.environ, "SITECUE_SECRETS": "cli-test-secret-0000"}
    env.pop("SITECUE_DB", None)
    args = ["serve", "--config", str(CONFIG_DIR), "--db", db, "--port", str(free_port())]
    done = subprocess.run(
        [sys.executable, "-m", "sitecue.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


@pytest.mark.parametrize("case", ["read-only", "not a database", "under a file"])
def test_serve_on_a_database_it_cannot_open_exits_naming_it(tmp_path: Path, case: str) -> None:
    """Exits at once, non-zero, with one line naming the file and the cause (it used to say
    "Application startup failed. Exiting." and then stay up, not listening)."""
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "sitecue.db"
    expected = {
        "read-only": "not writable",
        "not a database": "file is not a database",
        "under a file": "not a directory",
    }[case]
    if case == "read-only":
        assert with_sqlite(db, lambda store: store.healthy()) is True
        with read_only(folder, db, Path(f"{db}.writer-lock")):
            code, said = serve_exits(f"sqlite:///{db}", tmp_path)
    elif case == "not a database":
        db.write_text("these are my notes, not a database\n" * 100)
        code, said = serve_exits(f"sqlite:///{db}", tmp_path)
    else:
        db.write_text("a file where a directory should be")
        code, said = serve_exits(f"sqlite:///{db}/sitecue.db", tmp_path)
    assert code != 0 and len(said) == 1, said
    assert said[0].startswith(f"sitecue: cannot open the database {db}") and expected in said[0]


def test_serve_on_a_postgresql_it_cannot_reach_exits_naming_it(tmp_path: Path) -> None:
    url = f"postgresql://sitecue:hunter2@/sitecue?host={tmp_path}&port=5432"  # no server there
    code, said = serve_exits(url, tmp_path)
    assert code != 0 and len(said) == 1, said
    assert said[0].startswith("sitecue: cannot open the database postgresql://sitecue:***@/")
    assert "hunter2" not in said[0]


def with_sqlite(path: Path, body: Callable[[Store], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = await open_store(f"sqlite:///{path}")
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


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


def test_check_names_every_form_mistake_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = copy.deepcopy(FORMS_SITE)
    fields = site["widgets"]["signup"]["form"]["fields"]
    fields.append({"name": "loyalty_tier", "type": "text"})  # a declared offsite attribute
    del fields[-2]["text"]  # the consent, without the text it shows
    config = write_config(tmp_path, site)
    path = config / "sites" / "forms.json"
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}: $.widgets.signup.form.fields[8].text: expected the exact consent text the"
        " visitor is shown",
        f"{path}: $.widgets.signup.form.fields[9].name: expected a name that is not a declared"
        " offsite attribute ('loyalty_tier' is one): what a visitor types must never pass for"
        " what the site's systems said",
        "2 mistake(s) found",
    ]


def test_the_commands_open_the_store_with_the_configured_goals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first command after an upgrade builds the rollups from the logs: it credits goal
    events by the config's goals, and waits for a config that loads rather than none."""
    from sitecue.cli import _configured_goals
    from sitecue.rules import load_sites
    from sitecue.runtime import goals_of

    monkeypatch.setenv("SITECUE_CONFIG_DIR", str(CONFIG_DIR))
    goals = _configured_goals()
    assert goals == goals_of(load_sites(CONFIG_DIR)) and goals["news"]["subscribe"]
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "news.json").write_text("{")
    monkeypatch.setenv("SITECUE_CONFIG_DIR", str(tmp_path))
    assert _configured_goals() is None


def test_check_reports_ten_mistakes_of_every_kind_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wrong types, an unknown field, bad enums (saying what they take), a missing field, a
    bad regex and references to what is not declared: one run says all ten, each with its
    file and JSON path. Before, the same file took three runs to fix."""
    path = write_ten_mistakes(tmp_path)
    assert main(["check", str(path)]) == 1
    *lines, total = capsys.readouterr().err.splitlines()
    assert total == "10 mistake(s) found"
    assert len(lines) == 10
    for line, (at, expected) in zip(lines, TEN_PROBLEMS, strict=True):
        assert line.startswith(f"{path}: {at}: {expected}")
    assert f"{path}: $.triggers.hover_card.on: expected one of pageview, click, change," in (
        "\n".join(lines)
    )


def _commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[
    tuple[tuple[str, ...], argparse.ArgumentParser]
]:  # fmt: skip
    """Every command of the CLI, with the words that name it, and the groups above them."""
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from _commands(command, (*words, name))


def test_every_command_takes_config_and_those_that_open_the_store_take_db() -> None:
    from sitecue.cli import _parser

    leaves = [(w, p) for w, p in _commands(_parser()) if w and not p._subparsers]
    assert len(leaves) >= 11
    for words, command in leaves:
        assert "--config" in command._option_string_actions, words
    opens_the_store = {("serve",), ("demo",), ("contacts", "import")}
    opens_the_store |= {("apikey", c) for c in ("create", "list", "revoke")}
    for words in opens_the_store:
        assert "--db" in dict(leaves)[words]._option_string_actions, words


def test_config_given_to_a_command_is_the_one_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SITECUE_CONFIG_DIR", str(CONFIG_DIR))  # put back after the test
    monkeypatch.setenv("SITECUE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SITECUE_SECRETS", "cli-config-secret-000")
    monkeypatch.setenv("SITECUE_DB", "")  # unset after the test, whatever --db set it to
    other = tmp_path / "other"
    shutil.copytree(CONFIG_DIR, other, ignore=shutil.ignore_patterns("demo"))
    blog = {**json.loads((other / "sites" / "news.json").read_text()), "site": "blog"}
    (other / "sites" / "blog.json").write_text(json.dumps(blog))

    assert main(["check", "--config", str(other)]) == 0
    assert "site 'blog' OK" in capsys.readouterr().out
    assert main(["token", "mint", "--config", str(other), "--site", "blog", "--contact", "c"]) == 0
    db = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert main(["apikey", "create", "--config", str(other), "--site", "blog", "--db", db]) == 0
    capsys.readouterr()
    assert main(["apikey", "list", "--db", db]) == 0
    assert "blog" in capsys.readouterr().out
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "data" / "sitecue.db").exists()


def test_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    done = subprocess.run(
        [sys.executable, "-m", "sitecue.cli", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == f"sitecue {version('sitecue')}\n"


def test_help_is_plain_text_without_markup() -> None:
    """What argparse prints is read in a terminal: no reStructuredText or Markdown."""
    from sitecue.cli import _parser

    for words, command in _commands(_parser()):
        text = command.format_help()
        for markup in ("``", "`", "**", ":mod:", ":func:", ":class:"):
            assert markup not in text, (words, markup)
        assert not re.search(r"::$", text, re.MULTILINE), words  # a literal block's opening


def test_output_cut_short_by_its_reader_ends_without_a_traceback(tmp_path: Path) -> None:
    """``sitecue schema | head -1``: the reader has gone before the first write."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone: every write fails, however small the output
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sitecue.cli", "schema"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 128 + signal.SIGPIPE


def test_serve_logs_each_successful_reload(tmp_path: Path) -> None:
    """``serve`` shows the sitecue logger's INFO lines (uvicorn's own stay at warning)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns("demo"))
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "reload-log-secret-0000",
    }
    args = ["serve", "--config", str(config), "--port", str(port)]
    with sitecue_process(args, env, log, f"http://127.0.0.1:{port}/healthz") as proc:
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reloaded" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert any(line.startswith("INFO:     reloaded 2 site(s): news, shop;") for line in lines)
