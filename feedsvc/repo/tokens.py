"""API token queries: only SHA-256 hashes are stored."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.models import ApiToken


def find_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def get_token(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def find_by_name(session: Session, name: str) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.name == name)))
