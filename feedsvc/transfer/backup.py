"""`feedsvc backup FILE`: a consistent snapshot of a running site's database.

SQLite: the online backup API (https://www.sqlite.org/backup.html) through a connection of its
own. It copies pages as that connection sees them, so commits still in the WAL file are
included (copying the .db file alone loses them), and a write by another process during the
copy restarts it, so the result is one consistent state. The copy is switched to a rollback
journal (one self-contained file), must pass ``PRAGMA integrity_check``, and is renamed into
place only then.

PostgreSQL: ``pg_dump --format=custom`` (restore with ``pg_restore``), when it is on PATH. The
password goes to it in PGPASSWORD, never on its command line (visible to every user in ps) or
in a log line.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from feedsvc.errors import FeedsvcError, Invalid
from feedsvc.transfer.files import replacing, starts_with

log = logging.getLogger("feedsvc.backup")

PAGES_PER_STEP = 1024
Progress = Callable[[int, int], None]  # (pages done, pages in all)


class BackupFailed(FeedsvcError):
    status, code = 500, "backup_failed"


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    method: str  # "sqlite-backup-api" | "pg_dump"


def is_backup(path: Path) -> bool:
    """An SQLite database or a pg_dump custom-format archive: what --force may replace."""
    return starts_with(path, b"SQLite format 3\x00", b"PGDMP")


def backup(
    url: str, destination: Path, *, force: bool, progress: Progress | None = None
) -> BackupReport:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _backup_sqlite(_sqlite_path(parsed.database), destination, force, progress)
    if parsed.get_backend_name() == "postgresql":
        return _backup_postgresql(url, destination, force)
    raise Invalid(f"backup: database {parsed.get_backend_name()!r} is not supported")


def _sqlite_path(database: str | None) -> Path:
    if not database or database.startswith(":") or database.startswith("file:"):
        raise Invalid("backup: database.url must name an SQLite file")
    path = Path(database)
    if not path.is_file():
        raise Invalid(f"backup: {path}: no such database file")
    return path


def _backup_sqlite(
    source_path: Path, destination: Path, force: bool, progress: Progress | None
) -> BackupReport:
    with replacing(destination, force=force, is_ours=is_backup) as temporary:
        # mode=ro: the backup never writes to the live database (nor creates it).
        source = sqlite3.connect(f"{source_path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        target = sqlite3.connect(temporary)
        try:

            def step(_status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)

            source.backup(target, pages=PAGES_PER_STEP, progress=step)
            # The copy inherits WAL mode from the page header: make it one self-contained file.
            target.execute("PRAGMA journal_mode=DELETE")
            result = target.execute("PRAGMA integrity_check").fetchall()
            if result != [("ok",)]:  # pragma: no cover - a page-exact copy of a sound database
                raise BackupFailed(f"backup: integrity check of the copy failed: {result[0][0]}")
        finally:
            target.close()
            source.close()
    size = destination.stat().st_size
    log.info("backup of %s written to %s (%d bytes)", source_path, destination, size)
    return BackupReport(destination, size, "sqlite-backup-api")


PG_DUMP_MISSING = (
    "backup: pg_dump is not on PATH; install the PostgreSQL client of the server's major "
    "version (Debian: apt install postgresql-client) or run `pg_dump --format=custom` yourself"
)


def pg_dump_command(url: str, output: Path) -> tuple[list[str], dict[str, str]]:
    """pg_dump's argv and environment: the password only in the environment."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    # A libpq URI without the password; query options (sslmode, ...) pass through.
    # (URL.set() ignores password=None: _replace is how the password really goes.)
    conninfo = parsed._replace(drivername="postgresql", password=None).render_as_string(
        hide_password=False
    )
    argv = [
        "pg_dump",
        "--format=custom",
        "--no-password",
        f"--file={output}",
        f"--dbname={conninfo}",
    ]
    return argv, env


def _backup_postgresql(url: str, destination: Path, force: bool) -> BackupReport:
    executable = shutil.which("pg_dump")
    if executable is None:
        raise BackupFailed(PG_DUMP_MISSING)
    with replacing(destination, force=force, is_ours=is_backup) as temporary:
        argv, env = pg_dump_command(url, temporary)
        argv[0] = executable
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise BackupFailed(f"backup: pg_dump failed: {reason}")
    size = destination.stat().st_size
    log.info("backup (pg_dump) written to %s (%d bytes)", destination, size)
    return BackupReport(destination, size, "pg_dump")
