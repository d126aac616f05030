"""Alembic environment: runs on the connection feedsvc hands over (see feedsvc/migrate.py)."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy.engine import Connection

from feedsvc.models import Base

config = context.config
log = logging.getLogger("feedsvc.migrate")
target_metadata = Base.metadata


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Run the block in one transaction with SQLite foreign keys off, then turn them back on.

    Batch mode rebuilds a table (create a copy, copy rows, DROP the old one, rename the copy);
    with foreign keys on, that DROP first deletes the rows, cascading into (or failing on) every
    table that references it. SQLite's own recipe for schema changes turns them off around the
    transaction and runs `PRAGMA foreign_key_check` before committing
    (https://www.sqlite.org/lang_altertable.html#otheralter). The pragma is a no-op inside a
    transaction, and migrate.upgrade() hands over a connection whose transaction is open but
    still empty: end it, switch, and begin our own (IMMEDIATE: one migrator at a time; a second
    one waits, then finds the schema already at head). pysqlite runs with isolation_level=None
    (feedsvc/db.py), so these statements go to SQLite as written; SQLAlchemy's own COMMIT at
    the end of migrate.upgrade() then finds no transaction and does nothing.
    """
    if _in_transaction(connection):
        connection.exec_driver_sql("COMMIT")
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            already = _broken_references(connection)
            yield
            broken = _broken_references(connection) - already
            if broken:  # pragma: no cover - guards a future migration against a bug
                tables = ", ".join(sorted({table for table, _row, _parent in broken}))
                raise RuntimeError(
                    f"the migration would break {len(broken)} foreign key(s) in {tables}:"
                    " rolled back, nothing changed"
                )
            if already:
                # Not ours to repair (rows written while enforcement was off, by hand or by an
                # old version): keep them, as the rebuild kept every row, and say so.
                log.warning(
                    "%d rows reference missing rows (PRAGMA foreign_key_check)", len(already)
                )
        except BaseException:
            if _in_transaction(connection):  # SQLite itself rolls back on some errors
                connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")
    finally:
        # The connection goes back to the pool: it must never leave with enforcement off.
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _broken_references(connection: Connection) -> set[tuple[str, int, str]]:
    """(table, rowid, referenced table) of each row whose parent is missing. The foreign key's
    number in the last column is left out: a rebuilt table may number its keys differently."""
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    return {(str(row[0]), int(row[1]), str(row[2])) for row in rows}


def _in_transaction(connection: Connection) -> bool:
    return bool(getattr(connection.connection.dbapi_connection, "in_transaction", False))


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds tables when a migration needs to.
        render_as_batch=sqlite,
        compare_type=True,
    )
    if sqlite:
        with sqlite_foreign_keys_off(connection), context.begin_transaction():
            context.run_migrations()
        return
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("feedsvc migrations run online only")
run_migrations_online()
