"""``sitecue config push|history|diff|rollback``, run as an operator runs them, on the same
settings as the server (SQLite here; the store's side runs on both engines in
test_configs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sitecue.cli import main
from sitecue.snapshots import read_dir
from stores import with_store


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def config(env: dict[str, str]) -> Path:
    return Path(env["SITECUE_CONFIG_DIR"])


def db(env: dict[str, str]) -> str:
    return f"sqlite:///{env['SITECUE_DATA_DIR']}/sitecue.db"


def edit(config: Path, days: int) -> None:
    site_file = config / "sites" / "news.json"
    site_file.write_text(site_file.read_text().replace('"trial_days": 7', f'"trial_days": {days}'))


def test_push_publishes_a_new_version_once(
    env: dict[str, str], config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "config", "push", "-m", "first", "--author", "ana")
    assert status == 0 and f"published {config}/ as config version 1 (news, shop" in out
    assert run(capsys, "config", "push")[1].startswith(f"{config}/ is config version 1 already")
    edit(config, 14)
    status, out, _ = run(capsys, "config", "push", "--config", str(config), "-m", "14 days")
    assert status == 0 and "as config version 2" in out
    (latest, first) = with_store(db(env), lambda s: s.config_history())
    assert (first.author, first.message) == ("ana", "first")
    assert latest.hash == read_dir(config).hash and latest.message == "14 days"
    assert "@" in latest.author  # user@host when not given


def test_push_checks_as_check_does_and_publishes_nothing_bad(
    env: dict[str, str], config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site_file = config / "sites" / "news.json"
    news = json.loads(site_file.read_text())
    site_file.write_text(json.dumps({**news, "rules": [{**news["rules"][0], "priority": "x"}]}))
    status, _, err = run(capsys, "config", "push")
    assert status == 1
    assert f"{site_file}: $.rules[0].priority: expected `int`, got `str`" in err
    assert with_store(db(env), lambda s: s.config_history()) == []
    assert run(capsys, "config", "push", "--config", str(config / "sites"))[0] == 2
    assert run(capsys, "config", "push", "-m", "x" * 1001)[0] == 2


def test_history_diff_and_rollback(
    env: dict[str, str], config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "no config versions yet" in run(capsys, "config", "history")[1]
    run(capsys, "config", "push", "-m", "seven days")
    edit(config, 14)
    (config / "widgets" / "new.html").write_text("<p>new</p>\n")
    run(capsys, "config", "push", "-m", "fourteen days")
    status, out, _ = run(capsys, "config", "diff", "1", "2")
    assert status == 0
    assert "--- v1/sites/news.json\n+++ v2/sites/news.json\n" in out
    assert '-      "data": {"trial_days": 7' in out and '+      "data": {"trial_days": 14' in out
    assert "--- /dev/null\n+++ v2/widgets/new.html\n" in out and "+<p>new</p>" in out
    assert run(capsys, "config", "diff", "2")[1] == ""  # B: the live version
    assert run(capsys, "config", "diff", "1", "9")[0] == 1

    status, out, _ = run(capsys, "config", "rollback", "1", "--author", "bo")
    assert status == 0 and "published version 1's files as config version 3" in out
    assert run(capsys, "config", "diff", "1", "3")[1] == ""
    assert "are live already" in run(capsys, "config", "rollback", "1")[1]
    assert run(capsys, "config", "rollback", "7")[0] == 1

    lines = run(capsys, "config", "history")[1].splitlines()
    assert lines[0].split()[:3] == ["version", "published", "(UTC)"]
    assert lines[1].split()[0] == "3" and lines[1].endswith("bo: rollback to version 1 (live)")
    assert lines[2].endswith(": fourteen days") and lines[3].endswith(": seven days")
    assert len(run(capsys, "config", "history", "-n", "1")[1].splitlines()) == 2


def test_rollback_to_a_version_that_does_not_compile_here_is_refused(
    env: dict[str, str], config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(config, other)
    (other / "widgets" / "faq.html").write_text("{% if %}")
    with_store(db(env), lambda s: s.publish_config(read_dir(other).files, "x", "", 1))
    run(capsys, "config", "push")
    status, _, err = run(capsys, "config", "rollback", "1")
    assert status == 1 and "config version 1: sites/news.json" in err
    assert "version 1 does not compile here: not published" in err
    assert len(with_store(db(env), lambda s: s.config_history())) == 2
