"""What /healthz reports: can the database be read, and can it be written?

A database can answer reads and still refuse every write (an SQLite file or filesystem
turned read-only, a PostgreSQL standby or `default_transaction_read_only`), so reads alone
do not make a healthy service. The write probe is a real write in a transaction that is
rolled back: ``UPDATE site_state SET id = id WHERE id = 1`` changes nothing and is cheap on
both backends.

A busy database is not a broken one: the probe waits at most ``PROBE_WAIT_MS`` for the write
lock (SQLite's busy_timeout, PostgreSQL's lock_timeout) instead of the 10 s a request
waits, and reports "busy" without failing the check.

Not detected: a full disk, since the probe writes no new page (writes then answer 503).
"""

from __future__ import annotations

from dataclasses import dataclass

from feedsvc.db import BUSY, SQLITE_BUSY_TIMEOUT_MS, Database, fault_kind

OK = "ok"
PROBE_WAIT_MS = 500
_READ_PROBE = "SELECT id FROM site_state WHERE id = 1"
_WRITE_PROBE = "UPDATE site_state SET id = id WHERE id = 1"


@dataclass(frozen=True)
class Health:
    database: str  # "ok", or the fault's kind: "unreachable", "not-migrated", ...
    writes: str  # "ok", "busy", or the fault's kind: "read-only", ...

    @property
    def healthy(self) -> bool:
        return self.database == OK and self.writes in (OK, BUSY)

    def as_json(self) -> dict[str, str]:
        return {
            "status": "ok" if self.healthy else "error",
            "database": self.database,
            "writes": self.writes,
        }


def check(db: Database) -> tuple[Health, BaseException | None]:
    """Probe reads, then writes; the error behind a failed probe comes back for the log."""
    try:
        with db.engine.connect() as connection:
            connection.exec_driver_sql(_READ_PROBE)
    except Exception as exc:  # any error is reported by kind; unknown ones as "error"
        return Health(database=fault_kind(exc) or "error", writes="unknown"), exc
    try:
        _probe_write(db)
    except Exception as exc:
        return Health(database=OK, writes=fault_kind(exc) or "error"), exc
    return Health(database=OK, writes=OK), None


def _probe_write(db: Database) -> None:
    # The raw driver connection: the probe sets its own short lock wait and its own BEGIN.
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            if db.dialect == "sqlite":
                cursor.execute(f"PRAGMA busy_timeout={PROBE_WAIT_MS}")
                try:
                    cursor.execute("BEGIN IMMEDIATE")  # the write lock, as every write takes it
                    cursor.execute(_WRITE_PROBE)
                finally:
                    raw.rollback()
                    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            else:
                try:
                    # SET LOCAL lasts until the rollback: the pooled connection keeps no trace.
                    cursor.execute(f"SET LOCAL lock_timeout = {PROBE_WAIT_MS}")
                    cursor.execute(f"SET LOCAL statement_timeout = {2 * PROBE_WAIT_MS}")
                    cursor.execute(_WRITE_PROBE)
                finally:
                    raw.rollback()
        finally:
            cursor.close()
    finally:
        raw.close()
