"""The write path's statements, as Core statements on the tables: a new post is written once
and never read back, an edited one read once and updated once; the ORM's loads and unit of
work cost more than the rows themselves."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from feedsvc.models import Category, Post, Tag, post_tags
from feedsvc.repo import as_loaded

_POSTS = cast(Table, Post.__table__)
_CATEGORIES = cast(Table, Category.__table__)
_TAGS = cast(Table, Tag.__table__)
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


_LOAD_POST = (
    select(_POSTS, _CATEGORIES)
    .join_from(_POSTS, _CATEGORIES, _POSTS.c.category_id == _CATEGORIES.c.id)
    .where(_POSTS.c.id == bindparam("post_id"))
)
_LOAD_TAGS = (  # in the order of Post.tags
    select(_TAGS.c.id, _TAGS.c.name, _TAGS.c.slug)
    .join_from(post_tags, _TAGS, post_tags.c.tag_id == _TAGS.c.id)
    .where(post_tags.c.post_id == bindparam("post_id"))
    .order_by(_TAGS.c.name)
)


def load_post(
    session: Session, post_id: int, *, tags: bool = True
) -> tuple[dict[str, Any], Category, list[Tag]] | None:
    """A post's row (column key -> value), its category and its tags (detached objects, as
    if loaded and the session closed); None when there is no such post. Two queries, or one
    with ``tags=False`` (the tags list is then empty: an edit that replaces them reads only
    their ids, tag_ids)."""
    row = session.execute(_LOAD_POST, {"post_id": post_id}).first()
    if row is None:
        return None
    found = row._mapping
    values = {column.key: found[column] for column in _POSTS.c}
    category = as_loaded(Category, {column.key: found[column] for column in _CATEGORIES.c})
    if not tags:
        return values, category, []
    loaded = [
        as_loaded(Tag, {"id": tag_id, "name": name, "slug": slug})
        for tag_id, name, slug in session.execute(_LOAD_TAGS, {"post_id": post_id})
    ]
    return values, category, loaded


_TAG_IDS = select(post_tags.c.tag_id).where(post_tags.c.post_id == bindparam("post_id"))


def tag_ids(session: Session, post_id: int) -> set[int]:
    return set(session.scalars(_TAG_IDS, {"post_id": post_id}))


def detached_post(values: dict[str, Any], category: Category, tags: list[Tag]) -> Post:
    """A Post holding these values, category and tags, as if loaded and the session closed."""
    post = as_loaded(Post, values)
    set_committed_value(post, "category", category)
    set_committed_value(post, "tags", tags)
    return post


_UPDATE_POST = update(_POSTS).where(_POSTS.c.id == bindparam("post_id"))
_DELETE_TAGS = (
    delete(post_tags)
    .where(post_tags.c.post_id == bindparam("post_id"))
    .where(post_tags.c.tag_id.in_(bindparam("tag_ids", expanding=True)))
)


def update_post(session: Session, post_id: int, changes: dict[str, Any]) -> None:
    """Set these columns (key -> new value) of a post's row."""
    session.execute(_UPDATE_POST, {"post_id": post_id, **changes})


def change_post_tags(
    session: Session, post_id: int, removed: Collection[int], added: Collection[int]
) -> None:
    """Unlink the tags ``removed`` and link the tags ``added``: an edit that adds a tag
    writes one row, not all of them again."""
    if removed:
        session.execute(_DELETE_TAGS, {"post_id": post_id, "tag_ids": sorted(removed)})
    insert_post_tags(session, [(post_id, tag_id) for tag_id in sorted(added)])
