"""Settings: command-line flags, then ``SITECUE_*`` environment variables, then defaults.

A bad value fails at start, naming the variable. Secrets have no default outside the demo,
which keeps a generated one in its data directory so that other commands run with the same
``SITECUE_DATA_DIR`` (minting a token, creating a key) agree with the running demo.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    secrets: list[str] = field(repr=False)
    allow_origins: frozenset[str] = frozenset()  # added to every site's own origins (the demo's)
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
        keys = [k for k in env.get("SITECUE_SECRETS", "").split(",") if k]
        if not keys:
            if not demo and not (data_dir / "secret").exists():
                raise SettingsError(
                    "SITECUE_SECRETS: expected one or more comma-separated secrets (the last signs)"
                )
            keys = [_demo_secret(data_dir)]
        if any(len(k) < 16 for k in keys):
            raise SettingsError("SITECUE_SECRETS: expected secrets of at least 16 characters")
        extra = {o for o in env.get("SITECUE_ALLOW_ORIGINS", "").split(",") if o}
        return cls(config, data_dir, url, keys, frozenset(extra) | allow_origins)


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
