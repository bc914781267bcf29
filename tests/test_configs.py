"""Config versions in the store, on both engines (SQLite and a real PostgreSQL): numbered
in order across processes, deduplicated by content, listed newest first, and checked
against their hash when read back."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import pytest

from sitecue.errors import ConfigError
from sitecue.store import ConfigHead, Store, open_store
from sitecue.store.configs import decode_files, encode_files, safe_name
from stores import with_store

FILES = {"sites/news.json": b'{"site": "news"}', "widgets/faq.html": b"<p>FAQ</p>"}
NEWER = {**FILES, "widgets/faq.html": b"<p>FAQ, 14 days</p>"}


def test_a_fresh_store_has_no_version_and_the_first_publication_is_1(store_url: str) -> None:
    async def body(store: Store) -> None:
        assert await store.config_version() is None
        assert await store.config_history() == []
        head, made = await store.publish_config(FILES, "ops@a", "first", 1_000)
        assert made and head == ConfigHead(1, encode_files(FILES)[1])
        assert await store.config_version() == head
        version = await store.config(1)
        assert version is not None and version.files == FILES
        assert (version.author, version.message, version.created) == ("ops@a", "first", 1_000)
        assert await store.config(2) is None

    with_store(store_url, body)


def test_versions_grow_and_the_same_files_make_no_new_one(store_url: str) -> None:
    async def body(store: Store) -> None:
        await store.publish_config(FILES, "a", "one", 1)
        again, made = await store.publish_config(FILES, "b", "same files", 2)
        assert not made and again.version == 1
        two, made = await store.publish_config(NEWER, "b", "two", 3)
        assert made and two.version == 2
        back, made = await store.publish_config(FILES, "c", "rollback to 1", 4)
        assert made and back == ConfigHead(3, encode_files(FILES)[1])  # a new number
        history = await store.config_history()
        assert [(v.version, v.author, v.message) for v in history] == [
            (3, "c", "rollback to 1"),
            (2, "b", "two"),
            (1, "a", "one"),
        ]
        assert history[0].size == len(encode_files(FILES)[0])
        assert [v.version for v in await store.config_history(limit=1)] == [3]

    with_store(store_url, body)


def test_only_if_empty_publishes_nothing_once_a_version_exists(store_url: str) -> None:
    """A node's first start publishes its directory only into a fresh store."""

    async def body(store: Store) -> None:
        first, made = await store.publish_config(FILES, "node-a", "", 1, only_if_empty=True)
        assert made and first.version == 1
        kept, made = await store.publish_config(NEWER, "node-b", "", 2, only_if_empty=True)
        assert not made and kept == first

    with_store(store_url, body)


def test_nodes_publishing_at_once_get_consecutive_numbers(store_url: str) -> None:
    async def main() -> list[int]:
        nodes = [await open_store(store_url) for _ in range(4)]
        try:
            made = await asyncio.gather(
                *(
                    s.publish_config({"sites/x.json": str(i).encode()}, f"n{i}", "", i)
                    for i, s in enumerate(nodes)
                )
            )
            assert all(m for _, m in made)
            return sorted(h.version for h, _ in made)
        finally:
            for s in nodes:
                await s.close()

    assert asyncio.run(main()) == [1, 2, 3, 4]


def test_a_version_altered_in_the_database_is_refused(store_url: str) -> None:
    """Someone writing to the table directly cannot slip in files that do not match the
    hash; a hash rewritten to match still meets the name checks (see test_snapshots)."""
    with_store(store_url, lambda s: s.publish_config(FILES, "a", "", 1))
    forged, _ = encode_files({"sites/news.json": b"{}"})
    if store_url.startswith("sqlite"):
        db = sqlite3.connect(store_url.removeprefix("sqlite:///"))
        db.execute("UPDATE config_versions SET files = ?", (forged,))
        db.commit()
        db.close()
    else:

        async def alter() -> None:
            db = await asyncpg.connect(store_url)
            await db.execute("UPDATE config_versions SET files = $1", forged)
            await db.close()

        asyncio.run(alter())
    with pytest.raises(ConfigError, match="config version 1: \\$: expected files matching"):
        with_store(store_url, lambda s: s.config(1))


@pytest.mark.parametrize(
    "name",
    ["../escape", "/etc/passwd", "sites/../../x", ".git/config", "sites/.hidden", "a//b", "",
     "a\\b", "sites/\x00.json", "x/" * 20 + "deep"],
)  # fmt: skip
def test_names_that_could_leave_the_directory_are_unsafe(name: str) -> None:
    assert not safe_name(name)
    blob, digest = encode_files({name: b"x"})
    with pytest.raises(ConfigError, match="expected relative file names"):
        decode_files(7, blob, digest)


def test_ordinary_names_are_safe() -> None:
    for name in ["sites/news.json", "widgets/_form.html", "audiences/shop/staff.ids", "a b~"]:
        assert safe_name(name)
