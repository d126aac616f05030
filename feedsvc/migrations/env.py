"""Alembic environment: runs on the connection feedsvc hands over (see feedsvc/migrate.py)."""

from alembic import context

from feedsvc.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds tables when a migration needs to.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("feedsvc migrations run online only")
run_migrations_online()
