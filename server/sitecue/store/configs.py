"""Config versions in the store: every file of a config directory kept as one immutable,
numbered version, with who published it, when, why and a hash of its content.

Workers poll the newest version's number and hash (one row by its primary key) and fetch
the files only when that changes. Versions only grow: a rollback publishes an older
version's files again as a new one, so the live version is always the newest. Publishing
the files the live version already holds makes no new version.

The files travel as one msgpack map of relative path to bytes, its keys sorted, and the
hash is the SHA-256 of exactly those bytes: a version read back is checked against its
hash, and its names against :func:`safe_name`, before anything is written to disk.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from ..errors import ConfigError, Problem

if TYPE_CHECKING:
    import asyncpg  # the postgres extra: only its store calls in here

__all__ = [
    "CONFIG_CHANNEL",
    "CONFIG_COLUMNS",
    "CONFIG_HISTORY",
    "CONFIG_INFO_COLUMNS",
    "CONFIG_LATEST",
    "CONFIG_ONE",
    "INSERT_CONFIG",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "ConfigHead",
    "ConfigInfo",
    "ConfigVersion",
    "decode_files",
    "encode_files",
    "info_of",
    "publish_postgres",
    "publish_sqlite",
    "safe_name",
    "version_of",
]

MAX_FILES = 2_000
MAX_FILE_BYTES = 32 << 20  # an audience id file of 4 million ids (8 bytes an id)
MAX_TOTAL_BYTES = 64 << 20
MAX_DEPTH = 16

CONFIG_INFO_COLUMNS = "version, hash, author, message, created, length(files)"
CONFIG_COLUMNS = "version, hash, author, message, created, files"
CONFIG_LATEST = "SELECT version, hash FROM config_versions ORDER BY version DESC LIMIT 1"
CONFIG_ONE = f"SELECT {CONFIG_COLUMNS} FROM config_versions WHERE version = ?"
CONFIG_HISTORY = f"SELECT {CONFIG_INFO_COLUMNS} FROM config_versions ORDER BY version DESC LIMIT ?"
INSERT_CONFIG = f"INSERT INTO config_versions ({CONFIG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
CONFIG_CHANNEL = "sitecue_config"  # PostgreSQL: NOTIFY'd with the new version's number

# A stored name: relative, '/'-separated, no part empty, hidden ('.', '..' included) or
# holding a backslash or a control character. What materialising a version may write
# is decided by this, so a version crafted in the database cannot climb out of its
# directory or plant a dotfile.
_PART = re.compile(r"[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]{0,254}")


class ConfigHead(NamedTuple):
    """Which version is live: its number and content hash (what workers poll)."""

    version: int
    hash: str


class ConfigInfo(msgspec.Struct, frozen=True):
    """A version as history lists it: who, when (epoch ms), why, and its size in bytes."""

    version: int
    hash: str
    author: str
    message: str
    created: int
    size: int = 0


class ConfigVersion(msgspec.Struct, frozen=True):
    """A version with its files: relative path to content."""

    version: int
    hash: str
    author: str
    message: str
    created: int
    files: dict[str, bytes]


_encode = msgspec.msgpack.Encoder(order="sorted").encode
_decode = msgspec.msgpack.Decoder(dict[str, bytes]).decode


def safe_name(name: str) -> bool:
    """A stored file name that stays inside its directory when written out."""
    parts = name.split("/")
    return 0 < len(parts) <= MAX_DEPTH and all(_PART.fullmatch(p) for p in parts)


def encode_files(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """The stored form of ``files`` and its hash (SHA-256, hex)."""
    blob = _encode(dict(files))
    return blob, hashlib.sha256(blob).hexdigest()


def decode_files(version: int, blob: bytes, expected_hash: str) -> dict[str, bytes]:
    """The files of a stored version, checked: the hash matches, the names are safe and
    the sizes within the caps. Anything else is a ConfigError (the version is not used)."""

    def refuse(why: str) -> ConfigError:
        return ConfigError([Problem("$", why, f"config version {version}")])

    if len(blob) > MAX_TOTAL_BYTES + 64 * MAX_FILES:
        raise refuse(f"expected at most {MAX_TOTAL_BYTES} bytes of files")
    if hashlib.sha256(blob).hexdigest() != expected_hash:
        raise refuse("expected files matching the version's hash (the row was altered)")
    try:
        files = _decode(blob)
    except msgspec.DecodeError as err:
        raise refuse(f"expected a map of file names to contents ({err})") from None
    if len(files) > MAX_FILES:
        raise refuse(f"expected at most {MAX_FILES} files")
    for name, data in files.items():
        if not safe_name(name):
            raise refuse(f"expected relative file names inside the config directory, got {name!r}")
        if len(data) > MAX_FILE_BYTES:
            raise refuse(f"expected files of at most {MAX_FILE_BYTES} bytes ({name})")
    return files


def _next_version(latest: ConfigHead | None, hash: str, only_if_empty: bool) -> int | None:
    """The number a publication gets, or None when it makes no version: the live one
    holds the same files, or (``only_if_empty``: a node's first start) any version exists."""
    if latest is None:
        return 1
    if only_if_empty or latest.hash == hash:
        return None
    return latest.version + 1


def publish_sqlite(
    db: sqlite3.Connection,
    files: Mapping[str, bytes],
    author: str,
    message: str,
    created: int,
    only_if_empty: bool,
) -> tuple[ConfigHead, bool]:
    """SQLite's publication, on the writing connection under the store's write lock: the
    newest version is read and the next inserted in one BEGIN IMMEDIATE transaction, so
    processes publishing at once get consecutive numbers."""
    blob, digest = encode_files(files)
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute(CONFIG_LATEST).fetchone()
        latest = None if row is None else ConfigHead(int(row[0]), str(row[1]))
        number = _next_version(latest, digest, only_if_empty)
        if number is not None:
            db.execute(INSERT_CONFIG, (number, digest, author, message, created, blob))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if number is None:
        assert latest is not None
        return latest, False
    return ConfigHead(number, digest), True


async def publish_postgres(
    db: asyncpg.Connection,
    files: Mapping[str, bytes],
    author: str,
    message: str,
    created: int,
    only_if_empty: bool,
) -> tuple[ConfigHead, bool]:
    """PostgreSQL's publication: nodes publishing at once take turns on an advisory lock
    (numbers are consecutive); the new number is NOTIFY'd on CONFIG_CHANNEL at commit."""
    blob, digest = encode_files(files)
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", _PUBLISH_LOCK)
        row = await db.fetchrow(CONFIG_LATEST)
        latest = None if row is None else ConfigHead(int(row[0]), str(row[1]))
        number = _next_version(latest, digest, only_if_empty)
        if number is not None:
            await db.execute(
                _numbered(INSERT_CONFIG), number, digest, author, message, created, blob
            )
            await db.execute("SELECT pg_notify($1, $2)", CONFIG_CHANNEL, str(number))
    if number is None:
        assert latest is not None
        return latest, False
    return ConfigHead(number, digest), True


_PUBLISH_LOCK = 0x5C10


def _numbered(sql: str) -> str:
    count = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


def version_of(row: Sequence[Any]) -> ConfigVersion:
    """A row of CONFIG_COLUMNS as a checked version (see decode_files)."""
    number, digest = int(row[0]), str(row[1])
    files = decode_files(number, bytes(row[5]), digest)
    return ConfigVersion(number, digest, row[2] or "", row[3] or "", int(row[4]), files)


def info_of(row: Sequence[Any]) -> ConfigInfo:
    """A row of CONFIG_INFO_COLUMNS."""
    return ConfigInfo(
        int(row[0]), str(row[1]), row[2] or "", row[3] or "", int(row[4]), int(row[5])
    )
