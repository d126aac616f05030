"""API token queries: only SHA-256 hashes are stored."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from feedsvc.models import ApiToken
from feedsvc.repo import as_loaded


def find_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


_TOKENS = cast(Table, ApiToken.__table__)
# Every authenticated request reads it: through Database.hot_row, one row without a session.
BY_HASH = select(_TOKENS).where(_TOKENS.c.token_hash == bindparam("token_hash"))


def token_from_row(row: tuple[Any, ...]) -> ApiToken:
    """A BY_HASH row as a detached ApiToken, as if loaded and the session closed."""
    return as_loaded(ApiToken, dict(zip(BY_HASH.selected_columns.keys(), row, strict=True)))


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def get_token(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def find_by_name(session: Session, name: str) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.name == name)))
