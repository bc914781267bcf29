"""Settings: command-line flags, then ``SITECUE_*`` environment variables, then defaults.

A bad value fails at start, naming the variable. Secrets have no default outside the demo,
which keeps a generated one in its data directory so that other commands run with the same
``SITECUE_DATA_DIR`` (minting a token, creating a key) agree with the running demo.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .keyring import fingerprint
from .metric_files import check_directory

__all__ = ["Settings", "SettingsError", "database_url", "positive", "setting"]

DEFAULT_CONFIG_DIR = "config"
DEFAULT_DATA_DIR = ".sitecue"


class SettingsError(ValueError):
    """A setting that is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    data_dir: Path
    db: str
    secrets: list[str] = field(repr=False)  # the signing one first, then the others that verify
    allow_origins: frozenset[str] = frozenset()  # added to every site's own origins (the demo's)
    key_names: tuple[str, ...] = ()  # the secrets' names, in their order (for the log)
    metrics_dir: Path | None = None  # the node's, made by `sitecue serve` for its workers
    same_origin: bool = False  # the demo: a page may call the origin it was served on (origins.py)

    @classmethod
    def load(
        cls,
        *,
        config_dir: str | None = None,
        db: str | None = None,
        demo: bool = False,
        allow_origins: frozenset[str] = frozenset(),
        env: Mapping[str, str] = os.environ,
    ) -> Settings:
        data_dir = Path(env.get("SITECUE_DATA_DIR", DEFAULT_DATA_DIR))
        config = Path(config_dir or env.get("SITECUE_CONFIG_DIR", DEFAULT_CONFIG_DIR))
        if not (config / "sites").is_dir():
            raise SettingsError(
                f"SITECUE_CONFIG_DIR: expected a directory with a sites/ folder, got {config}"
            )
        url = database_url(db, env)
        entries = [k for k in env.get("SITECUE_SECRETS", "").split(",") if k]
        if not entries:
            if not demo and not (data_dir / "secret").exists():
                raise SettingsError(
                    "SITECUE_SECRETS: expected one or more comma-separated secrets, each"
                    " NAME:SECRET or a bare secret (the first signs, all verify)"
                )
            entries = [_demo_secret(data_dir)]
        names, keys = _signing_first(_named(entries), env.get("SITECUE_SIGNING_KEY", ""))
        extra = {o for o in env.get("SITECUE_ALLOW_ORIGINS", "").split(",") if o}
        metrics = env.get("SITECUE_METRICS_DIR") or None
        return cls(
            config, data_dir, url, keys, frozenset(extra) | allow_origins, names,
            None if metrics is None else _metrics_dir(metrics),
        )  # fmt: skip


KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
"""What may name a key in ``NAME:SECRET``: a secret whose text before its first colon is not
such a name (``p@ss:word…``) is read whole, as a bare secret, as before names existed."""


def _named(entries: list[str]) -> list[tuple[str, str]]:
    """``SITECUE_SECRETS``' entries as (name, secret): ``NAME:SECRET``, or a bare secret named
    by its fingerprint. Error messages name keys, never quote a secret."""
    keys: list[tuple[str, str]] = []
    for i, entry in enumerate(entries, 1):
        name, colon, secret = entry.partition(":")
        if not (colon and KEY_NAME.fullmatch(name)):
            name, secret = fingerprint(entry), entry
        if len(secret) < 16:
            raise SettingsError(
                f"SITECUE_SECRETS: expected secrets of at least 16 characters (entry {i},"
                f" key {name}, has {len(secret)})"
            )
        if any(name == n for n, _ in keys):
            raise SettingsError(f"SITECUE_SECRETS: expected each key once, got two named {name}")
        if any(secret == s for _, s in keys):
            raise SettingsError(
                f"SITECUE_SECRETS: expected each secret once, got key {name}'s twice"
            )
        keys.append((name, secret))
    return keys


def _signing_first(keys: list[tuple[str, str]], signing: str) -> tuple[tuple[str, ...], list[str]]:
    """The keys' names and secrets with the one ``SITECUE_SIGNING_KEY`` names (by name or
    fingerprint; unset: the first entry) moved first, as the keyring expects it."""
    if signing:
        found = [i for i, (n, s) in enumerate(keys) if signing in (n, fingerprint(s))]
        if not found:
            # Quote the value only when it looks like a name: pasted by mistake, a secret
            # must not end up in the log.
            shown = (
                f"got {signing!r}"
                if KEY_NAME.fullmatch(signing)
                and len(signing) < 16
                and all(signing != s for _, s in keys)
                else "got a value that names none"
            )
            raise SettingsError(
                "SITECUE_SIGNING_KEY: expected the name (or fingerprint) of one of"
                f" SITECUE_SECRETS' keys ({', '.join(n for n, _ in keys)}), {shown}"
            )
        keys = [keys[found[0]], *keys[: found[0]], *keys[found[0] + 1 :]]
    return tuple(n for n, _ in keys), [s for _, s in keys]


def _metrics_dir(text: str) -> Path:
    try:
        return check_directory(Path(text))
    except ValueError as err:
        raise SettingsError(
            f"SITECUE_METRICS_DIR (set by sitecue serve for its workers): expected {err}"
        ) from None


def database_url(db: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """``--db``, else ``SITECUE_DB``, else SQLite in ``SITECUE_DATA_DIR``."""
    data_dir = Path(env.get("SITECUE_DATA_DIR", DEFAULT_DATA_DIR))
    return db or env.get("SITECUE_DB") or f"sqlite:///{data_dir / 'sitecue.db'}"


def _demo_secret(data_dir: Path) -> str:
    """The demo's secret, made once and kept (readable by its owner only)."""
    path = data_dir / "secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def positive(kind: type[int] | type[float]) -> Any:
    def cast(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise ValueError(text)
        return value

    cast.__name__ = f"positive {'whole number' if kind is int else 'number'}"  # for argparse
    return cast


def setting(
    flag: Any, env: Mapping[str, str], variable: str, cast: Any, default: Any, meaning: str
) -> Any:
    """The flag's value, else the variable's (cast, failing fast naming it), else the default."""
    if flag is not None:
        return flag
    text = env.get(variable)
    if text is None or text == "":
        return default
    try:
        return cast(text)
    except ValueError:
        raise SettingsError(f"{variable}: expected {meaning}, got {text!r}") from None
