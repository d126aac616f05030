"""Post queries: lookups, the API's filtered listing, and what a feed shows."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from feedsvc.models import Post, Tag, post_tags


@dataclass(frozen=True)
class PostFilter:
    category_id: int | None = None
    status: str | None = None
    tag_id: int | None = None
    # Anonymous readers see only posts that are published and due.
    visible_at: datetime | None = None


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
    session: Session, where: PostFilter, *, limit: int, after: SortKey | None = None
) -> list[Post]:
    query = select(Post)
    if where.category_id is not None:
        query = query.where(Post.category_id == where.category_id)
    if where.status is not None:
        query = query.where(Post.status == where.status)
    if where.tag_id is not None:
        query = query.where(
            Post.id.in_(select(post_tags.c.post_id).where(post_tags.c.tag_id == where.tag_id))
        )
    if where.visible_at is not None:
        query = _visible(query, where.visible_at)
    if after is not None:
        query = query.where(
            or_(
                Post.published_at < after.published_at,
                and_(Post.published_at == after.published_at, Post.id < after.id),
            )
        )
    query = query.order_by(Post.published_at.desc(), Post.id.desc()).limit(limit)
    return list(session.scalars(query))


def feed_posts(session: Session, category_id: int | None, now: datetime, limit: int) -> list[Post]:
    """Published, due posts of one category (None: all), newest first by published_at."""
    query = _visible(select(Post), now)
    if category_id is not None:
        query = query.where(Post.category_id == category_id)
    query = query.order_by(Post.published_at.desc(), Post.id.desc()).limit(limit)
    return list(session.scalars(query))


def next_due(session: Session, category_id: int | None, now: datetime) -> datetime | None:
    """When the next scheduled post of this feed becomes visible (the cached bytes expire)."""
    query = select(func.min(Post.published_at)).where(
        Post.status == "published", Post.published_at > now
    )
    if category_id is not None:
        query = query.where(Post.category_id == category_id)
    return session.scalar(query)


def get_tag(session: Session, name: str) -> Tag | None:
    return session.scalar(select(Tag).where(or_(Tag.name == name, Tag.slug == name)))
