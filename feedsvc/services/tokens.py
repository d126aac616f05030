"""API tokens: created once and shown once, kept only as SHA-256 hashes, revocable."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from feedsvc.context import Context
from feedsvc.db import storage_fault
from feedsvc.errors import Invalid, NotFound
from feedsvc.models import ApiToken
from feedsvc.repo import tokens as token_repo
from feedsvc.schemas import parse_id, parse_whole_number

log = logging.getLogger("feedsvc.tokens")

TOKEN_PREFIX = "fsv_"
# Record last use at most this often: authenticated reads must not all become writes.
_LAST_USED_GRANULARITY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(ctx: Context, name: str) -> tuple[ApiToken, str]:
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("token name must be 1 to 100 characters", fields={"name": "1-100 chars"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = ctx.clock.now()
    with ctx.db.write() as session:
        row = ApiToken(name=name, token_hash=hash_token(token), created_at=now)
        session.add(row)
        session.flush()
        return row, token


def authenticate(ctx: Context, token: str) -> ApiToken | None:
    """The live token row for this bearer token, or None (unknown or revoked)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    # Read on every authenticated request, never cached: a revocation counts at once.
    found = ctx.db.hot_row(token_repo.BY_HASH, {"token_hash": hash_token(token)})
    row = None if found is None else token_repo.token_from_row(found)
    if row is None or row.revoked_at is not None:
        return None
    now = ctx.clock.now()
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_GRANULARITY:
        try:
            with ctx.db.write() as session:
                live = token_repo.get_token(session, row.id)
                if live is not None:
                    live.last_used_at = now
        except SQLAlchemyError as exc:
            # Bookkeeping only: a read-only or full database must not fail an authenticated
            # read. A fault that is not storage's is a bug and still surfaces.
            fault = storage_fault(exc)
            if fault is None:
                raise
            log.warning("token %d: last use not recorded: %s", row.id, fault.message)
    return row


def revoke_token(ctx: Context, ident: str) -> list[ApiToken]:
    """Revoke by id or by name (all tokens of that name).

    Only ASCII digits are an id, and only one both backends can store: a larger number matches
    no token rather than overflowing the driver.
    """
    now = ctx.clock.now()
    with ctx.db.write() as session:
        if parse_whole_number(ident) is not None:
            token_id = parse_id(ident)
            found = token_repo.get_token(session, token_id) if token_id else None
            rows = [found] if found is not None else []
        else:
            rows = token_repo.find_by_name(session, ident)
        if not rows:
            raise NotFound(f"no token with id or name {ident!r}")
        for row in rows:
            if row.revoked_at is None:
                row.revoked_at = now
        return rows


def list_tokens(ctx: Context) -> list[ApiToken]:
    with ctx.db.read() as session:
        return token_repo.list_tokens(session)
