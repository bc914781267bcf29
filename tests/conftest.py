"""Fixtures for the admin API tests: a server's settings in a temporary directory, the real
app on them, and admin keys made the way an operator makes them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN
from postgres_cluster import postgres_cluster
from sitecue.app import build_app
from sitecue.settings import Settings
from sites import CONFIG_DIR


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns("demo"))
    values = {
        "SITECUE_DATA_DIR": str(tmp_path / "data"),
        "SITECUE_SECRETS": "admin-test-secret-0000",
        "SITECUE_CONFIG_DIR": str(config),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        yield client


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One throwaway PostgreSQL cluster for the whole run; tests make databases in it."""
    with postgres_cluster() as url:
        yield url
