"""A config directory as bytes, and bytes as a config directory: what a config version
holds, read from disk once (so what is checked is what is published) and written out
again where a node compiles it.

Read: every file under the directory but ``demo/`` (the demo's pages) and hidden ones
(``.git``, editors' swap files), within the caps of :mod:`sitecue.store.configs`. A link
is followed only when it ends inside the directory: publishing never copies what the
server could read elsewhere into the database.

Written: into a content-addressed directory (its name is the version's hash, checked
against the files), made under a temporary name and renamed into place, so workers of
one node materialising the same version at once never see half of it. Each name is
checked again (:func:`~sitecue.store.configs.safe_name`) and each file created anew, never
through an existing link: a version altered in the database cannot write outside its
directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from .errors import ConfigError, Problem
from .keyring import Keyring
from .rules import CompiledSite, load_sites
from .store.configs import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_TOTAL_BYTES,
    encode_files,
    safe_name,
)

__all__ = ["Snapshot", "compile_files", "materialise", "read_dir"]

SKIPPED = frozenset({"demo"})  # top-level folders that are not config (the demo's pages)


class Snapshot(NamedTuple):
    """The files of a config directory (relative path to content) and their hash."""

    files: dict[str, bytes]
    hash: str


def read_dir(root: Path) -> Snapshot:
    """Every config file under ``root``; a ConfigError names each file over a cap, with a
    name that cannot be stored, or linking out of the directory."""
    problems: list[Problem] = []
    files: dict[str, bytes] = {}
    total = 0
    base = root.resolve()

    def walk(folder: Path, prefix: str, depth: int) -> None:
        nonlocal total
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.startswith(".") or (depth == 0 and entry.name in SKIPPED):
                continue
            path = Path(entry.path)
            name = f"{prefix}{entry.name}"
            if entry.is_symlink() and not path.resolve().is_relative_to(base):
                problems.append(
                    Problem(
                        "$",
                        "expected a file inside the config directory, not a link out",
                        str(path),
                    )
                )
                continue
            if entry.is_dir():
                if depth + 1 >= MAX_DEPTH:
                    problems.append(Problem("$", f"expected at most {MAX_DEPTH} levels", str(path)))
                    continue
                walk(path, f"{name}/", depth + 1)
            elif entry.is_file():
                if not safe_name(name):
                    problems.append(
                        Problem("$", "expected a name without control characters or \\", str(path))
                    )
                    continue
                size = entry.stat().st_size
                if size > MAX_FILE_BYTES:
                    problems.append(
                        Problem(
                            "$",
                            f"expected a file of at most {MAX_FILE_BYTES} bytes, it has {size}",
                            str(path),
                        )
                    )
                    continue
                data = path.read_bytes()
                files[name] = data
                total += len(data)

    try:
        walk(root, "", 0)
    except OSError as err:
        raise ConfigError(
            [Problem("$", f"expected a readable config directory ({err})", str(root))]
        ) from err
    if len(files) > MAX_FILES:
        problems.append(
            Problem("$", f"expected at most {MAX_FILES} files, it holds {len(files)}", str(root))
        )
    if total > MAX_TOTAL_BYTES:
        problems.append(
            Problem("$", f"expected at most {MAX_TOTAL_BYTES} bytes, it holds {total}", str(root))
        )
    if problems:
        raise ConfigError(problems)
    _, digest = encode_files(files)
    return Snapshot(files, digest)


def materialise(parent: Path, files: Mapping[str, bytes], digest: str) -> Path:
    """``files`` written out as ``parent/<digest>`` (kept if already there) and its path.
    ``digest`` must be the files' hash (see encode_files): it names the directory."""
    if encode_files(files)[1] != digest:
        raise ConfigError([Problem("$", "expected files matching their hash", digest[:12])])
    target = parent / digest
    if target.is_dir():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    scratch = parent / f".new-{digest[:12]}-{os.getpid()}-{secrets.token_hex(4)}"
    scratch.mkdir(mode=0o700)
    try:
        for name, data in files.items():
            if not safe_name(name):
                why = f"expected a file name inside the directory, got {name!r}"
                raise ConfigError([Problem("$", why, digest[:12])])
            path = scratch.joinpath(*name.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL | O_NOFOLLOW: a new file, never through a link (belt and braces: the
            # scratch directory is ours and new, and names were checked).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        try:
            scratch.rename(target)
        except OSError:
            if not target.is_dir():  # another worker's rename won the race: use theirs
                raise
    except (OSError, ConfigError):
        # A ConfigError is the version's fault; an OSError (a full disk) the node's, for
        # the caller to try again later.
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)  # left only when the rename lost
    return target


def compile_files(
    directory: Path,
    shown: Callable[[str], str],
    extra_origins: frozenset[str] = frozenset(),
    keyring: Keyring | None = None,
) -> dict[str, CompiledSite]:
    """Compile the materialised config in ``directory``; a problem's file is named by
    ``shown`` (of its path relative to the directory), as the operator knows it."""
    try:
        return load_sites(directory, extra_origins, keyring)
    except ConfigError as err:
        raise ConfigError(
            [p._replace(file=_rename(p.file, directory, shown)) for p in err.problems]
        ) from None


def _rename(file: str, directory: Path, shown: Callable[[str], str]) -> str:
    try:
        return shown(Path(file).relative_to(directory).as_posix())
    except ValueError:
        return file
