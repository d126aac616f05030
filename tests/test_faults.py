"""Database faults answer 503, never 500: gone, read-only, full — on SQLite and PostgreSQL.

Reads keep working where the database can still be read; every refused write answers the
JSON error shape (API) or the short error page (HTML) with Retry-After, and changes nothing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, make_url

from feedsvc import create_app
from feedsvc.config import Settings
from feedsvc.db import Database
from tests.conftest import POSTGRES_URL
from tests.dbfaults import (
    admin_engine,
    cut_connections,
    read_only_app,
    throwaway_postgres,
    with_url,
)
from tests.factories import Factory

CATEGORY = "licai-fangfa"
NEW_POST = {
    "title": "断电之后：数据库只读时的记账本",
    "category": CATEGORY,
    "content": "## 只读\n\n写入被拒绝，读者照常阅读。\n\n理财有风险，投资需谨慎。",
    "author": "周敏",
    "tags": ["故障", "只读"],
    "status": "published",
    "published_at": "2026-03-15T09:30:00+08:00",
}


def reads(slug: str) -> list[str]:
    return [
        "/",
        f"/categories/{CATEGORY}",
        f"/posts/{slug}",
        f"/feeds/{CATEGORY}.rss",
        f"/feeds/{CATEGORY}.atom",
        "/api/v1/posts",
        f"/api/v1/categories/{CATEGORY}",
    ]


def writes(post_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("POST", "/api/v1/posts", NEW_POST),
        ("PATCH", f"/api/v1/posts/{post_id}", {"title": "改过的标题：只读时不该生效"}),
        ("DELETE", f"/api/v1/posts/{post_id}", None),
        ("POST", "/api/v1/categories", {"slug": "baoxian", "name": "保险"}),
        # A valid write: a DELETE of a category that still has posts is a 409 even then.
        ("PATCH", f"/api/v1/categories/{CATEGORY}", {"name": "只读时改不了的名字"}),
    ]


def assert_unavailable(response: Any, path: str, says: str) -> None:
    assert response.status_code == 503, (path, response.get_data(as_text=True))
    assert response.headers["Retry-After"] == "30"
    if path.startswith("/api/"):
        assert response.mimetype == "application/json"
        error = response.get_json()["error"]
        assert error["code"] == "unavailable"
        assert says in error["message"]
        assert error["fields"] == {}
    else:
        assert response.mimetype == "text/html"
        page = response.get_data(as_text=True)
        assert "<h1>503 暂时无法访问</h1>" in page and says in page
        assert "Traceback" not in page


@pytest.fixture
def seeded(factory: Factory, token: str, client: FlaskClient, auth: dict[str, str]) -> Any:
    first = factory.post(CATEGORY, title="停电那天的账本")
    factory.post(CATEGORY, title="第二篇：应急金放在哪里")
    # The token is used once now, so using it again writes no last_used_at.
    assert client.get("/api/v1/categories", headers=auth).status_code == 200
    return first


def send(client: FlaskClient, auth: dict[str, str], method: str, path: str, body: Any) -> Any:
    return client.open(path, method=method, json=body, headers=auth)


# -- the database is gone -------------------------------------------------------------------


@pytest.fixture
def vanishing(backend: str, db_url: str, settings: Settings, clock: Any) -> Iterator[Any]:
    """(app, vanish): an app on a database of its own, and how to make that database go."""
    if backend == "sqlite":
        path = Path(db_url.removeprefix("sqlite:///"))
        app = create_app(settings=settings, clock=clock)

        def vanish() -> None:
            for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                name.unlink(missing_ok=True)
            # Connections already open keep the deleted file; new ones find no tables.
            app.extensions["feedsvc"].db.dispose()

        yield app, vanish
        app.extensions["feedsvc"].db.dispose()
        return
    assert POSTGRES_URL
    with throwaway_postgres(POSTGRES_URL, migrated=True) as (url, admin, name):
        app = create_app(settings=with_url(settings, url), clock=clock)

        def drop() -> None:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')

        yield app, drop
        app.extensions["feedsvc"].db.dispose()


def test_database_gone_mid_run_answers_503_everywhere(vanishing: Any, backend: str) -> None:
    app, vanish = vanishing
    factory = Factory(app.extensions["feedsvc"])
    post = factory.post(CATEGORY, title="数据库消失前的最后一篇")
    auth = {"Authorization": f"Bearer {factory.token('故障')}"}
    client = app.test_client()
    for path in reads(post.slug):  # warm: pooled connections exist when the database goes
        assert client.get(path).status_code == 200, path
    vanish()
    says = "no schema" if backend == "sqlite" else "unreachable"
    for path in reads(post.slug):
        assert_unavailable(client.get(path), path, says)
    for method, path, body in writes(post.id):
        assert_unavailable(send(client, auth, method, path, body), path, says)


def test_postgres_not_listening_answers_503(
    settings: Settings, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1 of loopback: every request fails to connect.
    down = with_url(settings, "postgresql+psycopg://postgres@127.0.0.1:1/feedsvc")
    client = create_app(settings=down, clock=clock).test_client()
    caplog.clear()
    assert_unavailable(client.get("/"), "/", "unreachable")
    # Logged once, one line with the driver's cause, no traceback.
    records = [r for r in caplog.records if r.name == "feedsvc.web"]
    assert len(records) == 1 and records[0].exc_info is None
    assert "Connection refused" in records[0].getMessage()
    auth = {"Authorization": "Bearer fsv_nothing"}
    for path in reads("ting-dian"):
        assert_unavailable(client.get(path), path, "unreachable")
    for method, path, body in writes(1):
        response = send(client, auth, method, path, body)
        assert_unavailable(response, path, "unreachable")


def test_sqlite_file_deleted_under_open_connections(
    backend: str, app: Flask, client: FlaskClient, auth: dict[str, str], seeded: Any
) -> None:
    if backend != "sqlite":
        pytest.skip("an SQLite file")
    path = Path(app.extensions["feedsvc"].settings.database.url.removeprefix("sqlite:///"))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)
    # The pooled connection would still read the unlinked file and, in WAL mode, commit
    # writes into it without an error: it is dropped at checkout, and a fresh connection
    # finds no tables.
    for method, path_, body in writes(seeded.id):
        assert_unavailable(send(client, auth, method, path_, body), path_, "no schema")
    for page in reads(seeded.slug):
        assert_unavailable(client.get(page), page, "no schema")


def test_sqlite_file_replaced_under_open_connections(
    backend: str, app: Flask, client: FlaskClient, factory: Factory, seeded: Any, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("an SQLite file")
    path = Path(app.extensions["feedsvc"].settings.database.url.removeprefix("sqlite:///"))
    backup = tmp_path / "backup.db"
    source = sqlite3.connect(path, isolation_level=None)
    source.execute("VACUUM INTO ?", (str(backup),))
    source.close()
    factory.post(CATEGORY, title="备份之后写的一篇")
    assert "备份之后写的一篇" in client.get(f"/feeds/{CATEGORY}.rss").get_data(as_text=True)
    # A restore by rename: open connections must not go on serving (or writing) the old file.
    os.replace(backup, path)
    for name in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)
    feed = client.get(f"/feeds/{CATEGORY}.rss")
    assert feed.status_code == 200
    assert "停电那天的账本" in feed.get_data(as_text=True)
    assert "备份之后写的一篇" not in feed.get_data(as_text=True)


def test_postgres_restart_is_invisible_to_readers(
    backend: str, db_url: str, client: FlaskClient, auth: dict[str, str], seeded: Any
) -> None:
    if backend != "postgresql":
        pytest.skip("server-side connection termination is PostgreSQL's")
    # Every server process of ours is terminated, as by a restart or a failover: pooled
    # connections are dead. The pool's pre-ping replaces them; nobody sees an error.
    admin = admin_engine(db_url)
    try:
        cut_connections(admin, str(make_url(db_url).database))
    finally:
        admin.dispose()
    for path in reads(seeded.slug):
        assert client.get(path).status_code == 200, path
    response = send(client, auth, "POST", "/api/v1/posts", NEW_POST)
    assert response.status_code == 201, response.get_data(as_text=True)


# -- the database is read-only --------------------------------------------------------------


@pytest.fixture
def read_only(
    backend: str, db_url: str, app: Flask, settings: Settings, clock: Any, seeded: Any
) -> Iterator[FlaskClient]:
    with read_only_app(backend, db_url, app, settings, clock) as ro:
        yield ro.test_client()


def test_read_only_database_reads_work_writes_answer_503(
    read_only: FlaskClient, factory: Factory, auth: dict[str, str], seeded: Any
) -> None:
    before = factory.snapshot(), factory.counts()
    for path in reads(seeded.slug):
        response = read_only.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
    assert "停电那天的账本" in read_only.get(f"/feeds/{CATEGORY}.atom").get_data(as_text=True)
    for method, path, body in writes(seeded.id):
        assert_unavailable(send(read_only, auth, method, path, body), path, "read-only")
    assert (factory.snapshot(), factory.counts()) == before


# -- the disk is full (SQLite) --------------------------------------------------------------


def test_sqlite_full_disk_refuses_writes_and_stays_consistent(
    backend: str,
    app: Flask,
    client: FlaskClient,
    factory: Factory,
    auth: dict[str, str],
    seeded: Any,
) -> None:
    if backend != "sqlite":
        pytest.skip("PRAGMA max_page_count is SQLite's")
    db = app.extensions["feedsvc"].db

    def no_room_to_grow(dbapi_connection: Any, _record: Any) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    event.listen(db.engine, "connect", no_room_to_grow)
    db.dispose()
    before = factory.snapshot(), factory.counts()
    # Forty thousand characters need new pages; the file may not grow by one.
    big = {**NEW_POST, "content": "满" * 40_000}
    response = send(client, auth, "POST", "/api/v1/posts", big)
    assert_unavailable(response, "/api/v1/posts", "disk is full")
    for path in reads(seeded.slug):
        assert client.get(path).status_code == 200, path
    assert (factory.snapshot(), factory.counts()) == before

    event.remove(db.engine, "connect", no_room_to_grow)
    db.dispose()
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    # Room again: the same request goes through.
    assert send(client, auth, "POST", "/api/v1/posts", big).status_code == 201


def test_unexpected_errors_stay_500(app: Flask, client: FlaskClient, monkeypatch: Any) -> None:
    from sqlalchemy.exc import ProgrammingError

    from feedsvc.web import pages

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise ProgrammingError("SELECT nonsense", {}, Exception("syntax error"))

    monkeypatch.setattr(pages, "render_template", broken)
    response = client.get("/")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers


def test_no_stray_folders(tmp_path: Path, settings: Settings, clock: Any) -> None:
    # A "file:" URI names a file; opening it must not create a "file:" folder in the cwd.
    db_path = tmp_path / "ro.db"
    Database(f"sqlite:///{db_path}").dispose()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        Database(f"sqlite:///file:{db_path}?mode=ro&uri=true").dispose()
        assert not (tmp_path / "file:").exists()
    finally:
        os.chdir(cwd)


def test_an_authenticated_read_works_on_a_read_only_database(
    auth: dict[str, str], read_only: FlaskClient, seeded: Any, clock: Any
) -> None:
    # Long enough since the token's last use that this use is recorded: a write, which must not
    # fail the read.
    clock.advance(minutes=5)
    for path in ("/api/v1/posts?status=draft", f"/api/v1/categories/{CATEGORY}", "/api/v1/jobs"):
        response = read_only.get(path, headers=auth)
        assert response.status_code == 200, (path, response.get_data(as_text=True))


# -- what a driver error means, for errors the real-fault tests above cannot provoke ----------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("DiskFull", "out-of-resources"),  # SQLSTATE 53100: by its class, 53
        ("TooManyConnections", "out-of-resources"),  # 53300
        ("AdminShutdown", "unreachable"),  # 57P01: by its class, 57P
        ("ConnectionFailure", "unreachable"),  # 08006
        ("UniqueViolation", None),  # 23505: the caller's business (a 409), not storage's
    ],
)
def test_postgresql_sqlstates_by_class(name: str, kind: str | None) -> None:
    import psycopg.errors
    from sqlalchemy.exc import DBAPIError

    from feedsvc.db import fault_kind

    error = getattr(psycopg.errors, name)("服务器报告的错误")
    assert fault_kind(error) == kind
    assert fault_kind(DBAPIError("SELECT 1", {}, error)) == kind


def test_pool_timeout_and_invalidated_connections() -> None:
    from sqlalchemy.exc import DBAPIError, TimeoutError

    from feedsvc.db import fault_kind, storage_fault

    assert fault_kind(TimeoutError("QueuePool limit reached")) == "busy"
    fault = storage_fault(TimeoutError("QueuePool limit reached"))
    assert fault is not None and fault.message == "the database is busy; try again"
    # A driver error with neither an SQLite name nor an SQLSTATE, on a connection SQLAlchemy
    # found dead.
    gone = DBAPIError("SELECT 1", {}, Exception("连接已断开"), connection_invalidated=True)
    assert fault_kind(gone) == "unreachable"
    assert fault_kind(DBAPIError("SELECT 1", {}, Exception("其他"))) is None


def test_a_bare_psycopg_operational_error_is_unreachable() -> None:
    import psycopg

    from feedsvc.db import fault_kind

    assert fault_kind(psycopg.OperationalError("connection refused")) == "unreachable"
    assert fault_kind(psycopg.ProgrammingError("syntax error")) is None


def test_a_long_chain_of_unknown_errors_is_a_bug() -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from feedsvc.db import fault_kind

    chain = SQLAlchemyError("最外层")
    link = chain
    for depth in range(8):
        link.__cause__ = SQLAlchemyError(f"第{depth}层")
        link = link.__cause__
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    link.__cause__ = full  # too deep to be looked at: the search stops after five links
    assert fault_kind(chain) is None
    assert fault_kind(full) == "full"


def test_an_sqlite_only_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg installed, SQLite's errors are still read (and psycopg's not looked for)."""
    import sys

    from feedsvc.db import fault_kind

    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` raises ImportError
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
    assert fault_kind(locked) == "busy"
    assert fault_kind(sqlite3.OperationalError("无名的错误")) is None


def test_a_bug_recording_a_tokens_use_stays_500(
    client: FlaskClient, auth: dict[str, str], clock: Any, monkeypatch: Any
) -> None:
    """Only storage faults are forgiven when the last use cannot be recorded, not bugs."""
    from sqlalchemy.exc import ProgrammingError

    from feedsvc.repo import tokens as token_repo

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise ProgrammingError("UPDATE nonsense", {}, Exception("syntax error"))

    clock.advance(minutes=5)  # long enough since the last use that this one is recorded
    monkeypatch.setattr(token_repo, "get_token", broken)
    response = client.get("/api/v1/jobs", headers=auth)
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
