"""A config directory read into a version's files, and a version's files written out where
a node compiles them: what is published, the caps, and that nothing a stored version says
can write outside its own directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sitecue import snapshots
from sitecue.errors import ConfigError
from sitecue.snapshots import compile_files, materialise, read_dir
from sitecue.store.configs import encode_files
from sites import CONFIG_DIR


def config(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, root)
    return root


def test_every_config_file_is_read_but_the_demo_pages_and_hidden_files(tmp_path: Path) -> None:
    root = config(tmp_path)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    (root / "widgets" / ".faq.html.swp").write_bytes(b"\0")
    (root / "audiences" / "shop").mkdir(parents=True)
    (root / "audiences" / "shop" / "staff.ids").write_bytes(b"\1" * 16)
    snapshot = read_dir(root)
    assert "sites/news.json" in snapshot.files and "widgets/_form.html" in snapshot.files
    assert snapshot.files["audiences/shop/staff.ids"] == b"\1" * 16
    assert not [n for n in snapshot.files if n.startswith(("demo/", ".")) or "/." in n]
    assert snapshot.hash == encode_files(snapshot.files)[1]
    assert read_dir(root).hash == snapshot.hash  # the same bytes, the same hash


def test_a_link_out_of_the_directory_is_not_published(tmp_path: Path) -> None:
    """Publishing copies into the database only what the config directory holds, never a
    file the server could read elsewhere (/etc/passwd through a link)."""
    root = config(tmp_path)
    (tmp_path / "secret.html").write_text("secret")
    (root / "widgets" / "out.html").symlink_to(tmp_path / "secret.html")
    (root / "widgets" / "in.html").symlink_to(root / "widgets" / "faq.html")
    with pytest.raises(ConfigError) as err:
        read_dir(root)
    assert [(p.file, p.expected) for p in err.value.problems] == [
        (str(root / "widgets" / "out.html"), "expected a file inside the config directory, "
         "not a link out")
    ]  # fmt: skip
    (root / "widgets" / "out.html").unlink()
    assert read_dir(root).files["widgets/in.html"] == (root / "widgets" / "faq.html").read_bytes()


def test_the_caps_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = config(tmp_path)
    monkeypatch.setattr(snapshots, "MAX_FILE_BYTES", 4000)
    with pytest.raises(ConfigError) as err:
        read_dir(root)
    assert str(root / "widgets" / "_form-style.html") in str(err.value)
    assert "expected a file of at most 4000 bytes" in str(err.value)
    monkeypatch.setattr(snapshots, "MAX_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(snapshots, "MAX_FILES", 3)
    with pytest.raises(ConfigError, match="expected at most 3 files"):
        read_dir(root)
    monkeypatch.setattr(snapshots, "MAX_FILES", 1000)
    monkeypatch.setattr(snapshots, "MAX_TOTAL_BYTES", 10_000)
    with pytest.raises(ConfigError, match="expected at most 10000 bytes"):
        read_dir(root)


def test_a_version_is_written_out_whole_once(tmp_path: Path) -> None:
    snapshot = read_dir(config(tmp_path))
    parent = tmp_path / "data" / "configs"
    directory = materialise(parent, snapshot.files, snapshot.hash)
    assert directory == parent / snapshot.hash
    assert read_dir(directory).files == snapshot.files
    assert materialise(parent, snapshot.files, snapshot.hash) == directory  # kept
    assert sorted(p.name for p in parent.iterdir()) == [snapshot.hash]  # no scratch left


@pytest.mark.parametrize(
    "name", ["../escaped.txt", "sites/../../escaped.txt", "/tmp/escaped.txt", ".bashrc"]
)
def test_a_version_naming_a_file_outside_writes_nothing(tmp_path: Path, name: str) -> None:
    """A version forged in the database (its hash recomputed to match) is refused before
    anything is written, and its scratch directory removed."""
    files = {"sites/news.json": b"{}", name: b"owned"}
    _, digest = encode_files(files)
    parent = tmp_path / "data" / "configs"
    with pytest.raises(ConfigError, match="expected a file name inside the directory"):
        materialise(parent, files, digest)
    assert not list(tmp_path.rglob("escaped.txt")) and not list(tmp_path.rglob(".bashrc"))
    assert os.listdir(parent) == []


def test_files_that_do_not_match_the_hash_are_refused(tmp_path: Path) -> None:
    files = {"sites/news.json": b"{}"}
    with pytest.raises(ConfigError, match="expected files matching their hash"):
        materialise(tmp_path, files, encode_files({"other": b""})[1])
    with pytest.raises(ConfigError):
        materialise(tmp_path, files, "../" * 3 + "x")


def test_compile_problems_name_the_files_as_the_operator_knows_them(tmp_path: Path) -> None:
    root = config(tmp_path)
    (root / "sites" / "news.json").write_text('{"site": "news", "origins": [], "rules": 3}')
    snapshot = read_dir(root)
    directory = materialise(tmp_path / "out", snapshot.files, snapshot.hash)
    with pytest.raises(ConfigError) as err:
        compile_files(directory, lambda name: f"version 9: {name}")
    assert [str(p) for p in err.value.problems] == [
        "version 9: sites/news.json: $.rules: expected `array`, got `int`"
    ]
