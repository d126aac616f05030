"""Post queries: lookups, the API's filtered listing, and what a feed shows.

Every list is newest first, ``(published_at, id)`` descending, and costs the same at 100,000
posts as at 1,000: each filter has an index that ends with ``(published_at, id)`` (models.py,
migration 0006), so the database walks it backwards from the cursor and stops after one page.
The cursor is a row value, ``(published_at, id) < (:at, :id)``: one range bound on that index,
where the equivalent ``a < x OR (a = x AND b < y)`` is a filter both SQLite and PostgreSQL
apply to every row they read from the start of the list (90% deep: 90% of the table).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from feedsvc.models import Post, Tag, post_tags

_Q = TypeVar("_Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class PostFilter:
    category_id: int | None = None
    status: str | None = None
    tag_id: int | None = None
    # Anonymous readers see only posts that are published and due.
    visible_at: datetime | None = None
    # The admin's list: published posts still to come, and a search of titles.
    scheduled_after: datetime | None = None
    title_contains: str | None = None


@dataclass(frozen=True)
class SortKey:
    """Position in the newest-first order; the API's opaque cursor encodes it."""

    published_at: datetime
    id: int


def get_post(session: Session, post_id: int) -> Post | None:
    return session.get(Post, post_id)


def get_post_by_slug(session: Session, slug: str) -> Post | None:
    return session.scalar(select(Post).where(Post.slug == slug))


def slug_taken(session: Session, slug: str, *, except_id: int | None = None) -> bool:
    query = select(Post.id).where(Post.slug == slug)
    if except_id is not None:
        query = query.where(Post.id != except_id)
    return session.scalar(query) is not None


def slugs_taken(session: Session, slugs: Collection[str]) -> set[str]:
    """Which of these slugs stored posts have (one query)."""
    if not slugs:
        return set()
    return set(session.scalars(select(Post.slug).where(Post.slug.in_(sorted(slugs)))))


def add_post(session: Session, post: Post) -> Post:
    session.add(post)
    session.flush()
    return post


def delete_post(session: Session, post: Post) -> None:
    session.delete(post)
    session.flush()


def _visible(query: Select[Post], now: datetime) -> Select[Post]:
    return query.where(Post.status == "published", Post.published_at <= now)


def list_posts(
    session: Session,
    where: PostFilter,
    *,
    limit: int,
    after: SortKey | None = None,
    offset: int = 0,
) -> list[Post]:
    """One page of the list, newest first: after the cursor ``after`` (the API, the feeds'
    older pages), or past the first ``offset`` posts (the site's numbered pages, whose cost
    grows with the offset)."""
    if (
        after is not None
        and where.visible_at is not None
        and where.status in (None, "published")
        and after.published_at <= where.visible_at
    ):
        # "Due by now" is implied by "older than the cursor", and SQLite, given two upper
        # bounds on published_at, took the looser one as its index bound: a feed page 90%
        # down 100,000 posts walked 18,000 index entries from now to the cursor (2.5 ms, and
        # 2x the page's cost at 1,000 posts). Only the cursor's bound is left.
        where = replace(where, visible_at=None, status="published")
    query = _filtered(session, select(Post), where)
    if after is not None:
        query = query.where(_before(after))
    query = query.order_by(Post.published_at.desc(), Post.id.desc()).limit(limit)
    if offset:
        query = query.offset(offset)
    return list(session.scalars(query))


def newer_keys(session: Session, where: PostFilter, since: SortKey, limit: int) -> list[SortKey]:
    """The sort keys of the first ``limit`` posts at or after ``since`` in the list's order
    reversed: ``since`` itself (if it still matches) and newer, oldest first. A feed page
    learns from them where the page before it starts (RFC 5005 "previous")."""
    query = _filtered(session, select(Post.published_at, Post.id), where)
    query = query.where(
        tuple_(Post.published_at, Post.id)
        >= tuple_(
            literal(since.published_at, Post.published_at.type), literal(since.id, Post.id.type)
        )
    )
    query = query.order_by(Post.published_at, Post.id).limit(limit)
    return [SortKey(published_at, post_id) for published_at, post_id in session.execute(query)]


def _filtered(session: Session, query: _Q, where: PostFilter) -> _Q:
    if where.category_id is not None:
        query = query.where(Post.category_id == where.category_id)
    if where.status is not None:
        query = query.where(Post.status == where.status)
    if where.tag_id is not None:
        query = query.where(_tagged(session, where.tag_id))
    if where.visible_at is not None:
        query = query.where(Post.status == "published", Post.published_at <= where.visible_at)
    if where.scheduled_after is not None:
        query = query.where(Post.status == "published", Post.published_at > where.scheduled_after)
    if where.title_contains:
        # A scan of the titles the other filters leave (no index serves "contains"): the
        # admin's search, a few milliseconds per 10,000 posts. Case-folded for Latin titles;
        # autoescape keeps % and _ literal.
        query = query.where(
            func.lower(Post.title).contains(where.title_contains.lower(), autoescape=True)
        )
    return query


# A tag on at most this many posts is listed from its own rows: all of them read and sorted,
# a bounded cost. A commoner tag is listed by walking the posts in list order.
FEW_TAGGED = 1000


def _tagged(session: Session, tag_id: int) -> ColumnElement[bool]:
    """Posts with this tag, as a condition whose plan costs the same at any corpus size.

    Walking the list in order and probing post_tags by primary key for each post costs about
    limit / (the tag's share of posts) probes per page: constant for a common tag, but a whole
    walk of the table for a rare one (or one only old posts have). Reading the tag's own rows
    and sorting them costs what the tag has: fine for a rare tag, and what grew 2.5x from
    1,000 to 100,000 posts for a common one. So a bounded count (it reads at most
    FEW_TAGGED + 1 index entries) picks: the tag's rows when they are few, else the walk.
    The walk's probe is a scalar subquery, which neither SQLite nor PostgreSQL turns into a
    join that could start from the tag.
    """
    rows = select(post_tags.c.post_id).where(post_tags.c.tag_id == tag_id)
    sample = rows.limit(FEW_TAGGED + 1).subquery()
    if (session.scalar(select(func.count()).select_from(sample)) or 0) <= FEW_TAGGED:
        return Post.id.in_(rows)
    probe = (
        select(literal(1))
        .where(post_tags.c.post_id == Post.id, post_tags.c.tag_id == tag_id)
        .limit(1)
        .scalar_subquery()
    )
    return probe.is_not(None)


def _before(after: SortKey) -> ColumnElement[bool]:
    """Posts after ``after`` in the list (older, or as old with a smaller id): a row value."""
    return tuple_(Post.published_at, Post.id) < tuple_(
        literal(after.published_at, Post.published_at.type), literal(after.id, Post.id.type)
    )


def tag_feed_posts(session: Session, tag_id: int, now: datetime, limit: int) -> list[Post]:
    """Published, due posts with this tag, newest first (the API's tag listing's plan)."""
    return list_posts(session, PostFilter(tag_id=tag_id, visible_at=now), limit=limit)


def feed_posts(session: Session, category_id: int | None, now: datetime, limit: int) -> list[Post]:
    """Published, due posts of one category (None: all), newest first by published_at."""
    query = _visible(select(Post), now)
    if category_id is not None:
        query = query.where(Post.category_id == category_id)
    query = query.order_by(Post.published_at.desc(), Post.id.desc()).limit(limit)
    return list(session.scalars(query))


def next_due(
    session: Session, category_id: int | None, now: datetime, *, tag_id: int | None = None
) -> datetime | None:
    """When the next scheduled post of this feed becomes visible (the cached bytes expire)."""
    # The first one in the feed's index, not min() over all of them (scheduled posts pile up).
    query = select(Post.published_at).where(Post.status == "published", Post.published_at > now)
    if category_id is not None:
        query = query.where(Post.category_id == category_id)
    if tag_id is not None:
        query = query.where(_tagged(session, tag_id))
    return session.scalar(query.order_by(Post.published_at, Post.id).limit(1))


def get_tag(session: Session, name: str) -> Tag | None:
    return session.scalar(select(Tag).where(or_(Tag.name == name, Tag.slug == name)))


def get_tag_by_id(session: Session, tag_id: int) -> Tag | None:
    return session.get(Tag, tag_id)


def get_tag_by_name(session: Session, name: str) -> Tag | None:
    return session.scalar(select(Tag).where(Tag.name == name))


def count_by_state(session: Session, now: datetime) -> tuple[int, int, int]:
    """(published and due, drafts, scheduled: published with a time still to come).

    Three counts, each a range of ix_posts_status_published (status, published_at, id) read
    in the index alone: one pass of the table with a CASE per state read every row (331 ms
    at 100,000 posts on SQLite, bench/admin.py)."""

    def count(*where: ColumnElement[bool]) -> int:
        return int(session.scalar(select(func.count()).select_from(Post).where(*where)) or 0)

    published = Post.status == "published"
    return (
        count(published, Post.published_at <= now),
        count(Post.status == "draft"),
        count(published, Post.published_at > now),
    )


def recently_changed(session: Session, limit: int) -> list[Post]:
    """Posts of every state, the last written first (the admin's dashboard)."""
    return list(
        session.scalars(select(Post).order_by(Post.updated_at.desc(), Post.id.desc()).limit(limit))
    )


def scheduled_posts(session: Session, now: datetime, limit: int) -> list[Post]:
    """Published posts still to come, the soonest first."""
    return list(
        session.scalars(
            select(Post)
            .where(Post.status == "published", Post.published_at > now)
            .order_by(Post.published_at, Post.id)
            .limit(limit)
        )
    )
