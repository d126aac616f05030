"""Post writes and their rules, one transaction each.

Every write that can change what a feed shows bumps that feed's content version in the same
transaction (repo/feedstate.py), so no process serves bytes older than a returned write.

A write transaction holds SQLite's only write lock (and, in a web worker, competes for the
GIL with the readers), so the CPU work comes first: Markdown, sanitizing, the summary and the
slug's pinyin are computed before it begins (prepare_post, _prepare_content). Inside, a create
stores rows with a fixed number of statements: the slug suffix comes from a counter
(repo/slugs.py), never from a search through earlier namesakes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from feedsvc.content import TooDeep, derive_summary, render_pages, slug_from_title
from feedsvc.context import Context
from feedsvc.errors import Conflict, Invalid, NotFound
from feedsvc.models import Category, Post, Tag
from feedsvc.repo import categories as category_repo
from feedsvc.repo import feedstate, post_rows
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from feedsvc.repo import slugs as slug_repo
from feedsvc.repo import sources as source_repo
from feedsvc.repo.tags import get_or_create_tags, tags_for_write
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

    @classmethod
    def of_row(cls, row: dict[str, Any], now: datetime) -> _FeedPresence:
        published = row["status"] == "published"
        return cls(row["category_id"], published, published and row["published_at"] <= now)


def _record_write(
    session: Session,
    post_id: int,
    before: _FeedPresence | None,
    after: _FeedPresence | None,
    now: datetime,
    tag_ids: Iterable[int],
) -> None:
    """Bump the validators of every feed the write changes; log it for the related refresh.

    ``tag_ids``: the post's tags before and after the write (a tag removed or added changes
    that tag's feed too)."""
    states = [state for state in (before, after) if state is not None and state.published]
    if not states:
        return  # drafts never reach a feed: their writes leave every validator alone
    related_repo.log_change(session, post_id, now)
    # Posts whose related blocks show this one show its title and link: their feeds change.
    # A new post is in nobody's list yet.
    shown_by = set() if before is None else related_repo.referrers(session, [post_id])
    if after is None:
        # Deleting cascades their stored rows away: log them so the refresh refills the gap.
        for owner in shown_by:
            related_repo.log_change(session, owner, now)
    categories = {state.category_id for state in states}
    categories |= related_repo.category_ids(session, shown_by)
    tags = set(tag_ids) | feedstate.tag_ids_of_posts(session, shown_by)
    feedstate.bump(
        session,
        categories,
        now,
        visible=bool(shown_by) or any(s.visible for s in states),
        tag_ids=tags,
    )


def _category(session: Session, slug: str) -> Category:
    category = category_repo.get_category(session, slug)
    if category is None:
        raise _unknown_category(slug)
    return category


def _unknown_category(slug: str) -> Invalid:
    return Invalid(
        f"invalid input: category: unknown category {slug!r}",
        fields={"category": f"unknown category {slug!r}"},
    )


def _pages(content: str, fmt: str) -> list[str]:
    try:
        pages = render_pages(content, fmt)
    except TooDeep as exc:
        raise Invalid(f"invalid input: content: {exc}", fields={"content": str(exc)}) from None
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


def _slug_conflict(slug: str) -> Conflict:
    return Conflict(f"slug {slug!r} is already taken", fields={"slug": "is already taken"})


def new_guid(ctx: Context, now: datetime) -> str:
    """RFC 4151 tag URI; minted once, it survives title, slug and category changes."""
    day = now.astimezone(ctx.settings.site.tz).date().isoformat()
    return f"tag:{ctx.settings.site.authority},{day}:post/{uuid.uuid4().hex}"


@dataclass(frozen=True)
class PreparedPost:
    """A create's CPU work, done before its write transaction (which holds SQLite's only
    write lock, and a worker's GIL, while it runs): Markdown, sanitizing, the summary, the
    pinyin of the slug. What is left inside is storing rows."""

    data: PostCreate
    pages: list[str]
    summary: str
    slug_base: str | None  # None: the slug was given


def prepare_post(data: PostCreate) -> PreparedPost:
    pages = _pages(data.content, data.format)
    return PreparedPost(
        data=data,
        pages=pages,
        summary=data.summary or derive_summary(pages),
        slug_base=None if data.slug is not None else slug_from_title(data.title),
    )


# How many generated slugs a create tries: the counter's, and after a collision (rows
# stored around the counter, or a concurrent given slug) the caught-up one, and a few more.
_SLUG_ATTEMPTS = 5


def _generated_slug(session: Session, base: str) -> str:
    return _numbered(base, slug_repo.next_number(session, base))


def _store(session: Session, values: dict[str, Any], tags: list[Tag], base: str | None) -> int:
    """Insert the row; a generated slug found taken moves the counter past its namesakes and
    tries the next. No query looks for a free slug first (the insert skips a taken one), so
    a create costs the same statements whatever the number of earlier namesakes."""
    tag_ids = [tag.id for tag in tags]
    for _ in range(_SLUG_ATTEMPTS):
        post_id = post_rows.insert_post(session, values, tag_ids)
        if post_id is not None:
            return post_id
        if base is None:
            raise _slug_conflict(values["slug"])
        # Rows stored around the counter (a restore, a given slug, an older database).
        slug_repo.catch_up(session, base)
        values["slug"] = _generated_slug(session, base)
    raise Conflict("could not find a free slug; give one explicitly", fields={"slug": "busy"})


def create_post(ctx: Context, data: PostCreate, *, origin_link: str | None = None) -> Post:
    prepared = prepare_post(data)  # outside the write lock
    with ctx.db.write() as session:
        return insert_post(ctx, session, prepared, origin_link=origin_link)


def insert_post(
    ctx: Context,
    session: Session,
    data: PostCreate | PreparedPost,
    *,
    origin_link: str | None = None,
    guid: str | None = None,
) -> Post:
    """Create a post inside the caller's write transaction (an import stores its own
    bookkeeping in the same one, so a crash can never leave one without the other).

    Give a ``PreparedPost`` (prepare_post) to keep the CPU work out of the transaction;
    ``guid``: one the post had elsewhere (a WordPress import), instead of a new one. The
    post returned is not attached to the session: it holds what was stored.
    """
    prepared = data if isinstance(data, PreparedPost) else prepare_post(data)
    data = prepared.data
    # Read inside the transaction: writes commit in the order of their clocks, so a feed's
    # Last-Modified never moves backwards.
    now = ctx.clock.now()
    published_at = _check_year(_in_site_tz(ctx, data.published_at or now))
    # The statements below are Core, built once (the ORM's would cost several times the rows'
    # own cost): what the caller added to this session is flushed first, so they see it.
    session.flush()
    category = category_repo.find_category(session, data.category)
    if category is None:
        raise _unknown_category(data.category)
    tags = tags_for_write(session, data.tags)
    base = prepared.slug_base
    values = _post_row(
        prepared,
        slug=data.slug if base is None else _generated_slug(session, base),
        guid=guid or new_guid(ctx, now),
        category_id=category.id,
        published_at=published_at,
        now=now,
        origin_link=origin_link,
    )
    post = Post(id=_store(session, values, tags, base), **values)
    # As loaded, without attribute events (the post stays out of the session).
    set_committed_value(post, "category", category)
    set_committed_value(post, "tags", tags)  # as given (as the ORM kept them before)
    _record_write(
        session, post.id, None, _FeedPresence.of(post, now), now, [tag.id for tag in tags]
    )
    return post


def _post_row(
    prepared: PreparedPost,
    *,
    slug: str | None,
    guid: str,
    category_id: int | None,
    published_at: datetime,
    now: datetime,
    origin_link: str | None,
) -> dict[str, Any]:
    """The posts row of a new post (insert_post and insert_posts store the same)."""
    data = prepared.data
    return {
        "slug": slug,
        "guid": guid,
        "category_id": category_id,
        "title": data.title,
        "author": data.author,
        "summary": prepared.summary,
        "summary_given": bool(data.summary),
        "format": data.format,
        "body": data.content,
        "pages": prepared.pages,
        "status": data.status,
        "published_at": published_at,
        "created_at": now,
        # A backdated post (an import, a sample) was last modified when it was published.
        "updated_at": min(now, published_at),
        "origin_link": origin_link,
    }


@dataclass(frozen=True)
class NewPost:
    """One post of a batch (insert_posts): prepared outside the transaction."""

    prepared: PreparedPost
    origin_link: str | None = None
    guid: str | None = None  # one it had elsewhere (a WordPress import); else a new one


class _SlugTaken(Exception):
    """A row of a batch found its slug taken: the batch is undone to its savepoint."""


def insert_posts(ctx: Context, session: Session, posts: Sequence[NewPost]) -> list[int]:
    """Create a batch of posts inside the caller's write transaction; their ids, in order.

    What one insert_post per post would store (the same slugs, guids, tags and change log,
    every feed it touches bumped), in a number of statements that does not grow with the
    batch: one category lookup, the tags (a few statements, repo/tags.py), one upsert of the
    counters of every distinct slug base, one multi-row insert of the posts (ids back through
    RETURNING), one of their tags, one of the change log, and ONE version bump of the
    categories touched and the site feed, not one per post.

    When a slug is found taken (rows stored around its counter, a given slug), the batch is
    rolled back to its savepoint and stored post by post with insert_post: its slugs are then
    exactly what one-by-one creates give, and a given slug taken raises Conflict as there.
    An unknown category or a bad date raises Invalid before anything is stored.
    """
    if not posts:
        return []
    now = ctx.clock.now()  # inside: writes commit in the order of their clocks
    categories = category_repo.ids_by_slug(session, {p.prepared.data.category for p in posts})
    rows: list[dict[str, Any]] = []
    for post in posts:
        prepared, data = post.prepared, post.prepared.data
        category_id = categories.get(data.category)
        if category_id is None:
            _category(session, data.category)  # raises Invalid, with the usual message
        published_at = _check_year(_in_site_tz(ctx, data.published_at or now))
        rows.append(
            _post_row(
                prepared,
                slug=data.slug,  # a generated one is numbered below
                guid=post.guid or new_guid(ctx, now),
                category_id=category_id,
                published_at=published_at,
                now=now,
                origin_link=post.origin_link,
            )
        )
    tags = get_or_create_tags(session, [name for post in posts for name in post.prepared.data.tags])
    tag_by_name = {tag.name: tag for tag in tags}
    try:
        with session.begin_nested():
            ids = _store_batch(session, posts, rows, tag_by_name)
    except _SlugTaken:
        return [
            insert_post(ctx, session, p.prepared, origin_link=p.origin_link, guid=values["guid"]).id
            for p, values in zip(posts, rows, strict=True)
        ]
    published = [
        (post_id, values)
        for post_id, values in zip(ids, rows, strict=True)
        if values["status"] == "published"
    ]
    if published:  # drafts never reach a feed: they leave every validator alone
        related_repo.log_changes(session, [post_id for post_id, _ in published], now)
        feedstate.bump(
            session,
            {values["category_id"] for _, values in published},
            now,
            visible=any(values["published_at"] <= now for _, values in published),
            tag_ids={
                tag_by_name[name].id
                for post, values in zip(posts, rows, strict=True)
                if values["status"] == "published"
                for name in post.prepared.data.tags
                if name
            },
        )
    return ids


def _store_batch(
    session: Session,
    posts: Sequence[NewPost],
    rows: list[dict[str, Any]],
    tag_by_name: dict[str, Tag],
) -> list[int]:
    """The rows, their slugs numbered, and their tags; _SlugTaken if any slug was taken."""
    bases = [post.prepared.slug_base for post in posts]
    numbers = slug_repo.take_numbers(session, [base for base in bases if base is not None])
    for values, base in zip(rows, bases, strict=True):
        if base is not None:
            values["slug"] = _numbered(base, numbers[base].pop(0))
    stored = post_rows.insert_posts(session, rows)  # guid -> id; a taken slug is left out
    if len(stored) < len(rows):
        raise _SlugTaken
    ids = [stored[values["guid"]] for values in rows]
    pairs = [
        (post_id, tag_by_name[name].id)
        for post_id, post in zip(ids, posts, strict=True)
        for name in dict.fromkeys(name for name in post.prepared.data.tags if name)
    ]
    post_rows.insert_post_tags(session, pairs)
    return ids


def _numbered(base: str, number: int) -> str:
    return base if number == 1 else f"{base}-{number}"


@dataclass(frozen=True)
class _PreparedContent:
    """An edit's new content rendered before its write transaction (see PreparedPost)."""

    body: str
    format: str
    pages: list[str]
    summary: str


def _prepare_content(data: PostUpdate) -> _PreparedContent | None:
    """New content rendered outside the transaction, in the format given, else in Markdown
    (the API's default, and most posts'): no read to learn the stored format first. A post
    stored as HTML and edited without a format is rendered inside, as before."""
    if data.content is None:
        return None  # a format change alone re-renders the stored body, inside
    fmt = data.format or "markdown"
    try:
        pages = _pages(data.content, fmt)
    except Invalid:
        if data.format is not None:
            raise
        return None  # judged inside, in the stored format
    return _PreparedContent(data.content, fmt, pages, derive_summary(pages))


def update_post(
    ctx: Context, post_id: int, data: PostUpdate, *, origin_link: str | None = None
) -> Post:
    """Change the fields given; a write that changes nothing leaves updated_at and every
    feed's validators alone. Core statements (repo/post_rows.py): one read of the post with
    its category, one of its tags (of their ids when tags are given), one UPDATE of the
    columns that changed, and the tag links added and removed."""
    given = data.model_fields_set
    prepared = _prepare_content(data)  # outside the write lock
    with ctx.db.write() as session:
        now = ctx.clock.now()  # inside: Last-Modified never moves backwards
        # Tags given replace the stored ones: only their ids are read, to compare.
        stored = post_rows.load_post(session, post_id, tags=data.tags is None)
        if stored is None:
            raise NotFound(f"no post with id {post_id}")
        old, category, tags = stored
        new = dict(old)
        before = _FeedPresence.of_row(old, now)
        if data.category is not None:
            found = category_repo.find_category(session, data.category)
            if found is None:
                raise _unknown_category(data.category)
            category, new["category_id"] = found, found.id
        if data.slug is not None and data.slug != new["slug"]:
            if post_repo.slug_taken(session, data.slug, except_id=post_id):
                raise _slug_conflict(data.slug)
            new["slug"] = data.slug
        if data.title is not None:
            new["title"] = data.title
        if data.author is not None:
            new["author"] = data.author
        derived: str | None = None  # the summary of the new pages, when computed outside
        if data.content is not None or data.format is not None:
            new["format"] = data.format or new["format"]
            new["body"] = data.content if data.content is not None else new["body"]
            if prepared is not None and (prepared.body, prepared.format) == (
                new["body"],
                new["format"],
            ):
                new["pages"], derived = prepared.pages, prepared.summary
            else:  # a format change alone, or the format changed meanwhile
                new["pages"] = _pages(new["body"], new["format"])
        if "summary" in given:
            new["summary_given"] = bool(data.summary)
            new["summary"] = data.summary or ""
        if not new["summary_given"]:
            new["summary"] = derived if derived is not None else derive_summary(new["pages"])
        stored_tag_ids: set[int] = set()
        given_tag_ids: set[int] = set()
        if data.tags is not None:
            tags = tags_for_write(session, data.tags)  # shown in the order given
            stored_tag_ids = post_rows.tag_ids(session, post_id)
            given_tag_ids = {tag.id for tag in tags}
        tags_changed = given_tag_ids != stored_tag_ids
        # Whose tag feeds the write may change: the tags before and after it.
        touched_tags = (
            stored_tag_ids | given_tag_ids if data.tags is not None else {tag.id for tag in tags}
        )
        if data.status is not None:
            new["status"] = data.status
        if origin_link is not None:
            new["origin_link"] = origin_link
        if data.published_at is not None:
            new["published_at"] = _check_year(_in_site_tz(ctx, data.published_at))
        changes = {key: value for key, value in new.items() if value != old[key]}
        if not changes and not tags_changed:
            # Nothing changed: keep updated_at and every feed's validators.
            return post_rows.detached_post(old, category, tags)
        new["updated_at"] = changes["updated_at"] = now
        try:
            post_rows.update_post(session, post_id, changes)
        except IntegrityError:  # a concurrent write took the slug since slug_taken looked
            raise _slug_conflict(new["slug"]) from None
        if tags_changed:
            post_rows.change_post_tags(
                session,
                post_id,
                removed=stored_tag_ids - given_tag_ids,
                added=given_tag_ids - stored_tag_ids,
            )
        _record_write(session, post_id, before, _FeedPresence.of_row(new, now), now, touched_tags)
        return post_rows.detached_post(new, category, tags)


def delete_post(ctx: Context, post_id: int) -> None:
    now = ctx.clock.now()
    with ctx.db.write() as session:
        post = post_repo.get_post(session, post_id)
        if post is None:
            raise NotFound(f"no post with id {post_id}")
        before = _FeedPresence.of(post, now)
        _record_write(session, post.id, before, None, now, [tag.id for tag in post.tags])
        source_repo.mark_deleted(session, post.id)  # an aggregated post is never re-imported
        post_repo.delete_post(session, post)
