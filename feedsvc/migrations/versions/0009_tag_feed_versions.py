"""Tag feeds: each tag gets its own validators, like a category.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 18:00:00.000000

``tags.content_version`` is bumped by every write that changes what /feeds/tags/{slug}.*
shows (services/posts.py: the tags of a post before and after the write), so a write to a
post tagged A changes A's ETag and leaves B's alone. ``tags.feed_changed_at`` is when what
that feed shows last changed (Last-Modified, with posts that became due since); NULL for a
tag no published write has touched yet (a tag created by a draft). Existing tags start from
the site feed's last change: every write that could have changed a tag feed changed the site
feed too, so that is never earlier than the tag's real last change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import feedsvc.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN on both backends (no SQLite table rebuild: tags keeps its AUTOINCREMENT).
    op.add_column(
        "tags", sa.Column("content_version", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "tags", sa.Column("feed_changed_at", feedsvc.db.UTCDateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE tags SET feed_changed_at = (SELECT feed_changed_at FROM site_state WHERE id = 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("tags") as batch:
        batch.drop_column("feed_changed_at")
        batch.drop_column("content_version")
