"""Slug counters: a namesake's generated slug costs one statement, not one per namesake.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 08:00:00.000000

``slug_counters`` holds, per generated slug base (the pinyin of a title), the last number
handed out (li-cai, li-cai-2 … li-cai-N). It starts empty: the first namesake created after
this migration finds the base taken, reads the namesakes once and catches the counter up
(services/posts.py, repo/slugs.py); from then on each one costs a single upsert.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slug_counters",
        sa.Column("base", sa.String(length=200), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("base", name=op.f("pk_slug_counters")),
    )


def downgrade() -> None:
    op.drop_table("slug_counters")
