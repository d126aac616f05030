"""The create path's statements, as Core inserts on the tables (a new post is written once
and never read back: the ORM's unit of work would cost more than the rows themselves)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedsvc.models import Post, post_tags

_POSTS = cast(Table, Post.__table__)
_INSERTS: dict[str, Insert] = {}


def _insert_post(dialect: str) -> Insert:
    """Built once per dialect: INSERT … ON CONFLICT (slug) DO NOTHING RETURNING id."""
    found = _INSERTS.get(dialect)
    if found is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        found = (
            insert(_POSTS)
            .on_conflict_do_nothing(index_elements=[_POSTS.c.slug])
            .returning(_POSTS.c.id)
        )
        _INSERTS[dialect] = found
    return found


def insert_post(session: Session, values: dict[str, Any], tag_ids: Sequence[int]) -> int | None:
    """Store a post row and its tags; None (and nothing stored) when its slug is taken."""
    statement = _insert_post(session.get_bind().dialect.name)
    post_id = session.execute(statement, values).scalar()
    if post_id is None:
        return None
    if tag_ids:
        session.execute(
            post_tags.insert(), [{"post_id": post_id, "tag_id": tag_id} for tag_id in tag_ids]
        )
    return int(post_id)


_BATCH_INSERTS: dict[str, Insert] = {}


def insert_posts(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Store post rows in one multi-row insert (SQLAlchemy's insertmanyvalues: one statement
    per 1,000 rows on both backends); the ids by guid. A row whose slug is taken is left out
    (ON CONFLICT (slug) DO NOTHING), for the caller to retry alone."""
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    statement = _BATCH_INSERTS.get(dialect)
    if statement is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = _BATCH_INSERTS[dialect] = (
            insert(_POSTS)
            .on_conflict_do_nothing(index_elements=[_POSTS.c.slug])
            .returning(_POSTS.c.guid, _POSTS.c.id)
        )
    return {guid: int(post_id) for guid, post_id in session.execute(statement, list(rows))}


def insert_post_tags(session: Session, pairs: Sequence[tuple[int, int]]) -> None:
    """Store (post id, tag id) pairs in one statement."""
    if pairs:
        session.execute(
            post_tags.insert(),
            [{"post_id": post_id, "tag_id": tag_id} for post_id, tag_id in pairs],
        )
