"""The validators every feed is cached under: a content version and a last-change time.

A write bumps them in its own transaction, so any process that reads them after the write
returned sees the new version and never serves older bytes (see feeds/cache.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, Update, bindparam, select, update
from sqlalchemy.orm import Session

from feedsvc.models import Category, Post, SiteState, Tag, post_tags
from feedsvc.repo import chunked

SITE_STATE_ID = 1


@dataclass(frozen=True)
class FeedState:
    category_id: int | None  # None: the whole-site feed (or a tag's)
    version: int
    changed_at: datetime
    feed_length: int | None
    tag_id: int | None = None  # a tag's feed, /feeds/tags/{slug}.*


# Read on the hot path by feeds/versions.py (through Database.hot_row): a row of
# (id, content_version, feed_changed_at, feed_length) for a category, or
# (content_version, feed_changed_at) for the whole site.
CATEGORY_STATE = select(
    Category.id, Category.content_version, Category.feed_changed_at, Category.feed_length
).where(Category.slug == bindparam("slug"))
SITE_STATE = select(SiteState.content_version, SiteState.feed_changed_at).where(
    SiteState.id == SITE_STATE_ID
)
# (id, content_version, feed_changed_at) of a tag by its slug (feed_changed_at may be NULL).
TAG_STATE = select(Tag.id, Tag.content_version, Tag.feed_changed_at).where(
    Tag.slug == bindparam("slug")
)


def _bump_statements(visible: bool) -> tuple[Update, Update]:
    categories, site = Category.__table__, SiteState.__table__
    assert isinstance(categories, Table) and isinstance(site, Table)
    now = bindparam("now", type_=categories.c.feed_changed_at.type)
    changed = {"feed_changed_at": now} if visible else {}
    return (
        update(categories)
        .where(categories.c.id.in_(bindparam("ids", expanding=True)))
        .values(content_version=categories.c.content_version + 1, **changed),
        update(site)
        .where(site.c.id == SITE_STATE_ID)
        .values(content_version=site.c.content_version + 1, **changed),
    )


# Built once: every write runs them, and building an UPDATE (and its cache key) cost more
# than executing it (0.8 ms against 0.1 ms for the pair on SQLite).
_BUMPS = {visible: _bump_statements(visible) for visible in (False, True)}
# PostgreSQL: both in one statement, one round trip (a data-modifying WITH always runs, to
# completion, whether or not the main statement reads it; rows are locked in the same order).
_PG_BUMPS = {
    visible: site.add_cte(categories.cte("bumped_categories"))
    for visible, (categories, site) in _BUMPS.items()
}


def _bump_tags_statement(visible: bool) -> Update:
    tags = Tag.__table__
    assert isinstance(tags, Table)
    changed = (
        {"feed_changed_at": bindparam("now", type_=tags.c.feed_changed_at.type)} if visible else {}
    )
    return (
        update(tags)
        .where(tags.c.id.in_(bindparam("tag_ids", expanding=True)))
        .values(content_version=tags.c.content_version + 1, **changed)
    )


_TAG_BUMPS = {visible: _bump_tags_statement(visible) for visible in (False, True)}
_POSTS_TAGS = select(post_tags.c.tag_id).where(
    post_tags.c.post_id.in_(bindparam("post_ids", expanding=True))
)
_CATEGORY_TAGS = (
    select(post_tags.c.tag_id)
    .join(Post, Post.id == post_tags.c.post_id)
    .where(Post.category_id == bindparam("category_id"))
    .distinct()
)


def tag_ids_of_posts(session: Session, post_ids: Iterable[int]) -> set[int]:
    """The tags of these posts (whose tag feeds a change to the posts changes)."""
    return {
        tag_id
        for part in chunked(set(post_ids))
        for tag_id in session.scalars(_POSTS_TAGS, {"post_ids": part})
    }


def tag_ids_in_category(session: Session, category_id: int) -> set[int]:
    """The tags of a category's posts (their entries show the category's name)."""
    return set(session.scalars(_CATEGORY_TAGS, {"category_id": category_id}))


def bump(
    session: Session,
    category_ids: Iterable[int],
    now: datetime,
    *,
    visible: bool,
    tag_ids: Iterable[int] = (),
) -> None:
    """Bump the version of these categories' feeds, these tags' feeds and the site feed.

    ``visible``: the change alters what a feed shows now (not only, say, a post scheduled
    for later), so its Last-Modified moves to ``now`` too.
    """
    # Core statements on the tables: the ORM's UPDATE would first look through the session
    # for objects to synchronise, which costs more than the statement itself.
    bump_categories, bump_site = _BUMPS[visible]
    params: dict[str, object] = {"now": now} if visible else {}
    # Sorted (chunked sorts): concurrent writers lock the rows in one order.
    for part in chunked(set(tag_ids)):
        session.execute(_TAG_BUMPS[visible], {**params, "tag_ids": part})
    ids = sorted(set(category_ids))
    if ids and session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_BUMPS[visible], {**params, "ids": ids})
        return
    if ids:
        session.execute(bump_categories, {**params, "ids": ids})
    session.execute(bump_site, params)
