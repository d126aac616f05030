"""Ids are never reused: SQLite tables get AUTOINCREMENT; PostgreSQL needs nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 01:20:00.000000

Without AUTOINCREMENT, SQLite gives a new row max(rowid) + 1, so deleting the newest post and
creating another hands out the deleted id again, and a client still holding it edits or deletes
the wrong post (https://www.sqlite.org/autoinc.html). AUTOINCREMENT can only be declared by
CREATE TABLE, so every table whose integer id is exposed or remembered elsewhere is rebuilt
(Alembic batch mode: create a copy, copy every row, drop the old table, rename the copy; its
indexes, unique constraints and foreign keys are reflected and recreated; only the primary key
loses its name, as SQLite wants AUTOINCREMENT inline: `id INTEGER NOT NULL PRIMARY KEY
AUTOINCREMENT`, exactly what the models create on a new database). env.py runs SQLite
migrations with foreign keys off, as the rebuild requires: with them on, dropping a referenced
table deletes (or cascades into) its children first
(https://www.sqlite.org/foreignkeys.html#fk_schemacommands); it checks them before committing.

The rebuild then seeds sqlite_sequence, the "largest id ever given" that AUTOINCREMENT keeps
from now on. Ids deleted before this migration above the current max(id) cannot be known in
general, so the seed is the best possible: max(id), raised to what other tables still remember
(post_changes keeps the ids of deleted posts; jobs.last_change_seq is the highest change seq
already applied, even when those changes were pruned since).

PostgreSQL: every id column is SERIAL, i.e. an integer fed by its own sequence; a sequence never
hands out a value twice (nextval is never rolled back; only setval or CYCLE, which we never use,
could). Both directions are no-ops there.
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.engine import Connection

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> its integer key column. Parents before children does not matter (foreign keys are off
# during the rebuild), but this order reads like the schema.
TABLES = {
    "categories": "id",
    "tags": "id",
    "api_tokens": "id",
    "posts": "id",
    "post_changes": "seq",
    "job_runs": "id",
    "sources": "id",
    "source_entries": "id",
    "external_items": "id",
}

# Other places an id survives its row (queries giving one value, or NULL when empty).
REMEMBERED = {
    "posts": (
        "SELECT max(post_id) FROM post_changes",  # no foreign key: deleted posts stay
        "SELECT max(post_id) FROM source_entries",
    ),
    "post_changes": ("SELECT max(last_change_seq) FROM jobs",),
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _require_foreign_keys_off(bind)
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    for table, key in TABLES.items():
        _seed_sequence(bind, table, key)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _require_foreign_keys_off(bind)
    for table in TABLES:
        # Dropping the AUTOINCREMENT table also drops its sqlite_sequence row.
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass


def _require_foreign_keys_off(bind: Connection) -> None:
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "migration 0004 rebuilds referenced tables and must run with SQLite foreign keys "
            "off (feedsvc/migrations/env.py does this): refusing to cascade deletes"
        )


def _seed_sequence(bind: Connection, table: str, key: str) -> None:
    candidates = [f"SELECT max({key}) FROM {table}", *REMEMBERED.get(table, ())]
    seed = max((bind.exec_driver_sql(sql).scalar() or 0 for sql in candidates), default=0)
    if not seed:
        return  # nothing was ever given out that anyone remembers: start at 1
    # sqlite_sequence may be written with ordinary statements (https://www.sqlite.org/autoinc.html).
    # Copying the rows already set it to max(key); only raise it, never lower it.
    current = bind.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
    ).scalar()
    # The batch copy's INSERT ... SELECT leaves a row even for an empty table (seq 0, SQLite
    # 3.40): the INSERT is for an SQLite that would not.
    if current is None:  # pragma: no cover
        bind.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seed))
    elif current < seed:
        bind.exec_driver_sql("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (seed, table))
