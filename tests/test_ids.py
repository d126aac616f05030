"""Ids are never reused, on both backends, and migration 0004 gives old SQLite files that rule.

Without AUTOINCREMENT SQLite hands out max(id) + 1: delete post 28, create another, and it is
post 28 again, so a client still holding the old id edits or deletes the wrong post.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import pytest
import sqlalchemy
from alembic import command
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Integer, delete, func, select, text

from feedsvc import migrate
from feedsvc.clock import FrozenClock
from feedsvc.config import load_settings
from feedsvc.context import Context
from feedsvc.db import Database
from feedsvc.models import ApiToken, Base, PostChange
from feedsvc.repo import related as related_repo
from feedsvc.schemas import SourceCreate
from feedsvc.services import categories as category_service
from feedsvc.services import posts as post_service
from feedsvc.services import sources as source_service
from tests.conftest import NOW, overrides_for
from tests.factories import Factory

# The single-row site_state always has id 1: nothing to give out, nothing to reuse.
FIXED_IDS = {"site_state", "related_index_state"}  # one row each, id 1
BEFORE_0004 = "0003"
# What these tests compare is 0004's work: later migrations (0005) change the schema again.
AFTER_0004 = "0004"
MIGRATION_0004 = migrate.MIGRATIONS / "versions" / "0004_ids_never_reused.py"


def new_post(client: Any, auth: dict[str, str], n: int) -> int:
    body = {
        "title": f"第{n}次记账复盘：房租、伙食与通勤",
        "category": "licai-fangfa",
        "content": f"本月第{n}次复盘：先记固定支出，再看可以压缩的开销。",
        "status": "published",
        "published_at": "2026-11-01T08:00:00+08:00",
    }
    response = client.post("/api/v1/posts", json=body, headers=auth)
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def assert_not_found(response: Any) -> None:
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert set(response.json["error"]) == {"code", "message", "fields"}


@pytest.mark.usefixtures("backend")
class TestNeverReused:
    def test_deleted_newest_post_id_is_not_given_again(self, client, auth, factory: Factory):
        factory.category()
        given = [new_post(client, auth, n) for n in range(1, 4)]
        newest = max(given)
        assert client.delete(f"/api/v1/posts/{newest}", headers=auth).status_code == 204

        created = new_post(client, auth, 4)
        assert created > max(given)

        # A client still holding the deleted id reaches nothing, and changes nothing.
        before = factory.snapshot()
        assert_not_found(client.get(f"/api/v1/posts/{newest}", headers=auth))
        assert_not_found(
            client.patch(f"/api/v1/posts/{newest}", json={"title": "改错了文章"}, headers=auth)
        )
        assert_not_found(client.delete(f"/api/v1/posts/{newest}", headers=auth))
        assert factory.snapshot() == before
        assert client.get(f"/api/v1/posts/{created}").json["title"].startswith("第4次")

    def test_ids_keep_growing_after_every_post_is_deleted(self, client, auth, factory: Factory):
        factory.category()
        given = [new_post(client, auth, n) for n in range(1, 3)]
        for post_id in given:
            assert client.delete(f"/api/v1/posts/{post_id}", headers=auth).status_code == 204
        assert factory.counts()["posts"] == 0
        assert new_post(client, auth, 3) > max(given)

    def test_deleted_source_id_is_not_given_again(self, client, auth, factory: Factory):
        factory.category("jijin")

        def add(n: int) -> int:
            body = {"url": f"https://partner.example.cn/{n}/feed.xml", "category": "jijin"}
            response = client.post("/api/v1/sources", json=body, headers=auth)
            assert response.status_code == 201, response.json
            return int(response.json["id"])

        given = [add(1), add(2)]
        newest = max(given)
        assert client.delete(f"/api/v1/sources/{newest}", headers=auth).status_code == 204
        assert add(3) > newest
        assert_not_found(client.get(f"/api/v1/sources/{newest}", headers=auth))
        assert_not_found(
            client.patch(f"/api/v1/sources/{newest}", json={"enabled": False}, headers=auth)
        )
        assert_not_found(client.delete(f"/api/v1/sources/{newest}", headers=auth))

    def test_category_token_and_change_ids_are_not_given_again(self, ctx, factory: Factory):
        newest_category = factory.category("gupiao").id
        category_service.delete_category(ctx, "gupiao")
        assert factory.category("jijin").id > newest_category

        factory.token("first")
        factory.token("second")
        with ctx.db.write() as session:  # tokens are revoked, not deleted; but a row may go
            newest_token = session.scalar(select(func.max(ApiToken.id)))
            session.execute(delete(ApiToken).where(ApiToken.id == newest_token))
        factory.token("third")
        with ctx.db.read() as session:
            assert session.scalar(select(func.max(ApiToken.id))) > newest_token

        # The related refresh remembers the last change seq it applied; once the applied
        # changes are pruned, a reused seq would sit below that marker and never be seen.
        with ctx.db.write() as session:
            related_repo.log_change(session, 1, NOW)
        with ctx.db.write() as session:
            applied = related_repo.max_change_seq(session)
            related_repo.prune_changes(session, before=NOW.replace(year=2100), upto_seq=applied)
        with ctx.db.write() as session:
            related_repo.log_change(session, 1, NOW)
        with ctx.db.read() as session:
            assert session.scalar(select(PostChange.seq)) > applied

    def test_every_integer_key_comes_from_a_never_reusing_counter(self, ctx, backend: str):
        """Covers tables added later too: each one with an integer id must opt in."""
        with ctx.db.engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                keys = list(table.primary_key.columns)
                if len(keys) != 1 or not isinstance(keys[0].type, Integer):
                    continue
                if table.name in FIXED_IDS:
                    continue
                if backend == "sqlite":
                    sql = connection.execute(
                        text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table.name}
                    ).scalar_one()
                    assert "AUTOINCREMENT" in sql, table.name
                else:
                    sequence = connection.execute(
                        text("SELECT pg_get_serial_sequence(:t, :c)"),
                        {"t": table.name, "c": keys[0].name},
                    ).scalar_one()
                    assert sequence is not None, table.name
                    cycles = connection.execute(
                        text(
                            "SELECT cycle FROM pg_sequences WHERE format('%I.%I', "
                            "schemaname, sequencename)::regclass = CAST(:s AS regclass)"
                        ),
                        {"s": sequence},
                    ).scalar_one()
                    assert cycles is False, table.name


# -- migration 0004 on an existing SQLite file --------------------------------------------------


def downgrade(db: Database, revision: str) -> None:
    config = migrate._config()  # migrate.py has no downgrade(): the CLI never goes back
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def old_database(tmp_path: Any) -> tuple[Database, Context, Factory]:
    """A SQLite file at revision 0003 (before AUTOINCREMENT), with the app's services on it."""
    url = f"sqlite:///{tmp_path / 'feedsvc-0003.db'}"
    db = Database(url)
    migrate.upgrade(db, BEFORE_0004)
    ctx = Context(load_settings(overrides_for(url), environ={}), db, FrozenClock(NOW))
    return db, ctx, _OldSchemaFactory(ctx)


class _OldSchemaFactory(Factory):
    """Posts with given slugs (a generated one needs slug_counters, 0008) and no tags (a
    tagged write reads and bumps the tags' feed versions, 0009): both newer than 0003."""

    def post(self, category: str = "licai-fangfa", **fields: Any) -> Any:
        fields.setdefault("slug", f"old-schema-{self._n + 1}")
        fields.setdefault("tags", [])
        return super().post(category, **fields)


def user_tables(connection: Any) -> list[str]:
    return [
        row[0]
        for row in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name <> 'alembic_version' ORDER BY name"
        )
    ]


def schema_and_rows(db: Database) -> dict[str, Any]:
    """Everything the rebuild must keep, in a form that ignores only what it may change:
    the order of constraints in CREATE TABLE and the primary key's name."""
    found: dict[str, Any] = {}
    with db.engine.connect() as connection:
        for table in user_tables(connection):
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).scalar_one()
            indexes = []
            for _seq, name, unique, origin, partial in connection.exec_driver_sql(
                f"PRAGMA index_list({table})"
            ):
                columns = [r[2] for r in connection.exec_driver_sql(f"PRAGMA index_info({name})")]
                shown = "(automatic)" if name.startswith("sqlite_autoindex") else name
                indexes.append((shown, unique, origin, partial, tuple(columns)))
            found[table] = {
                "columns": connection.exec_driver_sql(f"PRAGMA table_info({table})").fetchall(),
                "indexes": sorted(indexes),
                "foreign_keys": sorted(
                    row[2:]
                    for row in connection.exec_driver_sql(f"PRAGMA foreign_key_list({table})")
                ),
                "named": sorted(
                    name
                    for name in re.findall(r"CONSTRAINT (\w+)", sql)
                    if not name.startswith("pk_")
                ),
                "rows": sorted(
                    (tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {table}")),
                    key=repr,
                ),
            }
    return found


def assert_sound(db: Database) -> None:
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        # The migration turned enforcement off on a pooled connection: it must be back on.
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def autoincrement_tables(db: Database) -> set[str]:
    with db.engine.connect() as connection:
        return {
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%'"
            )
        }


def fill(ctx: Context, factory: Factory) -> None:
    """Rows in every table, every foreign key in use: what a live site has."""
    posts = [factory.post("jijin", title=f"基金定投第{n}年：回撤时别停") for n in range(1, 4)]
    posts.append(factory.post("gupiao", title="读财报先看现金流"))
    factory.token("备份脚本")
    source = source_service.create_source(
        ctx, SourceCreate(url="https://partner.example.cn/feed.xml", category="jijin", mode="posts")
    )
    with ctx.db.write() as session:
        session.execute(
            text(
                "INSERT INTO external_items (source_id, entry_id, link, title, excerpt, body, tags,"
                " published_at, fetched_at, content_hash) VALUES (:s, 'x1', :link,"
                " '国债收益率下行', '摘要', '国债 收益率', '[\"国债\"]', :t, :t, 'h1')"
            ),
            {
                "s": source.id,
                "t": NOW.replace(tzinfo=None),
                "link": "https://partner.example.cn/x1",
            },
        )
        session.execute(
            text(
                "INSERT INTO source_entries (source_id, entry_id, link, content_hash, post_id,"
                " deleted, first_seen_at) VALUES (:s, 'e1', NULL, 'h2', :p, 0, :t)"
            ),
            {"s": source.id, "p": posts[0].id, "t": NOW.replace(tzinfo=None)},
        )
        external = session.execute(text("SELECT max(id) FROM external_items")).scalar_one()
        for rank, (related, item) in enumerate(((posts[1].id, None), (None, external)), 1):
            session.execute(
                text(
                    "INSERT INTO related_items (post_id, rank, related_post_id, external_item_id,"
                    " score, computed_at) VALUES (:p, :r, :rp, :e, 0.5, :t)"
                ),
                {
                    "p": posts[0].id,
                    "r": rank,
                    "rp": related,
                    "e": item,
                    "t": NOW.replace(tzinfo=None),
                },
            )
        session.execute(
            text(
                'INSERT INTO job_runs (job, "trigger", owner, started_at, status, items)'
                " VALUES ('related', 'cli', '测试主机:1', :t, 'succeeded', 4)"
            ),
            {"t": NOW.replace(tzinfo=None)},
        )


def test_migration_keeps_everything_and_ends_reuse(tmp_path) -> None:
    db, ctx, factory = old_database(tmp_path)
    fill(ctx, factory)
    with db.read() as session:
        newest = session.scalar(text("SELECT max(id) FROM posts"))
    post_service.delete_post(ctx, newest)
    before = schema_and_rows(db)
    assert autoincrement_tables(db) == set()

    migrate.upgrade(db, AFTER_0004)

    assert migrate.current_revision(db) == AFTER_0004
    assert schema_and_rows(db) == before
    assert_sound(db)
    # Every table of the models that exists at 0004 (later migrations create theirs so).
    with db.engine.connect() as connection:
        existing = set(sqlalchemy.inspect(connection).get_table_names())
    assert autoincrement_tables(db) == {
        t.name
        for t in Base.metadata.tables.values()
        if t.dialect_kwargs.get("sqlite_autoincrement") and t.name in existing
    }
    # The deleted post's id is remembered by the change log: the next post is past it.
    created = factory.post("jijin", title="迁移之后的第一篇")
    assert created.id > newest

    kept = schema_and_rows(db)
    downgrade(db, BEFORE_0004)
    assert migrate.current_revision(db) == BEFORE_0004
    assert autoincrement_tables(db) == set()
    assert_sound(db)
    assert schema_and_rows(db) == kept

    migrate.upgrade(db, AFTER_0004)
    assert schema_and_rows(db) == kept
    assert_sound(db)
    again = factory.post("jijin", title="再次升级之后")
    assert again.id > created.id
    db.dispose()


def test_migration_seeds_change_seq_past_the_related_jobs_marker(tmp_path) -> None:
    """Every change applied and pruned: the next seq must still be past the job's marker, or
    the incremental related refresh would skip the next changes."""
    db, _ctx, factory = old_database(tmp_path)
    factory.post()
    with db.write() as session:
        applied = related_repo.max_change_seq(session)
        session.execute(
            text("INSERT INTO jobs (name, last_change_seq) VALUES ('related', :s)"), {"s": applied}
        )
        related_repo.prune_changes(session, before=NOW.replace(year=2100), upto_seq=applied)
    migrate.upgrade(db, AFTER_0004)
    with db.write() as session:
        related_repo.log_change(session, 1, NOW)
    with db.read() as session:
        assert session.scalar(select(PostChange.seq)) == applied + 1
    db.dispose()


def test_migration_refuses_to_run_with_foreign_keys_on(tmp_path) -> None:
    """Rebuilding a referenced table with enforcement on would cascade deletes: 0004 refuses."""
    db, _ctx, factory = old_database(tmp_path)
    factory.post()
    before = schema_and_rows(db)
    spec = importlib.util.spec_from_file_location("m0004", MIGRATION_0004)
    assert spec is not None and spec.loader is not None
    m0004 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m0004)
    with db.engine.connect() as connection:  # foreign keys on, as every feedsvc connection
        with (
            Operations.context(MigrationContext.configure(connection)),
            pytest.raises(RuntimeError, match="foreign keys off"),
        ):
            m0004.upgrade()
        connection.rollback()
    assert migrate.current_revision(db) == BEFORE_0004
    assert schema_and_rows(db) == before
    db.dispose()


def test_migration_keeps_rows_that_were_already_orphaned(tmp_path, caplog) -> None:
    """A row written while enforcement was off (by hand, by an old version) is not the
    migration's to delete: it survives, the upgrade goes on, and a warning says so."""
    db, _ctx, factory = old_database(tmp_path)
    post = factory.post()
    raw = db.engine.raw_connection()  # autocommit, as feedsvc/db.py sets pysqlite up
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("INSERT INTO post_tags (post_id, tag_id) VALUES (?, 999)", (post.id,))
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()
    before = schema_and_rows(db)

    migrate.upgrade(db, AFTER_0004)

    assert migrate.current_revision(db) == AFTER_0004
    assert schema_and_rows(db) == before
    assert "1 rows reference missing rows" in caplog.text
    db.dispose()


def test_migration_seeds_an_emptied_table_from_what_others_remember(tmp_path) -> None:
    """Every post deleted before the upgrade: the posts table is empty, but post_changes still
    names their ids. sqlite_sequence must start past them, or the next post reuses one."""
    from feedsvc.services import posts as post_service

    db, ctx, factory = old_database(tmp_path)
    deleted = [factory.post(title=f"将被删除的第{n}篇").id for n in range(3)]
    for post_id in deleted:
        post_service.delete_post(ctx, post_id)
    migrate.upgrade(db, AFTER_0004)
    with db.engine.connect() as connection:
        sequence = dict(connection.exec_driver_sql("SELECT name, seq FROM sqlite_sequence").all())
    assert sequence["posts"] == max(deleted)
    assert factory.post(title="升级后的新文章").id == max(deleted) + 1
    db.dispose()
