"""The admin's dashboard at any corpus size: the posts last written, from an index.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 01:10:00.000000

The dashboard lists the ten posts written last (``updated_at`` descending, then ``id``).
Without an index both backends read and sort every post: 590 ms at 100,000 posts on SQLite
(bench/admin.py), against a few index entries with ``ix_posts_updated``. Every write of a
post sets ``updated_at``, so it moves one entry of this index; bench/writes.py measures the
write path.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_posts_updated", "posts", ["updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_posts_updated", table_name="posts")
