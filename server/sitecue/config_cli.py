"""``sitecue config``: publish the config to every node, and look back.

sitecue config push --config config -m "FAQ trial now 14 days"   # checks, then publishes
sitecue config history                                         # who published what, when
sitecue config diff 3 4                                        # what changed
sitecue config rollback 3 -m "14 days confused people"          # version 3's files, as new

Whoever runs these holds the database's credentials: an operator. Every worker of every
node serves a new version within seconds (see :mod:`sitecue.versions`).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import getpass
import os
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from .errors import ConfigError
from .keyring import Keyring
from .rules import CompiledSite
from .runtime import goals_of
from .settings import Settings, SettingsError, database_url
from .snapshots import Snapshot, compile_files, materialise, read_dir
from .store import ConfigVersion, Goals, Store, open_store

__all__ = ["add_config_commands", "run_config"]

MAX_MESSAGE = 1000
T = TypeVar("T")


def add_config_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``config`` command and its subcommands, on ``sitecue``'s parser."""
    config = commands.add_parser("config", help="publish the config to every node; history")
    sub = config.add_subparsers(dest="config_command", required=True)
    db_help = "database URL (default: as sitecue serve and demo)"
    push = sub.add_parser("push", help="check the config directory and publish it as live")
    push.add_argument("--config", help="config directory (SITECUE_CONFIG_DIR, default ./config)")
    push.add_argument("-m", "--message", default="", help="why (shown in history)")
    push.add_argument("--author", help="who (default: user@host)")
    push.add_argument("--db", help=db_help)
    history = sub.add_parser("history", help="every version: who, when, why; the live one first")
    history.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    history.add_argument("--db", help=db_help)
    diff = sub.add_parser("diff", help="what changed between two versions")
    diff.add_argument("a", type=int, metavar="A")
    diff.add_argument("b", type=int, metavar="B", nargs="?", help="default: the live version")
    diff.add_argument("--db", help=db_help)
    rollback = sub.add_parser("rollback", help="publish an older version's files as live")
    rollback.add_argument("version", type=int, metavar="VERSION")
    rollback.add_argument("-m", "--message", default="", help="why (shown in history)")
    rollback.add_argument("--author", help="who (default: user@host)")
    rollback.add_argument("--db", help=db_help)


def run_config(args: argparse.Namespace) -> int:
    """Run a ``sitecue config`` subcommand; the exit status."""
    if len(getattr(args, "message", "")) > MAX_MESSAGE:
        print(f"--message: expected at most {MAX_MESSAGE} characters", file=sys.stderr)
        return 2
    if args.config_command == "push":
        return _push(args)
    if args.config_command == "history":
        return _history(args)
    if args.config_command == "diff":
        return _diff(args)
    return _rollback(args)


def _keyring() -> Keyring | None:
    """The server's keyring when its secrets are set here (id list files are then checked
    against them, as the server will); otherwise checked as ``sitecue check`` does."""
    try:
        return Keyring(Settings.load().secrets)
    except SettingsError:
        return None


def _check(snapshot: Snapshot, shown: Callable[[str], str]) -> dict[str, CompiledSite]:
    """Compile exactly these files, in a scratch directory; ConfigError names each problem
    by ``shown`` of its file."""
    with tempfile.TemporaryDirectory(prefix="sitecue-config-") as scratch:
        directory = materialise(Path(scratch), snapshot.files, snapshot.hash)
        return dict(compile_files(directory, shown, keyring=_keyring()))


def _with_store(db: str | None, goals: Goals | None, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await open_store(database_url(db), goals)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _author(given: str | None) -> str:
    if given:
        return given[:200]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{user}@{socket.gethostname()}"


def _now() -> int:
    return time.time_ns() // 1_000_000


def _push(args: argparse.Namespace) -> int:
    root = Path(args.config or os.environ.get("SITECUE_CONFIG_DIR", "config"))
    if not (root / "sites").is_dir():
        print(f"--config: expected a directory with a sites/ folder, got {root}", file=sys.stderr)
        return 2
    snapshot = read_dir(root)
    sites = _check(snapshot, lambda name: str(root / name))
    message = args.message or f"sitecue config push {root}"

    async def publish(store: Store) -> tuple[int, bool]:
        head, made = await store.publish_config(
            snapshot.files, _author(args.author), message, _now()
        )
        return head.version, made

    version, made = _with_store(args.db, goals_of(sites), publish)
    names = ", ".join(sorted(sites))
    if made:
        print(f"published {root}/ as config version {version} ({names}, {snapshot.hash[:12]})")
        print("every worker of every node serves it within seconds")
    else:
        print(f"{root}/ is config version {version} already: nothing to publish")
    return 0


def _history(args: argparse.Namespace) -> int:
    versions = _with_store(args.db, None, lambda s: s.config_history(max(1, args.limit)))
    if not versions:
        print("no config versions yet: sitecue serve publishes its config dir at first start")
        return 0
    print(f"{'version':>7}  {'published (UTC)':<19}  {'hash':<12}  {'bytes':>8}  author: message")
    for i, v in enumerate(versions):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v.created / 1000))
        live = " (live)" if i == 0 else ""
        print(f"{v.version:>7}  {when:<19}  {v.hash[:12]:<12}  {v.size:>8}  {v.author}: "
              f"{v.message}{live}")  # fmt: skip
    return 0


def _fetch(store: Store, number: int | None) -> Awaitable[ConfigVersion | None]:
    async def fetch() -> ConfigVersion | None:
        if number is None:
            head = await store.config_version()
            if head is None:
                return None
            return await store.config(head.version)
        return await store.config(number)

    return fetch()


def _diff(args: argparse.Namespace) -> int:
    async def both(store: Store) -> tuple[ConfigVersion | None, ConfigVersion | None]:
        return await _fetch(store, args.a), await _fetch(store, args.b)

    a, b = _with_store(args.db, None, both)
    for number, found in ((args.a, a), (args.b or "live", b)):
        if found is None:
            print(
                f"{'A' if number == args.a else 'B'}: no config version {number}", file=sys.stderr
            )
            return 1
    assert a is not None and b is not None
    out = sys.stdout
    for name in sorted(set(a.files) | set(b.files)):
        old, new = a.files.get(name), b.files.get(name)
        if old == new:
            continue
        try:
            before = [] if old is None else old.decode().splitlines(keepends=True)
            after = [] if new is None else new.decode().splitlines(keepends=True)
        except UnicodeDecodeError:
            sizes = f"{len(old or b'')} -> {len(new or b'')} bytes"
            out.write(f"binary file {name} differs ({sizes})\n")
            continue
        for line in difflib.unified_diff(
            before,
            after,
            f"v{a.version}/{name}" if old is not None else "/dev/null",
            f"v{b.version}/{name}" if new is not None else "/dev/null",
        ):
            out.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    old = _with_store(args.db, None, lambda s: s.config(args.version))
    if old is None:
        print(f"VERSION: no config version {args.version}", file=sys.stderr)
        return 1
    snapshot = Snapshot(old.files, old.hash)
    try:
        sites = _check(snapshot, lambda name: f"config version {old.version}: {name}")
    except ConfigError as err:
        print(err, file=sys.stderr)
        print(f"version {old.version} does not compile here: not published", file=sys.stderr)
        return 1
    message = args.message or f"rollback to version {old.version}"

    async def publish(store: Store) -> tuple[int, bool]:
        head, made = await store.publish_config(old.files, _author(args.author), message, _now())
        return head.version, made

    version, made = _with_store(args.db, goals_of(sites), publish)
    if made:
        print(f"published version {old.version}'s files as config version {version}")
    else:
        print(f"version {old.version}'s files are live already (config version {version})")
    return 0
