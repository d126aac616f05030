"""Engine, sessions, the timezone-aware datetime column, and SQLite's connection settings.

Two session factories share one engine: ``read()`` for queries and ``write()`` for one short
write transaction. On SQLite a write transaction starts with ``BEGIN IMMEDIATE``: a deferred
``BEGIN`` that reads and then writes fails at once with "database is locked" when another
writer committed in between, whatever busy_timeout says (see shared/LIBRARIES.md).

Two helpers serve the feed hot path (feeds/versions.py): ``change_token()`` tells, from
SQLite's ``PRAGMA data_version``, whether anything was committed since this process last looked;
``hot_row()`` reads one row without a transaction around it (and on PostgreSQL without the
pool's per-checkout costs).
"""

from __future__ import annotations

import itertools
import os
import select
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import DateTime, Engine, Select, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator

from feedsvc.errors import Unavailable

SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_ANALYSIS_LIMIT = 1000
# PRAGMA optimize after this many writes committed by one process (and on closing a
# connection): cheap when nothing changed much, and it keeps statistics current on a site
# that grows by writes alone.
OPTIMIZE_EVERY_WRITES = 500
PG_CONNECT_TIMEOUT_SECONDS = 5


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
        # ANALYZE (and PRAGMA optimize) look at this many rows per index, not all of them:
        # statistics good enough for the planner in milliseconds at 100,000 posts.
        cursor.execute(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "close")
    def _on_close(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # SQLite's advice for long-lived connections: PRAGMA optimize before closing, so the
        # statistics follow the data (without them the planner walks whole tables).
        _optimize(dbapi_connection)

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
            # A "file:...?mode=ro&uri=true" URI names an existing file: create no folder for it.
            if path and not path.startswith((":", "file:")):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            # No pool_pre_ping (a round trip per checkout: 6 transactions per warm feed request
            # instead of 3); see _notice_dropped_connections.
            kwargs["pool_recycle"] = PG_POOL_RECYCLE_SECONDS
            if url.startswith("postgresql"):
                # A host that drops packets would otherwise hang a request until TCP gives up.
                kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS}
        self.engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            _configure_sqlite(self.engine)
            _watch_sqlite_file(self.engine)
        else:
            _notice_dropped_connections(self.engine)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(feedsvc_write=True), expire_on_commit=False
        )
        self._changes = _sqlite_changes(self.engine)
        self._hot = threading.local()
        self._hot_connections: list[PoolProxiedConnection] = []
        self._compiled: dict[
            Select[*tuple[Any, ...]], tuple[str, dict[str, Any], list[Any], list[str] | None]
        ] = {}
        self._hot_lock = threading.Lock()
        # Writes this process committed: feeds/versions.py's bounded mode reads again after one.
        self.writes_committed = 0

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
        self.writes_committed += 1  # after the commit, before the caller sees it returned
        if self.writes_committed % OPTIMIZE_EVERY_WRITES == 0:
            self.optimize()

    def optimize(self) -> None:
        """SQLite: PRAGMA optimize (analyses the tables whose statistics are missing or
        stale). Bookkeeping: a busy or read-only database skips it. Other backends: nothing
        (PostgreSQL's autovacuum analyses)."""
        if self.dialect != "sqlite":
            return
        connection = self.engine.raw_connection()
        try:
            _optimize(connection.driver_connection)
        finally:
            connection.close()

    def analyze(self) -> None:
        """Fresh planner statistics after a bulk load (import, restore, samples): SQLite
        without them picks plans that walk whole tables; PostgreSQL's autovacuum would get
        there later."""
        if self.dialect == "sqlite":
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.execute("ANALYZE")  # type: ignore[union-attr]
            finally:
                raw.close()
            return
        with self.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")

    def change_token(self) -> object | None:
        """A value that stays equal, in this process, until any connection commits a write.

        None: this database cannot tell cheaply (PostgreSQL, an in-memory or unreadable
        SQLite file): a caller must then read what it needs every time.
        """
        return None if self._changes is None else self._changes.token()

    def hot_row(
        self, statement: Select[*tuple[Any, ...]], params: dict[str, Any] | None = None
    ) -> tuple[Any, ...] | None:
        """The first row of a one-row read on the serving hot path (None: no row).

        PostgreSQL: straight through the driver on this thread's own autocommit connection, as
        a prepared statement compiled once, SQLAlchemy's result types applied: no pool
        checkout, pre-ping, BEGIN or ROLLBACK per read (measured 770 µs pooled, ~100 µs so).
        A connection the server dropped (a restart) is replaced and the read retried once;
        other driver errors are raised as SQLAlchemy's, like any other read's.

        SQLite: the statement, compiled once, on a pooled connection (its checkout notices a
        replaced file) in autocommit: one statement reads one consistent snapshot, so no
        BEGIN and ROLLBACK around it (measured 100 µs through a session, 40 µs so; every
        authenticated request reads its token so). Another driver: a pooled connection.
        """
        driver_name = self.engine.dialect.driver
        if driver_name == "pysqlite":
            return self._sqlite_hot_row(statement, params)
        if driver_name != "psycopg":
            with self.engine.connect() as connection:
                found = connection.execute(statement, params or {}).first()
            return None if found is None else tuple(found)
        sql, defaults, processors, _ = self._driver_sql(statement)
        values = {**defaults, **(params or {})}  # strings and numbers: no bind processing
        for attempt in (1, 2):
            driver = None
            try:
                driver = self._hot_driver()  # the pool's errors are the driver's, unwrapped
                row = driver.execute(sql, values, prepare=True).fetchone()
                break
            except Exception as exc:  # the driver's: wrapped below as SQLAlchemy's
                dropped = driver is not None and (driver.closed or driver.broken)
                self._drop_hot_driver()
                if dropped and attempt == 1:
                    continue
                raise _wrap_driver_error(exc, sql, values, dropped) from exc
        if row is None:
            return None
        return tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))

    def _sqlite_hot_row(
        self, statement: Select[*tuple[Any, ...]], params: dict[str, Any] | None
    ) -> tuple[Any, ...] | None:
        sql, defaults, processors, order = self._driver_sql(statement)
        values = {**defaults, **(params or {})}  # strings and numbers: no bind processing
        positional = [values[name] for name in order or ()]
        pooled = self.engine.raw_connection()
        try:
            # The connections run with isolation_level None (_configure_sqlite): autocommit.
            row = pooled.driver_connection.execute(sql, positional).fetchone()  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise _wrap_driver_error(exc, sql, values, False, sqlite3.Error) from exc
        finally:
            pooled.close()
        if row is None:
            return None
        return tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))

    def _driver_sql(
        self, statement: Select[*tuple[Any, ...]]
    ) -> tuple[str, dict[str, Any], list[Any], list[str] | None]:
        """The statement's SQL, its literal parameters, its columns' result processors, and
        the order of its parameters when the driver's are positional (SQLite's ``?``)."""
        found = self._compiled.get(statement)
        if found is None:
            dialect = self.engine.dialect
            compiled = statement.compile(dialect=dialect)
            processors = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in statement.selected_columns
            ]
            order = None if compiled.positiontup is None else list(compiled.positiontup)
            found = (str(compiled), dict(compiled.params), processors, order)
            self._compiled[statement] = found
        return found

    def _hot_driver(self) -> Any:
        held: PoolProxiedConnection | None = getattr(self._hot, "connection", None)
        if held is None:
            held = self.engine.raw_connection()
            held.driver_connection.autocommit = True  # type: ignore[union-attr]
            self._hot.connection = held
            with self._hot_lock:
                self._hot_connections.append(held)
        return held.driver_connection

    def _drop_hot_driver(self) -> None:
        held: PoolProxiedConnection | None = getattr(self._hot, "connection", None)
        self._hot.connection = None
        if held is not None:
            with self._hot_lock:
                self._hot_connections.remove(held)
            held.invalidate()

    def dispose(self) -> None:
        if self._changes is not None:
            self._changes.close()
        with self._hot_lock:
            held, self._hot_connections = self._hot_connections, []
        for connection in held:
            connection.invalidate()  # autocommit was changed: not for the pool again
        self.engine.dispose()


# -- PostgreSQL: a dropped connection is noticed at checkout, without a round trip ------------
# Recycled after this long idle or not, so no connection outlives a firewall's or a proxy's
# idle timeout (those drop connections silently: no hang-up to notice below).
PG_POOL_RECYCLE_SECONDS = 1800


def _notice_dropped_connections(engine: Engine) -> None:
    """Never hand out a pooled connection the server has hung up on.

    A restart, a failover or ``pg_terminate_backend`` ends the server's side of every idle
    pooled connection: the server sends a FATAL message and closes the socket, so the socket
    turns readable. An idle connection otherwise never has anything to read (feedsvc uses no
    LISTEN/NOTIFY), so a readable socket at checkout means the connection is gone: checking
    costs one poll() system call, where ``pool_pre_ping`` costs a round trip (a whole
    transaction per request on the warm feed path). The pool then replaces the connection
    (SQLAlchemy's checkout-event disconnect handling, as for SQLite files in
    _watch_sqlite_file). A rare false alarm (a ParameterStatus after a server reload) only
    costs a reconnect. A connection lost during a statement fails it, and SQLAlchemy then
    invalidates the whole pool (its default on a disconnect error); a GET or HEAD is then
    answered once more on a fresh connection (web/retry.py), so only writes in flight can
    see the loss.
    """
    from sqlalchemy import exc as sa_exc

    @event.listens_for(engine, "checkout")
    def _still_connected(dbapi: Any, _record: ConnectionPoolEntry, _proxy: object) -> None:
        if _hung_up(dbapi):
            raise sa_exc.DisconnectionError("the database server closed the connection")


def _hung_up(dbapi: Any) -> bool:
    if getattr(dbapi, "closed", False) or getattr(dbapi, "broken", False):
        return True
    fileno = getattr(dbapi, "fileno", None)
    if fileno is None:  # a driver we cannot look into: trust the connection
        return False
    try:
        poller = select.poll()
        poller.register(fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except Exception:  # the driver's error for a closed descriptor: the connection is gone
        return True


class _SQLiteChanges:
    """SQLite's ``PRAGMA data_version`` on one read-only connection per process.

    The pragma's value changes when any *other* connection commits (in this process or
    another: workers, the CLI, the scheduler); this connection never writes, so every commit
    counts. It costs a look at the WAL index, no query. The file's identity is checked too:
    after a restore by rename the connection is reopened on the new file (see
    ``_watch_sqlite_file``). The connection is opened ``mode=ro``: it never creates a file.

    One connection for the whole process (behind a lock), so the token means the same in
    every thread: feeds/versions.py shares what it read among a worker's threads, and a
    commit costs one read of a feed's state per process, not one per thread.
    """

    _generations = itertools.count()

    def __init__(self, uri: str, path: str) -> None:
        self._uri, self._path = uri, path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._generation = 0

    def token(self) -> tuple[int, int] | None:
        identity = _identity(self._path)
        with self._lock:
            try:
                connection = self._connection
                if connection is None or self._identity != identity:
                    self._close()
                    if identity is None:
                        return None  # no file: the ordinary path reports it
                    connection = sqlite3.connect(
                        self._uri,
                        uri=True,
                        isolation_level=None,
                        timeout=SQLITE_BUSY_TIMEOUT_MS / 1e3,
                        check_same_thread=False,
                    )
                    self._connection, self._identity = connection, identity
                    self._generation = next(self._generations)
                version = connection.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                self._close()
                return None
            return self._generation, int(version)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _optimize(connection: Any) -> None:
    """PRAGMA optimize on an SQLite driver connection in autocommit; never waits long for the
    write lock and never fails the caller (a busy, read-only or closed database skips it)."""
    try:
        connection.execute("PRAGMA busy_timeout=100")
        try:
            connection.execute("PRAGMA optimize")
        finally:
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    except sqlite3.Error:
        pass


def _sqlite_changes(engine: Engine) -> _SQLiteChanges | None:
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        path = unquote(database.removeprefix("file:").split("?", 1)[0])
        return None if "memory" in database else _SQLiteChanges(database, path)
    path = os.path.abspath(database)
    return _SQLiteChanges(f"file:{quote(path)}?mode=ro", path)


def _wrap_driver_error(
    exc: Exception,
    sql: str,
    params: dict[str, Any] | None,
    broken: bool,
    error_class: type[Exception] | None = None,
) -> BaseException:
    """A driver error as SQLAlchemy raises it (web/errors.py maps those to 503);
    ``error_class``: the driver's base error class (psycopg's when not given)."""
    from sqlalchemy import exc as sa_exc

    if error_class is None:
        import psycopg

        error_class = psycopg.Error
    return sa_exc.DBAPIError.instance(sql, params, exc, error_class, connection_invalidated=broken)


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- faults ------------------------------------------------------------------------------------
# One place that knows what a driver error means for a user: the web answers 503 with it, the
# CLI prints it on one line, /healthz names its kind. Anything not listed here is a bug and
# stays a 500 / traceback.

READ_ONLY, FULL, BUSY = "read-only", "full", "busy"
UNREACHABLE_KIND, NOT_MIGRATED_KIND = "unreachable", "not-migrated"

NOT_MIGRATED = "the database has no schema yet: run `feedsvc init` (or `feedsvc db upgrade`)"
UNREACHABLE = "the database is unreachable; try again later"

# kind -> what the user reads, as the API and the CLI say it (the admin says it in Chinese:
# feedsvc/web/admin/error_messages.py)
FAULT_MESSAGES = {
    READ_ONLY: "the database is read-only: writes are refused",
    FULL: "the database's disk is full: writes are refused",
    BUSY: "the database is busy; try again",
    UNREACHABLE_KIND: UNREACHABLE,
    NOT_MIGRATED_KIND: NOT_MIGRATED,
    "cannot-open": "cannot open the database file (check database.url and its folder)",
    "io-error": "the database file cannot be read or written (I/O error)",
    "corrupt": "the database file is damaged",
    "not-a-database": "the database file is not an SQLite database",
    "permission-denied": "the database file cannot be written (permission denied)",
    "out-of-resources": "the database is out of resources (disk, memory or connections)",
}

# SQLite primary result codes (https://www.sqlite.org/rescode.html); extended codes such as
# SQLITE_READONLY_DBMOVED (the file was deleted or replaced under us) share their prefix.
_SQLITE_KINDS = {
    "SQLITE_READONLY": READ_ONLY,
    "SQLITE_FULL": FULL,
    "SQLITE_CANTOPEN": "cannot-open",
    "SQLITE_BUSY": BUSY,
    "SQLITE_LOCKED": BUSY,
    "SQLITE_IOERR": "io-error",
    "SQLITE_CORRUPT": "corrupt",
    "SQLITE_NOTADB": "not-a-database",
    "SQLITE_PERM": "permission-denied",
}

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_KINDS = {
    "42P01": NOT_MIGRATED_KIND,  # undefined_table
    "3D000": UNREACHABLE_KIND,  # invalid_catalog_name: the database was dropped
    "25006": READ_ONLY,  # read_only_sql_transaction (a standby, or a read-only database)
    "55P03": BUSY,  # lock_not_available (lock_timeout)
    "57014": BUSY,  # query_canceled (statement_timeout)
}
_PG_CLASS_KINDS = {
    "53": "out-of-resources",  # insufficient_resources: disk full, out of memory, too many
    "08": UNREACHABLE_KIND,  # connection exception
    "57P": UNREACHABLE_KIND,  # admin/crash shutdown, cannot connect now, database dropped
}


def fault_kind(exc: BaseException) -> str | None:
    """The kind of storage fault behind ``exc`` (SQLAlchemy-wrapped or a bare driver error).

    A fault can hide behind the error raised while cleaning up after it: on SQLITE_FULL,
    SQLite may roll the whole transaction back itself, and SQLAlchemy's ROLLBACK TO SAVEPOINT
    then fails with "no such savepoint". So the chain of causes is searched too.
    """
    from sqlalchemy import exc as sa_exc

    seen: BaseException | None = exc
    for _ in range(5):  # a short chain: exceptions raised while handling others
        if seen is None or not isinstance(seen, (sa_exc.SQLAlchemyError, *_driver_errors())):
            return None
        kind = _own_fault_kind(seen)
        if kind is not None:
            return kind
        seen = seen.__cause__ or seen.__context__
    return None


def _own_fault_kind(exc: BaseException) -> str | None:
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError):  # the connection pool is exhausted
        return BUSY
    wrapped = isinstance(exc, sa_exc.DBAPIError)
    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    name = getattr(original, "sqlite_errorname", None)
    if isinstance(name, str):
        if str(original).startswith("no such table"):
            return NOT_MIGRATED_KIND
        return next((kind for code, kind in _SQLITE_KINDS.items() if name.startswith(code)), None)
    state = getattr(original, "sqlstate", None)
    if isinstance(state, str):
        if state in _PG_KINDS:
            return _PG_KINDS[state]
        return next((k for cls, k in _PG_CLASS_KINDS.items() if state.startswith(cls)), None)
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return UNREACHABLE_KIND
    # Connection refused, reset, DNS, or a database that does not exist: psycopg reports
    # failures to connect as OperationalError without SQLSTATE.
    operational = sa_exc.OperationalError if wrapped else _driver_operational_errors()
    return UNREACHABLE_KIND if isinstance(exc, operational) else None


def _driver_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:  # an SQLite-only install
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


def _driver_operational_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.OperationalError,)


def _watch_sqlite_file(engine: Engine) -> None:
    """Never hand out a connection to an SQLite file that was deleted or replaced.

    An open connection keeps the old file's inode: after `rm` or a restore by `mv`, it would
    go on reading stale data and, in WAL mode, committing writes into a deleted file, with no
    error at all (SQLITE_READONLY_DBMOVED is only raised in rollback-journal mode). At
    checkout the file's identity is compared with the one seen at connect; a mismatch is a
    disconnect, and the pool retries with a fresh connection (SQLAlchemy's documented
    "pessimistic disconnect handling" through the checkout event).
    """
    from sqlalchemy import exc as sa_exc

    @event.listens_for(engine, "connect")
    def _remember_file(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        rows = dbapi_connection.execute("PRAGMA database_list").fetchall()
        path = next((row[2] for row in rows if row[1] == "main"), "")
        record.info["feedsvc_file"] = (path, _identity(path)) if path else None

    @event.listens_for(engine, "checkout")
    def _same_file(_dbapi: object, record: ConnectionPoolEntry, _proxy: object) -> None:
        seen = record.info.get("feedsvc_file")
        if seen is not None and _identity(seen[0]) != seen[1]:
            raise sa_exc.DisconnectionError(f"{seen[0]} was deleted or replaced")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def storage_fault(exc: BaseException) -> Unavailable | None:
    """The user-facing meaning of a database error, or None when it is not a fault of storage."""
    kind = fault_kind(exc)
    return None if kind is None else Unavailable(FAULT_MESSAGES[kind])
