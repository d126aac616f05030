"""Admin accounts: create, change the password, remove, and sign in with a lockout.

Passwords are kept only as Argon2id hashes (argon2-cffi's defaults, RFC 9106's second
recommended profile: 64 MiB, 3 passes), upgraded on the next sign-in when those change.

The lockout: ``admin.max_failures`` failed sign-ins of one account from one address within
``admin.failure_window_minutes`` lock that pair out for ``admin.lockout_minutes`` after the
last of them; ``admin.max_failures_per_address`` failures from one address within the window,
whatever the names, lock that address out. The failures are rows in ``login_failures`` so
that every worker process counts all of them. The check and the record are two short
transactions around the hash check (which takes ~0.1 s and must not hold SQLite's write
lock): attempts racing in parallel can go a few past the limit, never far past it.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feedsvc.context import Context
from feedsvc.errors import Conflict, Invalid, NotFound
from feedsvc.models import AdminUser
from feedsvc.repo import users as user_repo

NAME_MAX = 50
PASSWORD_MIN = 10
# Argon2 takes any length, but nobody types more: a bound keeps a hostile form cheap.
PASSWORD_MAX = 1024

# Module-level so that tests can swap in cheaper parameters.
hasher = PasswordHasher()

WRONG = "用户名或密码错误。"


def check_name(name: str) -> str:
    """The name as stored, or ``Invalid``: 1 to 50 characters, no control characters, no
    spaces at either end (they would be invisible in every list)."""
    if not 1 <= len(name) <= NAME_MAX:
        raise Invalid(f"user name must be 1 to {NAME_MAX} characters", fields={"name": "length"})
    if any(unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") for char in name):
        raise Invalid(
            "user name must not contain control characters or bytes that are not UTF-8",
            fields={"name": "characters"},
        )
    if name != name.strip():
        raise Invalid("user name must not begin or end with a space", fields={"name": "spaces"})
    return name


def check_password(password: str) -> str:
    if "\x00" in password:
        raise Invalid("password must not contain a NUL character", fields={"password": "NUL"})
    if any(unicodedata.category(char) == "Cs" for char in password):
        raise Invalid("password is not UTF-8 text", fields={"password": "encoding"})
    if len(password) < PASSWORD_MIN:
        raise Invalid(
            f"password must be at least {PASSWORD_MIN} characters", fields={"password": "short"}
        )
    if len(password) > PASSWORD_MAX:
        raise Invalid(
            f"password must be at most {PASSWORD_MAX} characters", fields={"password": "long"}
        )
    return password


def password_stamp(user: AdminUser) -> str:
    """Changes whenever the password does: a session remembers it, so `feedsvc user passwd`
    ends every session signed in with the old password."""
    return hashlib.sha256(user.password_hash.encode("ascii")).hexdigest()[:16]


def create_user(ctx: Context, name: str, password: str) -> AdminUser:
    name = check_name(name)
    password_hash = hasher.hash(check_password(password))
    try:
        with ctx.db.write() as session:
            if user_repo.get_user_by_name(session, name) is not None:
                raise Conflict(f"user {name!r} already exists")
            return user_repo.add_user(
                session,
                AdminUser(name=name, password_hash=password_hash, created_at=ctx.clock.now()),
            )
    except IntegrityError:  # another process created it between the check and the insert
        raise Conflict(f"user {name!r} already exists") from None


def set_password(ctx: Context, name: str, password: str) -> AdminUser:
    password_hash = hasher.hash(check_password(password))
    with ctx.db.write() as session:
        user = _existing(session, name)
        user.password_hash = password_hash
        return user


def remove_user(ctx: Context, name: str) -> int:
    """Remove an account (its sessions end on their next request); the accounts left."""
    with ctx.db.write() as session:
        user_repo.delete_user(session, _existing(session, name))
        session.flush()
        return user_repo.count_users(session)


def list_users(ctx: Context) -> list[AdminUser]:
    with ctx.db.read() as session:
        return user_repo.list_users(session)


def get_user(ctx: Context, user_id: int) -> AdminUser | None:
    with ctx.db.read() as session:
        return user_repo.get_user(session, user_id)


def _existing(session: Session, name: str) -> AdminUser:
    user = user_repo.get_user_by_name(session, name) if len(name) <= NAME_MAX else None
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


@dataclass(frozen=True)
class SignIn:
    """A sign-in's outcome: the user, or the message to show (in the admin's language)."""

    user: AdminUser | None
    message: str = ""
    locked: bool = False  # refused without looking at the password (the lockout)


@cache
def _dummy_hash() -> str:
    # Checked against when the name is no user's, so that the answer takes as long.
    return hasher.hash("not a password of anyone")


def sign_in(ctx: Context, name: str, password: str, address: str) -> SignIn:
    now = ctx.clock.now()
    try:
        name = check_name(name)
    except Invalid:
        return SignIn(None, WRONG)  # no account can have it: nothing to count
    if not password or len(password) > PASSWORD_MAX or "\x00" in password:
        return SignIn(None, WRONG)
    address = address[:64]
    with ctx.db.read() as session:
        until = _locked_until(ctx, session, name, address, now)
        user = user_repo.get_user_by_name(session, name)
    if until is not None:
        minutes = max(1, math.ceil((until - now).total_seconds() / 60))
        return SignIn(None, f"登录失败次数过多，已暂时锁定，请 {minutes} 分钟后再试。", True)
    if not _verify(user.password_hash if user else _dummy_hash(), password) or user is None:
        limits = ctx.settings.admin
        keep = timedelta(minutes=limits.failure_window_minutes + limits.lockout_minutes)
        with ctx.db.write() as session:
            user_repo.add_failure(session, name, address, now)
            user_repo.prune_failures(session, now - keep)
        return SignIn(None, WRONG)
    with ctx.db.write() as session:
        user_repo.clear_failures(session, name, address)
        live = user_repo.get_user(session, user.id)
        if live is None:  # removed meanwhile
            return SignIn(None, WRONG)
        live.last_login_at = now
        if hasher.check_needs_rehash(live.password_hash):
            live.password_hash = hasher.hash(password)
        return SignIn(live)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _locked_until(
    ctx: Context, session: Session, name: str, address: str, now: datetime
) -> datetime | None:
    limits = ctx.settings.admin
    window = timedelta(minutes=limits.failure_window_minutes)
    lockout = timedelta(minutes=limits.lockout_minutes)
    recent = user_repo.recent_failures(session, name, address, limits.max_failures)
    if (
        len(recent) >= limits.max_failures
        and recent[0] - recent[-1] <= window
        and now < recent[0] + lockout
    ):
        return recent[0] + lockout
    if user_repo.address_failures_since(session, address, now - window) >= (
        limits.max_failures_per_address
    ):
        return now + lockout
    return None
