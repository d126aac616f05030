"""Admin accounts and failed sign-ins: queries only (the rules are services/users.py's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from feedsvc.models import AdminUser, LoginFailure


def get_user(session: Session, user_id: int) -> AdminUser | None:
    return session.get(AdminUser, user_id)


def get_user_by_name(session: Session, name: str) -> AdminUser | None:
    return session.scalar(select(AdminUser).where(AdminUser.name == name))


def list_users(session: Session) -> list[AdminUser]:
    return list(session.scalars(select(AdminUser).order_by(AdminUser.id)))


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AdminUser)) or 0


def add_user(session: Session, user: AdminUser) -> AdminUser:
    session.add(user)
    session.flush()
    return user


def delete_user(session: Session, user: AdminUser) -> None:
    session.delete(user)


def recent_failures(session: Session, name: str, address: str, limit: int) -> list[datetime]:
    """When this account failed to sign in from this address, the newest ``limit`` times."""
    return list(
        session.scalars(
            select(LoginFailure.failed_at)
            .where(LoginFailure.name == name, LoginFailure.address == address)
            .order_by(LoginFailure.failed_at.desc(), LoginFailure.id.desc())
            .limit(limit)
        )
    )


def address_failures_since(session: Session, address: str, since: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.address == address, LoginFailure.failed_at > since)
        )
        or 0
    )


def add_failure(session: Session, name: str, address: str, at: datetime) -> None:
    session.add(LoginFailure(name=name, address=address, failed_at=at))


def clear_failures(session: Session, name: str, address: str) -> None:
    session.execute(
        delete(LoginFailure).where(LoginFailure.name == name, LoginFailure.address == address)
    )


def prune_failures(session: Session, before: datetime) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.failed_at < before))
