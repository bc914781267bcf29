"""One config for the whole fleet: each worker serves the live config version of the store
and follows it within seconds.

At start, a fresh store gets the node's config directory as version 1. Otherwise the
worker serves the live version; when the directory differs from it, the directory is
published only if it was edited on this node since the node last read it (a restart after
editing, or SIGHUP with several workers, which uvicorn answers by restarting them) or when
the app is told to (the demo); else the difference is logged once, with the command that
publishes it. ``POST /v1/reload`` and SIGHUP (one worker) publish the directory.

Every POLL_S seconds (at once on PostgreSQL, which NOTIFYs each publication to a LISTENing
connection per worker) each worker reads the live version's number and hash; a newer one is
fetched, written out under ``<data dir>/configs/<hash>`` (see snapshots), compiled and
swapped in whole. One that does not compile on this node (a template it cannot read, a
webhook's secret missing from its environment) is logged once and skipped: the version
before it keeps serving. Versions only grow, so a worker never goes back to an older one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, Problem, StoreUnavailable
from .keyring import Keyring
from .runtime import Served
from .snapshots import Snapshot, compile_files, materialise, read_dir
from .store import ConfigHead

if TYPE_CHECKING:
    from .rules import CompiledSite
    from .runtime import Runtime
    from .settings import Settings

__all__ = ["POLL_S", "ConfigVersions", "compile_dir", "configs_dir"]

log = logging.getLogger("sitecue")

POLL_S = 1.0  # how often a worker asks the store for the live version
READ = "read"  # the file holding the hash of the config directory as the node last read it


def configs_dir(settings: Settings) -> Path:
    """Where this node writes out the versions it compiles (one folder per hash)."""
    return settings.data_dir / "configs"


def compile_dir(settings: Settings) -> tuple[Snapshot, dict[str, CompiledSite]]:
    """Read the node's config directory once and compile exactly those bytes (problems
    name its files); ConfigError if it does not compile."""
    snapshot = read_dir(settings.config_dir)
    directory = materialise(configs_dir(settings), snapshot.files, snapshot.hash)
    sites = compile_files(
        directory,
        lambda name: str(settings.config_dir / name),
        settings.allow_origins,
        Keyring(settings.secrets),
    )
    return snapshot, sites


def _now() -> int:
    return time.time_ns() // 1_000_000


class ConfigVersions:
    """This worker's side of config versions (see the module's docstring)."""

    def __init__(self, runtime: Runtime, snapshot: Snapshot, *, publish: bool = False) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self._snapshot = snapshot  # the directory as this app was built from it
        self._publish = publish
        self._lock = asyncio.Lock()  # one apply or reload at a time
        self._refused: set[int] = set()  # versions that did not compile here
        self._unwritten: set[int] = set()  # versions the disk refused (logged once each)
        self._down = False  # the store failed the last poll (logged once per outage)
        self._task: asyncio.Task[None] | None = None
        self._hangups: set[asyncio.Task[list[Problem]]] = set()
        self._wake = asyncio.Event()  # set by PostgreSQL's NOTIFY of a new version
        self._unlisten: Callable[[], Awaitable[None]] | None = None

    @property
    def _record(self) -> Path:
        return configs_dir(self.settings) / READ

    def _edited_here(self, digest: str) -> bool:
        """The directory differs from how this node last read it."""
        try:
            return self._record.read_text().strip() != digest
        except OSError:
            return False  # never read here (a new node): the fleet's version wins

    def _remember(self, digest: str) -> None:
        record = self._record
        scratch = record.with_name(f".{READ}-{os.getpid()}")
        scratch.write_text(digest)
        scratch.replace(record)

    async def start(self, sites: dict[str, CompiledSite]) -> None:
        """Serve the live version (publishing the directory as the rules above say), then
        follow the store. ``sites`` are the directory's, compiled."""
        snapshot, store, runtime = self._snapshot, self.runtime.store, self.runtime
        head = await store.config_version()
        if head is None:
            head, _ = await store.publish_config(
                snapshot.files, _who(), "the config directory, at first start", _now(),
                only_if_empty=True,
            )  # fmt: skip
        if head.hash != snapshot.hash and (self._publish or self._edited_here(snapshot.hash)):
            head, _ = await store.publish_config(
                snapshot.files, _who(), f"{self.settings.config_dir}, edited, at start", _now()
            )
        self._remember(snapshot.hash)
        if head.hash == snapshot.hash:
            runtime.swap(sites, Served(head.version, head.hash, _now()))
            log.info("serving config version %d (%s)", head.version, head.hash[:12])
        else:
            log.warning(
                "%s differs from the live config version %d: this node serves version %d; "
                "to make the directory live everywhere: sitecue config push --config %s",
                self.settings.config_dir, head.version, head.version, self.settings.config_dir,
            )  # fmt: skip
            runtime.swap(sites, None)
            await self._apply(head)
        try:
            self._unlisten = await store.listen_configs(self._wake.set)
        except StoreUnavailable as err:  # the polls still find new versions
            log.warning("config versions: not notified of new versions, polling: %s", err)
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        for task in [self._task, *self._hangups]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._unlisten is not None:
            with contextlib.suppress(StoreUnavailable):
                await self._unlisten()

    def hangup(self) -> None:
        """SIGHUP: reload, as POST /v1/reload does (the signal handler cannot await)."""
        task = asyncio.create_task(self.reload(f"SIGHUP, {_who()} pid {os.getpid()}"))
        self._hangups.add(task)
        task.add_done_callback(self._hangups.discard)

    async def reload(self, author: str) -> list[Problem]:
        """Check the config directory, publish it as the live version and serve it here at
        once. A config that does not compile changes nothing: its problems are returned
        (and logged), and the old version keeps serving."""
        try:
            snapshot, sites = await asyncio.to_thread(compile_dir, self.settings)
        except ConfigError as err:
            log.error("reload refused, the old config keeps serving:\n%s", err)
            return err.problems
        head, made = await self.runtime.store.publish_config(
            snapshot.files, author, f"{self.settings.config_dir}, reloaded", _now()
        )
        self._remember(snapshot.hash)
        async with self._lock:
            served = self.runtime.config
            if head.hash == snapshot.hash and (served is None or head.version >= served.version):
                self.runtime.swap(sites, Served(head.version, head.hash, _now()))
        log.info(
            "reloaded %d site(s): %s; config version %d%s",
            len(sites), ", ".join(sorted(sites)), head.version, "" if made else " (unchanged)",
        )  # fmt: skip
        return []

    async def check(self) -> None:
        """Apply the live version if it is newer than the one served here."""
        head = await self.runtime.store.config_version()
        if head is None or head.version in self._refused:
            return
        served = self.runtime.config
        if served is not None and head.version <= served.version:
            return
        async with self._lock:
            served = self.runtime.config
            newer = served is None or head.version > served.version
            if newer and head.version not in self._refused:
                await self._apply(head)

    async def _apply(self, head: ConfigHead) -> None:
        """Fetch, write out, compile and swap in a version; log and skip one that does not
        compile here."""
        try:
            version = await self.runtime.store.config(head.version)
            if version is None:
                return
            settings = self.settings
            directory = await asyncio.to_thread(
                materialise, configs_dir(settings), version.files, version.hash
            )
            sites = await asyncio.to_thread(
                compile_files,
                directory,
                lambda name: f"config version {version.version}: {name}",
                settings.allow_origins,
                self.runtime.keyring,
            )
        except OSError as err:  # this node's disk, not the version: tried again next poll
            if head.version not in self._unwritten:
                self._unwritten.add(head.version)
                log.error("config version %d cannot be written out here: %s", head.version, err)
            return
        except ConfigError as err:
            self._refused.add(head.version)
            served = self.runtime.config
            kept = f"version {served.version}" if served is not None else "the config directory"
            log.error(
                "config version %d does not compile on this node; %s keeps serving:\n%s",
                head.version, kept, err,
            )  # fmt: skip
            return
        self.runtime.swap(sites, Served(version.version, version.hash, _now()))
        log.info(
            "applied config version %d (%s) by %s: %s",
            version.version, version.hash[:12], version.author, version.message,
        )  # fmt: skip

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            self._wake.clear()
            try:
                await self.check()
            except StoreUnavailable as err:
                if not self._down:
                    log.warning("config versions: store unavailable, polling on: %s", err)
                self._down = True
                continue
            except Exception:
                log.exception("config versions: polling failed; polling on")
            self._down = False


def _who() -> str:
    return socket.gethostname()
