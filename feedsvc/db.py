"""Engine, sessions, the timezone-aware datetime column, and SQLite's connection settings.

Two session factories share one engine: ``read()`` for queries and ``write()`` for one short
write transaction. On SQLite a write transaction starts with ``BEGIN IMMEDIATE``: a deferred
``BEGIN`` that reads and then writes fails at once with "database is locked" when another
writer committed in between, whatever busy_timeout says (see shared/LIBRARIES.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from feedsvc.errors import Unavailable

SQLITE_BUSY_TIMEOUT_MS = 10_000


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns aware datetimes (SQLite drops offsets otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached the database layer")
        value = value.astimezone(UTC)
        # SQLite stores text; keep it naive UTC there so string order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, emit BEGIN (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        immediate = connection.get_execution_options().get("feedsvc_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """One engine per process (created after fork, by the app factory) and its sessions."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, object] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            path = url.removeprefix("sqlite:///")
            if path and not path.startswith(":"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)  # type: ignore[arg-type]
        if self.engine.dialect.name == "sqlite":
            _configure_sqlite(self.engine)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(feedsvc_write=True), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        with self._writer() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- faults ------------------------------------------------------------------------------------
# One place that knows what a driver error means for a user: the web answers 503 with it, the
# CLI prints it on one line. Anything not listed here is a bug and stays a 500 / traceback.

_SQLITE_FAULTS = {
    "SQLITE_READONLY": "the database is read-only: writes are refused",
    "SQLITE_FULL": "the database's disk is full: writes are refused",
    "SQLITE_CANTOPEN": "cannot open the database file (check database.url and its folder)",
    "SQLITE_BUSY": "the database is busy; try again",
    "SQLITE_LOCKED": "the database is busy; try again",
    "SQLITE_IOERR": "the database file cannot be read or written (I/O error)",
    "SQLITE_CORRUPT": "the database file is damaged",
    "SQLITE_NOTADB": "the database file is not an SQLite database",
    "SQLITE_PERM": "the database file cannot be written (permission denied)",
}

NOT_MIGRATED = "the database has no schema yet: run `feedsvc init` (or `feedsvc db upgrade`)"
UNREACHABLE = "the database is unreachable; try again later"


def storage_fault(exc: BaseException) -> Unavailable | None:
    """The user-facing meaning of a database error, or None when it is not a fault of storage."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError):  # the connection pool is exhausted
        return Unavailable("the database is busy; try again")
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    original = exc.orig
    name = getattr(original, "sqlite_errorname", None)
    if isinstance(name, str):
        message = str(original)
        if message.startswith("no such table"):
            return Unavailable(NOT_MIGRATED)
        for prefix, meaning in _SQLITE_FAULTS.items():
            if name.startswith(prefix):
                return Unavailable(meaning)
        return None
    state = getattr(original, "sqlstate", None)
    if exc.connection_invalidated or (
        state is None and isinstance(exc, sa_exc.OperationalError)
    ):
        return Unavailable(UNREACHABLE)  # connection refused, reset, or DNS: no SQLSTATE
    if not isinstance(state, str):
        return None
    if state == "42P01":  # undefined_table
        return Unavailable(NOT_MIGRATED)
    if state == "25006":  # read_only_sql_transaction (a standby, or a read-only database)
        return Unavailable("the database is read-only: writes are refused")
    if state.startswith("53"):  # insufficient_resources: disk full, out of memory, too many
        return Unavailable("the database is out of resources (disk, memory or connections)")
    if state.startswith(("08", "57P")):  # connection exception; admin shutdown, cannot connect
        return Unavailable(UNREACHABLE)
    return None
