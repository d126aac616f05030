"""WebSub: the feeds watched for changes, the built-in hub's subscriptions and pending requests.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 21:00:00.000000

``websub_topics``: per feed and format, the content version and ETag last seen, when a
scheduled post makes it change next, and the publish ping owed to an external hub.
``websub_subscriptions``: verified (topic, callback) pairs with their lease, secret and
delivery state. ``websub_intents``: requests answered 202 and not yet verified (or denied).
All start empty: nothing is owed to anyone before WebSub is switched on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import feedsvc.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, feedsvc.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "websub_topics",
        sa.Column("feed", sa.String(length=130), nullable=False),
        sa.Column("fmt", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(length=80), nullable=False),
        _time("checked_at", nullable=False),
        _time("recheck_at"),
        _time("ping_due_at"),
        sa.Column("ping_failures", sa.Integer(), server_default="0", nullable=False),
        _time("ping_failing_since"),
        sa.Column("ping_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("feed", "fmt", name=op.f("pk_websub_topics")),
    )
    op.create_index(
        op.f("ix_websub_topics_recheck_at"), "websub_topics", ["recheck_at"], unique=False
    )
    op.create_index(
        op.f("ix_websub_topics_ping_due_at"), "websub_topics", ["ping_due_at"], unique=False
    )
    op.create_table(
        "websub_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed", sa.String(length=130), nullable=False),
        sa.Column("fmt", sa.String(length=10), nullable=False),
        sa.Column("topic", sa.String(length=2048), nullable=False),
        sa.Column("callback", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=True),
        sa.Column("lease_seconds", sa.Integer(), nullable=False),
        _time("created_at", nullable=False),
        _time("verified_at", nullable=False),
        _time("expires_at", nullable=False),
        sa.Column("delivered_etag", sa.String(length=80), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        _time("failing_since"),
        _time("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _time("delivered_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_websub_subscriptions")),
        sa.UniqueConstraint("feed", "fmt", "callback", name="uq_websub_subscriptions_topic"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_websub_subscriptions_expires_at", "websub_subscriptions", ["expires_at"], unique=False
    )
    op.create_table(
        "websub_intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=2048), nullable=False),
        sa.Column("callback", sa.String(length=2000), nullable=False),
        sa.Column("feed", sa.String(length=130), nullable=True),
        sa.Column("fmt", sa.String(length=10), nullable=True),
        sa.Column("secret", sa.String(length=200), nullable=True),
        sa.Column("lease_seconds", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        _time("requested_at", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _time("next_attempt_at", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_websub_intents")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_websub_intents_next_attempt_at", "websub_intents", ["next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("websub_intents")
    op.drop_table("websub_subscriptions")
    op.drop_table("websub_topics")
