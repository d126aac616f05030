"""Post writes and their rules, one transaction each.

Every write that can change what a feed shows bumps that feed's content version in the same
transaction (repo/feedstate.py), so no process serves bytes older than a returned write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feedsvc.content import derive_summary, render_pages, slug_from_title
from feedsvc.context import Context
from feedsvc.errors import Conflict, Invalid, NotFound
from feedsvc.models import Category, Post
from feedsvc.repo import categories as category_repo
from feedsvc.repo import feedstate
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from feedsvc.repo import sources as source_repo
from feedsvc.repo.tags import get_or_create_tags
from feedsvc.schemas import PostCreate, PostUpdate


@dataclass(frozen=True)
class _FeedPresence:
    """Where a post stands in the feeds, before or after a write."""

    category_id: int
    published: bool  # published, due or scheduled
    visible: bool  # published and due: in the feed now

    @classmethod
    def of(cls, post: Post, now: datetime) -> _FeedPresence:
        published = post.status == "published"
        return cls(post.category_id, published, published and post.published_at <= now)


def _record_write(
    session: Session,
    post_id: int,
    before: _FeedPresence | None,
    after: _FeedPresence | None,
    now: datetime,
) -> None:
    """Bump the validators of every feed the write changes; log it for the related refresh."""
    states = [state for state in (before, after) if state is not None and state.published]
    if not states:
        return  # drafts never reach a feed: their writes leave every validator alone
    related_repo.log_change(session, post_id, now)
    # Posts whose related blocks show this one show its title and link: their feeds change.
    shown_by = related_repo.referrers(session, [post_id])
    if after is None:
        # Deleting cascades their stored rows away: log them so the refresh refills the gap.
        for owner in shown_by:
            related_repo.log_change(session, owner, now)
    categories = {state.category_id for state in states}
    categories |= related_repo.category_ids(session, shown_by)
    feedstate.bump(
        session, categories, now, visible=bool(shown_by) or any(s.visible for s in states)
    )


def _category(session: Session, slug: str) -> Category:
    category = category_repo.get_category(session, slug)
    if category is None:
        raise Invalid(
            f"invalid input: category: unknown category {slug!r}",
            fields={"category": f"unknown category {slug!r}"},
        )
    return category


def _pages(content: str, fmt: str) -> list[str]:
    pages = render_pages(content, fmt)
    if not pages:
        raise Invalid(
            "invalid input: content: is empty once sanitized",
            fields={"content": "is empty once sanitized"},
        )
    return pages


def _in_site_tz(ctx: Context, value: datetime) -> datetime:
    # A naive time is read in the site's time zone (Beijing time by default).
    return value.replace(tzinfo=ctx.settings.site.tz) if value.tzinfo is None else value


def _check_year(value: datetime) -> datetime:
    if not 1970 <= value.year <= 9998:
        raise Invalid(
            "invalid input: published_at: year must be between 1970 and 9998",
            fields={"published_at": "year must be between 1970 and 9998"},
        )
    return value


def _free_slug(session: Session, title: str) -> str:
    base = slug_from_title(title)
    slug, n = base, 1
    while post_repo.slug_taken(session, slug):
        n += 1
        slug = f"{base}-{n}"
    return slug


def _slug_conflict(slug: str) -> Conflict:
    return Conflict(f"slug {slug!r} is already taken", fields={"slug": "is already taken"})


def new_guid(ctx: Context, now: datetime) -> str:
    """RFC 4151 tag URI; minted once, it survives title, slug and category changes."""
    day = now.astimezone(ctx.settings.site.tz).date().isoformat()
    return f"tag:{ctx.settings.site.authority},{day}:post/{uuid.uuid4().hex}"


def _insert(session: Session, post: Post, *, slug_given: bool) -> None:
    """Insert; a generated slug taken meanwhile by a concurrent writer gets the next suffix."""
    for _ in range(5):
        try:
            with session.begin_nested():
                post_repo.add_post(session, post)
            return
        except IntegrityError:
            if slug_given:
                raise _slug_conflict(post.slug) from None
            post.slug = _free_slug(session, post.title)
    raise Conflict("could not find a free slug; give one explicitly", fields={"slug": "busy"})


def create_post(ctx: Context, data: PostCreate, *, origin_link: str | None = None) -> Post:
    with ctx.db.write() as session:
        return insert_post(ctx, session, data, origin_link=origin_link)


def insert_post(
    ctx: Context, session: Session, data: PostCreate, *, origin_link: str | None = None
) -> Post:
    """Create a post inside the caller's write transaction (an import stores its own
    bookkeeping in the same one, so a crash can never leave one without the other)."""
    now = ctx.clock.now()
    pages = _pages(data.content, data.format)
    published_at = _check_year(_in_site_tz(ctx, data.published_at or now))
    category = _category(session, data.category)
    if data.slug is not None and post_repo.slug_taken(session, data.slug):
        raise _slug_conflict(data.slug)
    post = Post(
        slug=data.slug or _free_slug(session, data.title),
        guid=new_guid(ctx, now),
        # By id, not relationship: the post joins the session only when inserted.
        category_id=category.id,
        title=data.title,
        author=data.author,
        summary=data.summary or derive_summary(pages),
        summary_given=bool(data.summary),
        format=data.format,
        body=data.content,
        pages=pages,
        status=data.status,
        published_at=published_at,
        created_at=now,
        # A backdated post (an import, a sample) was last modified when it was published.
        updated_at=min(now, published_at),
        origin_link=origin_link,
        tags=get_or_create_tags(session, data.tags),
    )
    _insert(session, post, slug_given=data.slug is not None)
    post.category = category  # loaded now, for use after the session ends
    _record_write(session, post.id, None, _FeedPresence.of(post, now), now)
    return post


def update_post(
    ctx: Context, post_id: int, data: PostUpdate, *, origin_link: str | None = None
) -> Post:
    now = ctx.clock.now()
    given = data.model_fields_set
    with ctx.db.write() as session:
        post = post_repo.get_post(session, post_id)
        if post is None:
            raise NotFound(f"no post with id {post_id}")
        before = _FeedPresence.of(post, now)
        if data.category is not None:
            post.category = _category(session, data.category)
            post.category_id = post.category.id
        if data.slug is not None and data.slug != post.slug:
            if post_repo.slug_taken(session, data.slug, except_id=post.id):
                raise _slug_conflict(data.slug)
            post.slug = data.slug
        if data.title is not None:
            post.title = data.title
        if data.author is not None:
            post.author = data.author
        if data.content is not None or data.format is not None:
            post.format = data.format or post.format
            post.body = data.content if data.content is not None else post.body
            post.pages = _pages(post.body, post.format)
        if "summary" in given:
            post.summary_given = bool(data.summary)
            post.summary = data.summary or ""
        if not post.summary_given:
            post.summary = derive_summary(post.pages)
        if data.tags is not None:
            post.tags = get_or_create_tags(session, data.tags)
        if data.status is not None:
            post.status = data.status
        if origin_link is not None:
            post.origin_link = origin_link
        if data.published_at is not None:
            post.published_at = _check_year(_in_site_tz(ctx, data.published_at))
        if not session.is_modified(post):
            return post  # nothing changed: keep updated_at and every feed's validators
        post.updated_at = now
        slug = post.slug  # read now: after a failed flush the session can load nothing
        try:
            session.flush()
        except IntegrityError:
            raise _slug_conflict(slug) from None
        _record_write(session, post.id, before, _FeedPresence.of(post, now), now)
        return post


def delete_post(ctx: Context, post_id: int) -> None:
    now = ctx.clock.now()
    with ctx.db.write() as session:
        post = post_repo.get_post(session, post_id)
        if post is None:
            raise NotFound(f"no post with id {post_id}")
        before = _FeedPresence.of(post, now)
        _record_write(session, post.id, before, None, now)
        source_repo.mark_deleted(session, post.id)  # an aggregated post is never re-imported
        post_repo.delete_post(session, post)
