"""The related index persisted: a restarted scheduler continues without rebuilding it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 08:30:00.000000

Three tables (feedsvc/repo/related_index.py): the current generation and its progress markers
(one row), the vocabulary of a generation, and its documents (quantised vectors as int32
arrays, and their related lists). Nothing here is a source of truth: an empty or stale
index only means the next related run rebuilds it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import feedsvc.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "related_index_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=300), nullable=False),
        sa.Column("doc_count", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("applied_seq", sa.Integer(), nullable=False),
        sa.Column("checked_until", feedsvc.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("term_count", sa.Integer(), nullable=False),
        sa.Column("written_at", feedsvc.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_related_index_state")),
    )
    op.create_table(
        "related_index_terms",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("idf", sa.Float(precision=53), nullable=True),
        sa.PrimaryKeyConstraint("generation", "id", name=op.f("pk_related_index_terms")),
    )
    op.create_table(
        "related_index_docs",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("stamp", sa.Float(precision=53), nullable=False),
        sa.Column("term_ids", sa.LargeBinary(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("related", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("generation", "key", name=op.f("pk_related_index_docs")),
    )


def downgrade() -> None:
    op.drop_table("related_index_docs")
    op.drop_table("related_index_terms")
    op.drop_table("related_index_state")
