"""Stored related lists, the post change log, and what the related refresh reads."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from urllib.parse import urlsplit

from sqlalchemy import Table, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session, selectinload

from feedsvc.models import ExternalItem, Post, PostChange, RelatedItem, Source, Tag, post_tags
from feedsvc.repo import chunked, feedstate

_RELATED_ITEMS = cast(Table, RelatedItem.__table__)
# (key, score), best first; a key is "post:ID" (ours) or "ext:ID" (an upstream item).
Ranked = list[tuple[str, float]]


def post_key(post_id: int) -> str:
    return f"post:{post_id}"


def external_key(item_id: int) -> str:
    return f"ext:{item_id}"


def split_key(key: str) -> tuple[int | None, int | None]:
    """(post id, external item id) of a key."""
    kind, _, ident = key.partition(":")
    return (int(ident), None) if kind == "post" else (None, int(ident))


@dataclass(frozen=True)
class RelatedView:
    """A related post or upstream item as readers see it (feeds, pages, API)."""

    post_id: int | None
    external_id: int | None
    slug: str | None  # ours: the page is /posts/{slug}
    link: str | None  # an upstream item: the original article
    source: str | None  # an upstream item: its source's name
    title: str
    summary: str
    score: float
    rank: int
    computed_at: datetime


# -- the change log --------------------------------------------------------------------------


# A Core insert on the table, built once: the row is never read back in this session, and an
# insert of the ORM entity would take the ORM's bulk path (several times the statement's cost).
_LOG_CHANGE = insert(cast(Table, PostChange.__table__))


def log_change(session: Session, post_id: int, now: datetime) -> None:
    session.execute(_LOG_CHANGE, {"post_id": post_id, "changed_at": now})


def log_changes(session: Session, post_ids: Sequence[int], now: datetime) -> None:
    """log_change for many posts, in one statement (in this order)."""
    if post_ids:
        session.execute(
            _LOG_CHANGE, [{"post_id": post_id, "changed_at": now} for post_id in post_ids]
        )


def max_change_seq(session: Session) -> int:
    return session.scalar(select(func.max(PostChange.seq))) or 0


def changed_since(session: Session, after_seq: int, upto_seq: int) -> set[int]:
    return set(
        session.scalars(
            select(PostChange.post_id).where(PostChange.seq > after_seq, PostChange.seq <= upto_seq)
        )
    )


def became_due(session: Session, after: datetime, upto: datetime) -> set[int]:
    """Scheduled posts that became visible in (after, upto]: no write marks them."""
    return set(
        session.scalars(
            select(Post.id).where(
                Post.status == "published", Post.published_at > after, Post.published_at <= upto
            )
        )
    )


def prune_changes(session: Session, before: datetime, upto_seq: int) -> None:
    session.execute(
        delete(PostChange).where(PostChange.changed_at < before, PostChange.seq <= upto_seq)
    )


def forget_shown(session: Session, owners: Collection[int], now: datetime) -> None:
    """These posts' related blocks are about to lose items (deleted in this transaction):
    their feeds change now, and the next refresh refills their lists."""
    for post_id in owners:
        log_change(session, post_id, now)
    if owners:
        feedstate.bump(
            session,
            category_ids(session, owners),
            now,
            visible=True,
            tag_ids=feedstate.tag_ids_of_posts(session, owners),
        )


# -- what the index reads --------------------------------------------------------------------


def visible_post_ids(session: Session, now: datetime) -> list[int]:
    query = select(Post.id).where(Post.status == "published", Post.published_at <= now)
    return list(session.scalars(query.order_by(Post.id)))


def visible_posts(
    session: Session, now: datetime, ids: Collection[int] | None = None
) -> list[Post]:
    query = (
        select(Post)
        .where(Post.status == "published", Post.published_at <= now)
        .options(selectinload(Post.tags))
        .order_by(Post.id)
    )
    if ids is None:
        return list(session.scalars(query))
    return [
        post for part in chunked(ids) for post in session.scalars(query.where(Post.id.in_(part)))
    ]


@dataclass(frozen=True)
class PostText:
    """What the related index reads of a post."""

    id: int
    title: str
    tags: tuple[str, ...]  # by name, as Post.tags orders them
    pages: list[str]
    published_at: datetime


def visible_post_texts(session: Session, now: datetime, ids: Collection[int]) -> list[PostText]:
    """These posts if published and due, by id: the columns the index reads, no ORM objects
    (a rebuild reads every post: loading whole Post rows cost more than segmenting them)."""
    query = select(Post.id, Post.title, Post.pages, Post.published_at).where(
        Post.status == "published", Post.published_at <= now
    )
    tagged = (
        select(post_tags.c.post_id, Tag.name)
        .join(Tag, Tag.id == post_tags.c.tag_id)
        .order_by(post_tags.c.post_id, Tag.name)
    )
    found = []
    for part in chunked(ids):
        tags: dict[int, list[str]] = defaultdict(list)
        for post_id, name in session.execute(tagged.where(post_tags.c.post_id.in_(part))):
            tags[post_id].append(name)
        for post_id, title, pages, published_at in session.execute(
            query.where(Post.id.in_(part)).order_by(Post.id)
        ):
            found.append(PostText(post_id, title, tuple(tags[post_id]), pages, published_at))
    return found


# -- stored lists ----------------------------------------------------------------------------


def stored_lists(session: Session, post_ids: Iterable[int] | None = None) -> dict[int, Ranked]:
    query = select(
        RelatedItem.post_id,
        RelatedItem.related_post_id,
        RelatedItem.external_item_id,
        RelatedItem.score,
    ).order_by(RelatedItem.post_id, RelatedItem.rank)
    if post_ids is not None:
        query = query.where(RelatedItem.post_id.in_(list(post_ids)))
    lists: dict[int, Ranked] = defaultdict(list)
    for post_id, related_id, external_id, score in session.execute(query):
        # A row names a post or an external item (a CHECK constraint): exactly one is set.
        if related_id is not None:
            lists[post_id].append((post_key(related_id), score))
        elif external_id is not None:
            lists[post_id].append((external_key(external_id), score))
    return dict(lists)


def replace_lists(session: Session, lists: dict[int, Ranked], now: datetime) -> None:
    """Several lists at once: one DELETE and one multi-row INSERT (a rebuild writes 100k)."""
    if not lists:
        return
    for part in chunked(lists):
        session.execute(delete(RelatedItem).where(RelatedItem.post_id.in_(part)))
    rows = []
    for post_id, items in lists.items():
        for rank, (key, score) in enumerate(items, start=1):
            related_id, external_id = split_key(key)
            rows.append(
                {
                    "post_id": post_id,
                    "rank": rank,
                    "related_post_id": related_id,
                    "external_item_id": external_id,
                    "score": score,
                    "computed_at": now,
                }
            )
    if rows:
        session.execute(insert(_RELATED_ITEMS), rows)  # Core: rows never read back


# Built once, on the tables: every edit asks who shows the post (an ORM select cost several
# times the query). Core statements do not autoflush as the ORM's did: both flush first.
_POSTS = cast(Table, Post.__table__)
_REFERRERS = select(_RELATED_ITEMS.c.post_id).where(
    _RELATED_ITEMS.c.related_post_id.in_(bindparam("ids", expanding=True))
)
_CATEGORY_IDS = select(_POSTS.c.category_id).where(
    _POSTS.c.id.in_(bindparam("ids", expanding=True))
)


def referrers(session: Session, post_ids: Collection[int]) -> set[int]:
    """Posts whose stored lists show any of these posts."""
    session.flush()
    return {
        owner for part in chunked(post_ids) for owner in session.scalars(_REFERRERS, {"ids": part})
    }


def category_ids(session: Session, post_ids: Collection[int]) -> set[int]:
    session.flush()
    return {
        category
        for part in chunked(post_ids)
        for category in session.scalars(_CATEGORY_IDS, {"ids": part})
    }


def related_views(
    session: Session, post_ids: Collection[int], now: datetime
) -> dict[int, list[RelatedView]]:
    """Stored lists of these posts: related posts visible now, and upstream items.

    Each query starts from ids and reads by primary key: the lists' rows by ``post_id`` (the
    key's first column), then the posts and upstream items they name by id. A join of
    related_items to posts lets the planner start from the posts instead, and SQLite without
    statistics does: it walked every published post (600-725 ms at 100,000 posts, against
    about 1 ms from the ids). Visibility is checked here, on the few rows read.
    """
    if not post_ids:
        return {}
    rows = [
        row
        for part in chunked(post_ids)
        for row in session.execute(
            select(
                RelatedItem.post_id,
                RelatedItem.related_post_id,
                RelatedItem.external_item_id,
                RelatedItem.score,
                RelatedItem.rank,
                RelatedItem.computed_at,
            ).where(RelatedItem.post_id.in_(part))
        )
    ]
    posts = {
        pid: (slug, title, summary)
        for part in chunked({row.related_post_id for row in rows if row.related_post_id})
        for pid, slug, title, summary, status, published_at in session.execute(
            select(
                Post.id, Post.slug, Post.title, Post.summary, Post.status, Post.published_at
            ).where(Post.id.in_(part))
        )
        if status == "published" and published_at <= now
    }
    externals = {
        xid: (link, name or urlsplit(url).hostname or url, title, excerpt)
        for part in chunked({row.external_item_id for row in rows if row.external_item_id})
        for xid, link, name, url, title, excerpt in session.execute(
            select(
                ExternalItem.id,
                ExternalItem.link,
                Source.title,
                Source.url,
                ExternalItem.title,
                ExternalItem.excerpt,
            )
            .join(Source, Source.id == ExternalItem.source_id)
            .where(ExternalItem.id.in_(part))
        )
    }
    views: dict[int, list[RelatedView]] = defaultdict(list)
    for owner, pid, xid, score, rank, at in rows:
        if pid is not None and pid in posts:
            slug, title, summary = posts[pid]
            views[owner].append(
                RelatedView(pid, None, slug, None, None, title, summary, score, rank, at)
            )
        elif xid is not None and xid in externals:
            link, source, title, excerpt = externals[xid]
            views[owner].append(
                RelatedView(None, xid, None, link, source, title, excerpt, score, rank, at)
            )
    return {owner: sorted(items, key=lambda v: v.rank) for owner, items in views.items()}
