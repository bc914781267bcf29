"""Fresh databases for a benchmark: a temporary SQLite file, or a new database on a
throwaway PostgreSQL cluster, per tag; and copies of a filled one."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from postgres_cluster import postgres_cluster


@contextmanager
def engine_urls(engine: str) -> Iterator[Callable[[str], str]]:
    """A function giving a fresh database URL per tag, on the engine (sqlite or postgres)."""
    if engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="sitecue-bench-") as tmp:
            yield lambda tag: f"sqlite:///{tmp}/{tag}.db"
        return
    with postgres_cluster(fsync=True) as server:

        async def create(tag: str) -> None:
            db = await asyncpg.connect(server)
            await db.execute(f"CREATE DATABASE bench_{tag}")
            await db.close()

        def url_for(tag: str) -> str:
            asyncio.run(create(tag))
            return server.replace("@/postgres?", f"@/bench_{tag}?")

        yield url_for


def copy_database(url: str, tag: str) -> str:
    """A copy of the (closed) database at ``url``, as it is now, under the tag ``tag``: the
    SQLite online backup, or a PostgreSQL database made from it as a template."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        copy = str(Path(path).with_name(f"{tag}.db"))
        source, target = sqlite3.connect(path), sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return f"sqlite:///{copy}"
    head, rest = url.split("@/", 1)
    name, query = rest.split("?", 1)

    async def create() -> None:
        db = await asyncpg.connect(f"{head}@/postgres?{query}")
        try:
            await db.execute(f"CREATE DATABASE bench_{tag} TEMPLATE {name}")
        finally:
            await db.close()

    asyncio.run(create())
    return f"{head}@/bench_{tag}?{query}"
