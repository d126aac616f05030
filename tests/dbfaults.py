"""Ways to break a test database on purpose: read-only, gone, never migrated.

Used by test_faults.py and test_healthz.py. PostgreSQL databases other than the test run's
own are created as ``test_faults_*`` and always dropped again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import Engine, create_engine, make_url, text

from feedsvc import create_app, migrate
from feedsvc.config import Settings
from feedsvc.db import Database

# As a restart does: returns once the backends are gone (5 s at most), their sockets closed.
_CUT = (
    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
    " WHERE datname = :d AND pid <> pg_backend_pid()"
)


def with_url(settings: Settings, url: str) -> Settings:
    # model_copy, not load_settings: a "file:" URI is not a path to resolve against the root.
    database = settings.database.model_copy(update={"url": url})
    return settings.model_copy(update={"database": database})


def admin_engine(url: str) -> Engine:
    """The maintenance database, to create, drop and alter test databases."""
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def cut_connections(admin: Engine, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(_CUT), {"d": name})


@contextmanager
def read_only_app(
    backend: str, db_url: str, app: Flask, settings: Settings, clock: Any
) -> Iterator[Flask]:
    """An app of the same database, now refusing writes (``app`` stays usable for reads)."""
    if backend == "sqlite":
        # A truly read-only open (chmod does not stop root, who runs the tests).
        path = db_url.removeprefix("sqlite:///")
        app.extensions["feedsvc"].db.dispose()
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
        ro = create_app(settings=with_url(settings, url), clock=clock)
        try:
            yield ro
        finally:
            ro.extensions["feedsvc"].db.dispose()
        return
    # PostgreSQL mid-run: the same app; its pooled connections are cut and reconnect.
    name = make_url(db_url).database
    admin = admin_engine(db_url)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(
                f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'
            )
        cut_connections(admin, str(name))
        yield app
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(
                f'ALTER DATABASE "{name}" RESET default_transaction_read_only'
            )
        cut_connections(admin, str(name))
        admin.dispose()


@contextmanager
def throwaway_postgres(base_url: str, *, migrated: bool) -> Iterator[tuple[str, Engine, str]]:
    """(url, admin engine, name) of a new PostgreSQL database, dropped afterwards."""
    name = f"test_faults_{uuid.uuid4().hex[:10]}"
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    admin = admin_engine(base_url)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        if migrated:
            schema = Database(url)
            migrate.upgrade(schema)
            schema.dispose()
        yield url, admin, name
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
