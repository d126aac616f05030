"""What the site's own history says: it has had posts; categories removed on purpose.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 05:00:00.000000

`feedsvc init` must never undo an edit (README, "One source of truth"), so two facts are kept
in the database rather than guessed from what is there now:

- ``site_state.had_posts``: set once the first post is stored, never cleared. Sample posts load
  only while it is false; "no posts now" is not the same thing (all of them were deleted). A
  trigger sets it, so every way a post is stored (API, CLI, sources, imports, restores, code
  written later) counts, without each having to remember. It fires on every insert but only
  writes while the flag is still false (SQLite: the WHEN clause; PostgreSQL: the WHERE). An
  existing database has had posts if it has some, or remembers ids given to deleted ones.
  Note for later migrations: an SQLite batch rebuild of ``posts`` (recreate) drops its
  triggers; such a migration must create ``posts_mark_had_posts`` again.
- ``removed_categories``: the slugs removed through the API or CLI, which the categories file
  then no longer brings back (`feedsvc category sync` does, explicitly).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import feedsvc.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_FUNCTION = """
CREATE FUNCTION feedsvc_mark_had_posts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE site_state SET had_posts = true WHERE NOT had_posts;
    RETURN NULL;
END
$$
"""
_PG_TRIGGER = """
CREATE TRIGGER posts_mark_had_posts AFTER INSERT ON posts
FOR EACH STATEMENT EXECUTE FUNCTION feedsvc_mark_had_posts()
"""
_SQLITE_TRIGGER = """
CREATE TRIGGER posts_mark_had_posts AFTER INSERT ON posts
WHEN (SELECT had_posts FROM site_state WHERE id = 1) = 0
BEGIN
    UPDATE site_state SET had_posts = 1 WHERE id = 1;
END
"""


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("site_state") as batch:
        batch.add_column(
            sa.Column("had_posts", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "removed_categories",
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("removed_at", feedsvc.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_removed_categories")),
    )
    evidence = ["EXISTS (SELECT 1 FROM posts)", "EXISTS (SELECT 1 FROM post_changes)"]
    if bind.dialect.name == "sqlite":
        evidence.append("EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'posts' AND seq > 0)")
        op.execute(_SQLITE_TRIGGER)
    else:
        evidence.append("(SELECT is_called FROM posts_id_seq)")
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    op.execute(f"UPDATE site_state SET had_posts = true WHERE {' OR '.join(evidence)}")


def downgrade() -> None:
    bind = op.get_bind()
    op.execute(
        "DROP TRIGGER posts_mark_had_posts" + ("" if bind.dialect.name == "sqlite" else " ON posts")
    )
    if bind.dialect.name != "sqlite":
        op.execute("DROP FUNCTION feedsvc_mark_had_posts()")
    op.drop_table("removed_categories")
    with op.batch_alter_table("site_state") as batch:
        batch.drop_column("had_posts")
