"""Fixtures: app, client, CLI runner and a fresh database on every backend.

Every storage-touching test runs on SQLite and, when FEEDSVC_TEST_POSTGRES_URL is set, on
PostgreSQL too. The schema is built by the real Alembic migrations once per session and
backend; each test then starts from empty tables (a copy of the migrated SQLite file, or
TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from feedsvc import create_app, migrate
from feedsvc.clock import FrozenClock
from feedsvc.config import load_settings
from feedsvc.db import Database
from tests.factories import Factory
from tests.hypothesis_profiles import FUZZ, load_profile

# One Hypothesis profile for every property and fuzz test ("ci" unless HYPOTHESIS_PROFILE says).
PROFILE = load_profile()

POSTGRES_URL = os.environ.get("FEEDSVC_TEST_POSTGRES_URL")
BEIJING = ZoneInfo("Asia/Shanghai")
# A fixed "now" for tests: 2026-11-28 12:00 Beijing time.
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=BEIJING)
BASE_URL = "http://feeds.example.test"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(
            not POSTGRES_URL,
            reason="FEEDSVC_TEST_POSTGRES_URL is not set: PostgreSQL variants skipped",
        ),
    ),
]

_TABLES_ORDER_SQL = """
SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
AND tablename <> 'alembic_version'
"""


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "feedsvc.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    assert POSTGRES_URL
    db = Database(POSTGRES_URL)
    with db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(db)
    db.dispose()
    return POSTGRES_URL


def fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database URL for one test."""
    if backend == "sqlite":
        path = tmp_path / "feedsvc.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_migrated")
    db = Database(url)
    with db.engine.begin() as connection:
        tables = [row[0] for row in connection.execute(text(_TABLES_ORDER_SQL))]
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        connection.execute(
            text(
                "INSERT INTO site_state (id, content_version, feed_changed_at) VALUES (1, 1, :now)"
            ),
            {"now": NOW},
        )
    db.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(backend, request, tmp_path)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def overrides_for(db_url: str, **extra: Any) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "database": {"url": db_url},
        "site": {"base_url": BASE_URL, "title": "测试理财站", "author": "测试编辑部"},
        "scheduler": {"enabled": False},
        # Upstream test servers run on loopback, which the SSRF guard refuses otherwise.
        "sources": {
            "allow_hosts": ["127.0.0.1", "localhost"],
            "read_timeout": 2.0,
            "connect_timeout": 2.0,
            "total_timeout": 10.0,
        },
    }
    for section, values in extra.items():
        overrides.setdefault(section, {}).update(values)
    return overrides


@pytest.fixture
def settings(db_url: str):  # type: ignore[no-untyped-def]
    return load_settings(overrides_for(db_url), environ={})


def wait_for_api_started_jobs() -> None:
    """A job started through the API runs in a thread: let it end before anything empties the
    tables (on PostgreSQL, TRUNCATE or DELETE and a live job's transaction would deadlock)."""
    for thread in threading.enumerate():
        if thread.name.startswith("feedsvc-job-"):
            thread.join(timeout=60)


@pytest.fixture
def app(settings, clock: FrozenClock) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    app = create_app(settings=settings, clock=clock)
    app.config["TESTING"] = True
    yield app
    wait_for_api_started_jobs()
    app.extensions["feedsvc"].db.dispose()


@pytest.fixture
def ctx(app):  # type: ignore[no-untyped-def]
    return app.extensions["feedsvc"]


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def runner(app):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


@pytest.fixture
def factory(ctx) -> Factory:  # type: ignore[no-untyped-def]
    return Factory(ctx)


@pytest.fixture
def token(factory: Factory) -> str:
    return factory.token("tests")


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A fuzz run is meant to take long: the suite's 120 s per-test timeout would cut it short
    # (and report a timeout inside Hypothesis' shrinker as the failure).
    if PROFILE == FUZZ:
        for item in items:
            item.add_marker(pytest.mark.timeout(0))
