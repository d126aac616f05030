"""Indexes that serve every list of posts in its order: newest first by (published_at, id).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 08:00:00.000000

Issue 9 ("corpus scale"): a list must cost the same at 100,000 posts as at 1,000. Each list
filter (none; status; category; category and status, which feeds use) gets an index whose
last columns are ``(published_at, id)``, the list's order and its row-value cursor, so the
database reads one page from the cursor on instead of sorting or filtering the whole table.
The two existing indexes gain ``id`` (PostgreSQL otherwise sorts the ties; SQLite keeps the
rowid in every index anyway) and are recreated under the same names.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_posts_category_feed", table_name="posts")
    op.drop_index("ix_posts_status_published", table_name="posts")
    op.create_index(
        "ix_posts_category_feed", "posts", ["category_id", "status", "published_at", "id"]
    )
    op.create_index("ix_posts_status_published", "posts", ["status", "published_at", "id"])
    op.create_index("ix_posts_category_published", "posts", ["category_id", "published_at", "id"])
    op.create_index("ix_posts_published", "posts", ["published_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_posts_published", table_name="posts")
    op.drop_index("ix_posts_category_published", table_name="posts")
    op.drop_index("ix_posts_status_published", table_name="posts")
    op.drop_index("ix_posts_category_feed", table_name="posts")
    op.create_index("ix_posts_status_published", "posts", ["status", "published_at"])
    op.create_index("ix_posts_category_feed", "posts", ["category_id", "status", "published_at"])
