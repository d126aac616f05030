"""The admin's accounts and its record of failed sign-ins.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 22:00:00.000000

``admin_users``: who may sign in at /admin (``feedsvc user create``), with an Argon2id hash.
``login_failures``: one row per failed sign-in (account name tried, client address, time),
counted by every worker for the lockout. Both start empty: nobody can sign in until
``feedsvc user create`` has made an account.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import feedsvc.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, feedsvc.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        _time("created_at", nullable=False),
        _time("last_login_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_users")),
        sa.UniqueConstraint("name", name=op.f("uq_admin_users_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        _time("failed_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_login_failures_pair", "login_failures", ["name", "address", "failed_at"], unique=False
    )
    op.create_index(
        "ix_login_failures_address", "login_failures", ["address", "failed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("admin_users")
