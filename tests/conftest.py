"""Fixtures: a server's settings in a temporary directory and the real app on them; one
throwaway PostgreSQL cluster per run; and an empty database on each engine."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from starlette.testclient import TestClient

from admin_keys import ORIGIN
from postgres_cluster import new_database, postgres_cluster
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


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sitecue.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    with new_database(server, "t") as url:
        yield url


# Property tests draw the same examples on every run (seeded from each test's name, with no
# database of past failures) and have no deadline: a test fails for a reason in the code,
# never for the draw or for how busy the machine is.
settings.register_profile(
    "sitecue",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("sitecue")
