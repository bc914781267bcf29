"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, initdb and pg_ctl in
a temporary directory, listening only on a Unix socket there. Nothing is mocked.

PostgreSQL refuses to run as root, so as root (in CI) the cluster runs as the ``postgres``
user that Debian's package creates.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import asyncpg

__all__ = ["Cluster", "postgres_cluster", "stoppable_postgres_cluster"]


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: apt-get install postgresql (make system does)"
        )
    return found[-1]


class Cluster(NamedTuple):
    """A running throwaway cluster: its URL, and a stop and start for outage tests."""

    url: str
    stop: Callable[[], None]
    start: Callable[[], None]


@contextmanager
def postgres_cluster(fsync: bool = False) -> Iterator[str]:
    """Start a cluster; yield the URL of its ``postgres`` database; stop and remove it.
    Tests run without fsync (nothing here must survive a power cut); benchmarks with it."""
    with stoppable_postgres_cluster(fsync) as cluster:
        yield cluster.url


@contextmanager
def stoppable_postgres_cluster(fsync: bool = False) -> Iterator[Cluster]:
    """As postgres_cluster, yielding a Cluster that a test may stop and start again."""
    root = Path(tempfile.mkdtemp(prefix="sitecue-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]

    def run(name: str, *args: str) -> None:
        subprocess.run([*as_user, _bin(name), *args], check=True, capture_output=True)

    data, port = str(root / "data"), "5432"  # a socket in our own directory: no clash
    try:
        run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-k {root} -c listen_addresses='' -p {port} -c max_connections=300"
        options += "" if fsync else " -c fsync=off"
        start = ["-D", data, "-o", options, "-w", "-l", str(root / "log"), "start"]
        run("pg_ctl", *start)
        try:
            yield Cluster(
                f"postgresql://postgres@/postgres?host={root}&port={port}",
                stop=lambda: run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop"),
                start=lambda: run("pg_ctl", *start),
            )
        finally:
            subprocess.run(
                [*as_user, _bin("pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                capture_output=True,  # already stopped by a test that failed: nothing to do
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def new_database(server: str, prefix: str) -> Iterator[str]:
    """An empty database on the cluster at ``server`` (a ``postgres_cluster`` URL), its URL;
    dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        db = await asyncpg.connect(server)
        try:
            await db.execute(sql)
        finally:
            await db.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        yield server.replace("@/postgres?", f"@/{name}?")
    finally:
        asyncio.run(admin(f"DROP DATABASE {name} WITH (FORCE)"))
