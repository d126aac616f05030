"""/healthz tells the truth: reads and writes are probed; busy is not broken; both backends."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from feedsvc import create_app
from feedsvc.config import Settings
from feedsvc.db import SQLITE_BUSY_TIMEOUT_MS
from tests.conftest import POSTGRES_URL
from tests.dbfaults import read_only_app, throwaway_postgres, with_url

pytestmark = pytest.mark.usefixtures("backend")


def health(client: FlaskClient) -> tuple[int, dict[str, str], float]:
    started = time.perf_counter()
    response = client.get("/healthz")
    elapsed = time.perf_counter() - started
    assert response.mimetype == "application/json"
    return response.status_code, response.get_json(), elapsed


def test_healthy_database(client: FlaskClient, app: Flask, db_url: str) -> None:
    status, body, _ = health(client)
    assert (status, body) == (200, {"status": "ok", "database": "ok", "writes": "ok"})
    # The probe's write was rolled back and left no lock: another writer gets in at once.
    engine = create_engine(db_url, connect_args={"timeout": 0} if "sqlite" in db_url else {})
    with engine.begin() as connection:
        connection.execute(text("UPDATE site_state SET content_version = content_version"))
    engine.dispose()
    status, _, _ = health(client)
    assert status == 200


def test_read_only_database_fails_the_check(
    backend: str, db_url: str, app: Flask, settings: Settings, clock: Any
) -> None:
    with read_only_app(backend, db_url, app, settings, clock) as ro:
        status, body, _ = health(ro.test_client())
    assert status == 503
    assert body == {"status": "error", "database": "ok", "writes": "read-only"}


def test_unreachable_database(settings: Settings, clock: Any) -> None:
    down = with_url(settings, "postgresql+psycopg://postgres@127.0.0.1:1/feedsvc")
    status, body, _ = health(create_app(settings=down, clock=clock).test_client())
    assert status == 503
    assert body == {"status": "error", "database": "unreachable", "writes": "unknown"}


def test_database_never_migrated(
    backend: str, settings: Settings, clock: Any, tmp_path: Path
) -> None:
    def check(url: str) -> tuple[int, dict[str, str], float]:
        app = create_app(settings=with_url(settings, url), clock=clock)
        try:
            return health(app.test_client())
        finally:
            app.extensions["feedsvc"].db.dispose()

    if backend == "sqlite":
        status, body, _ = check(f"sqlite:///{tmp_path / 'empty.db'}")
    else:
        assert POSTGRES_URL
        with throwaway_postgres(POSTGRES_URL, migrated=False) as (url, _admin, _name):
            status, body, _ = check(url)
    assert status == 503
    assert body == {"status": "error", "database": "not-migrated", "writes": "unknown"}


def test_busy_database_answers_quickly_and_is_not_broken(
    backend: str, db_url: str, app: Flask, client: FlaskClient
) -> None:
    health(client)  # a pooled connection exists, as in a running server
    if backend == "sqlite":
        writer = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # a long write transaction holds the write lock
        release = writer.rollback
    else:
        engine = create_engine(db_url)
        holder = engine.connect()
        holder.execute(text("SELECT id FROM site_state WHERE id = 1 FOR UPDATE"))
        release = holder.rollback
    try:
        status, body, elapsed = health(client)
    finally:
        release()
    assert (status, body) == (200, {"status": "ok", "database": "ok", "writes": "busy"})
    assert elapsed < 3.0  # not the 10 s a request waits for the lock
    if backend == "sqlite":
        writer.close()
        # The probe's short wait did not stay on the pooled connection.
        with app.extensions["feedsvc"].db.engine.connect() as connection:
            timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert timeout == SQLITE_BUSY_TIMEOUT_MS
    else:
        holder.close()
        engine.dispose()
    assert health(client)[:2] == (200, {"status": "ok", "database": "ok", "writes": "ok"})
