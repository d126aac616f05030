"""Migration 0005: what a database remembers of its own history (had_posts, removed slugs)."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import insert, text

from feedsvc import migrate
from feedsvc.clock import FrozenClock
from feedsvc.config import load_settings
from feedsvc.context import Context
from feedsvc.db import Database
from feedsvc.models import Post
from feedsvc.services import posts as post_service
from feedsvc.services.samples import never_had_posts
from tests.conftest import NOW, overrides_for
from tests.factories import Factory


def downgrade(db: Database, revision: str) -> None:
    config = migrate._config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def had_posts(db: Database) -> bool:
    with db.read() as session:
        return bool(session.scalar(text("SELECT had_posts FROM site_state WHERE id = 1")))


@pytest.mark.parametrize("history", ["empty", "has-posts", "all-deleted"])
def test_upgrade_knows_whether_an_existing_site_had_posts(db_url: str, history: str) -> None:
    db = Database(db_url)
    downgrade(db, "0004")
    try:
        ctx = Context(load_settings(overrides_for(db_url), environ={}), db, FrozenClock(NOW))
        factory = Factory(ctx)
        factory.category("jijin")
        if history != "empty":
            # A given slug and no tags: a generated slug needs slug_counters (0008) and a
            # tagged write the tags' feed versions (0009), newer than 0004.
            post = factory.post("jijin", slug="zhi-qian-de-wen-zhang", tags=[])
            if history == "all-deleted":
                post_service.delete_post(ctx, post.id)
        migrate.upgrade(db)
        assert had_posts(db) is (history != "empty")
        assert never_had_posts(ctx) is (history == "empty")
    finally:
        migrate.upgrade(db)  # the PostgreSQL schema is shared by the session's tests
        db.dispose()


def test_every_way_a_post_is_stored_marks_the_site(db_url: str, ctx, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    """The trigger, not the service, keeps the marker: a row written by any code counts."""
    factory.category("jijin")
    assert never_had_posts(ctx)
    with ctx.db.write() as session:
        category_id = session.scalar(text("SELECT id FROM categories WHERE slug = 'jijin'"))
        # A bare Core INSERT: no service, no ORM event, nothing but the table.
        session.execute(
            insert(Post.__table__).values(
                slug="zhijie",
                guid="tag:x,2026:1",
                category_id=category_id,
                title="直接写入",
                author="",
                summary="",
                summary_given=False,
                format="html",
                body="",
                pages=[],
                status="draft",
                published_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    assert not never_had_posts(ctx)
    with ctx.db.write() as session:
        session.execute(text("DELETE FROM posts"))
    assert not never_had_posts(ctx)  # never cleared
