"""Storage: migrations, timezone-aware datetimes, SQLite settings and concurrent writers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from feedsvc import migrate
from feedsvc.db import Database
from feedsvc.models import Base, Post
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")


def test_migrations_reach_head(ctx) -> None:
    assert migrate.current_revision(ctx.db) == migrate.head_revision()
    tables = set(inspect(ctx.db.engine).get_table_names())
    assert {"categories", "posts", "tags", "post_tags", "api_tokens", "site_state"} <= tables


def test_upgrade_is_idempotent(ctx) -> None:
    migrate.upgrade(ctx.db)
    assert migrate.current_revision(ctx.db) == migrate.head_revision()


def test_migrations_match_the_models(ctx) -> None:
    """A model change without its migration (or the reverse) shows up here, on both backends."""
    with ctx.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_leaves_sqlite_foreign_keys_on(ctx, backend: str) -> None:
    """Migrations run with foreign keys off (env.py); the pooled connection gets them back."""
    if backend != "sqlite":
        pytest.skip("SQLite only")
    migrate.upgrade(ctx.db)
    with ctx.db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_datetimes_round_trip_aware(ctx, factory: Factory) -> None:
    eastern = timezone(timedelta(hours=-5))
    post = factory.post(published_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=eastern))
    with ctx.db.read() as session:
        stored = session.get(Post, post.id)
    assert stored.published_at.tzinfo is not None
    assert stored.published_at == datetime(2026, 1, 2, 8, 4, 5, tzinfo=UTC)


def test_sqlite_connection_settings(ctx, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only")
    with ctx.db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_concurrent_writers_do_not_fail(ctx, factory: Factory) -> None:
    """BEGIN IMMEDIATE on SQLite: read-then-write transactions wait instead of failing."""
    factory.category()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(5):
                factory.post(title=f"并发写入{n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert factory.counts()["posts"] == 20
    with ctx.db.read() as session:
        versions = session.execute(text("SELECT content_version FROM categories")).scalar()
    assert versions == 21  # one bump per write, none lost


def test_fresh_database_file_is_created(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path}/sub/dir/feedsvc.db")
    migrate.upgrade(db)
    with db.read() as session:
        assert session.scalar(select(Post.id)) is None
    db.dispose()


def _downgrade(db: Database, revision: str) -> None:
    config = migrate._config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_downgrade_to_base_and_upgrade_again(ctx, factory: Factory) -> None:
    """Every migration's downgrade runs on both backends: rows of the tables 0001 made survive
    down to 0001 and back up to head; below 0001 there is nothing to keep."""
    post = factory.post(title="降级之后：存款利率怎么看", tags=["利率"])
    try:
        _downgrade(ctx.db, "0001")
        assert migrate.current_revision(ctx.db) == "0001"
        tables = set(inspect(ctx.db.engine).get_table_names())
        assert {"sources", "jobs", "related_items", "post_changes"}.isdisjoint(tables)
        with ctx.db.engine.connect() as connection:
            kept = connection.execute(text("SELECT id, title FROM posts")).all()
        assert [tuple(row) for row in kept] == [(post.id, "降级之后：存款利率怎么看")]

        migrate.upgrade(ctx.db)
        assert migrate.current_revision(ctx.db) == migrate.head_revision()
        with ctx.db.read() as session:
            stored = session.get(Post, post.id)
            assert stored is not None
            assert stored.title == "降级之后：存款利率怎么看"
            assert [tag.name for tag in stored.tags] == ["利率"]
        # Ids are still never reused after the round trip: the next post gets a new one.
        assert factory.post(title="升级之后的第二篇").id > post.id

        _downgrade(ctx.db, "base")
        assert migrate.current_revision(ctx.db) is None
        assert set(inspect(ctx.db.engine).get_table_names()) <= {"alembic_version"}
    finally:
        # The PostgreSQL schema is shared by the whole session: always leave it at head.
        migrate.upgrade(ctx.db)
    assert migrate.current_revision(ctx.db) == migrate.head_revision()
    with ctx.db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM posts")).scalar() == 0


def test_a_naive_datetime_never_reaches_the_database(ctx, factory: Factory) -> None:
    """Every stored time is UTC; a naive one would be read in whatever zone: refused, unsaved."""
    from sqlalchemy.exc import StatementError

    post = factory.post(title="时区")
    with pytest.raises(StatementError) as info, ctx.db.write() as session:
        session.get(Post, post.id).updated_at = datetime(2026, 1, 2, 3, 4, 5)
    assert isinstance(info.value.orig, ValueError)
    assert "naive datetime" in str(info.value.orig)
    with ctx.db.read() as session:
        assert session.get(Post, post.id).updated_at == post.updated_at


def test_migrations_refuse_offline_sql_generation(ctx) -> None:
    """`alembic upgrade --sql` would print SQL for a schema it cannot see: refused, untouched."""
    config = migrate._config()
    with pytest.raises(SystemExit, match="feedsvc migrations run online only"):
        command.upgrade(config, "0001:head", sql=True)
    assert migrate.current_revision(ctx.db) == migrate.head_revision()


def test_a_row_as_loaded_in_a_fresh_process_is_detached_with_no_history() -> None:
    # The first object a web worker builds may be a token from the hot path, before any
    # query or constructor has configured the mappers.
    import subprocess
    import sys

    script = (
        "from sqlalchemy import inspect\n"
        "from feedsvc.models import ApiToken, Tag\n"
        "from feedsvc.repo import as_loaded\n"
        "token = as_loaded(ApiToken, {'id': 7, 'name': '发布', 'token_hash': 'h'})\n"
        "state = inspect(token)\n"
        "assert state.detached and state.identity == (7,), state\n"
        "assert token.name == '发布' and not state.attrs.name.history.has_changes()\n"
        "tag = as_loaded(Tag, {'id': 1, 'name': '理财', 'slug': 'li-cai'})\n"
        "assert inspect(tag).detached and tag.slug == 'li-cai'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
