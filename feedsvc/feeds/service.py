"""Serving a feed: version lookup → cache → on a miss: query, build the document, render.

A feed is named by its slug: a category's, "all" for the whole site, or "tags/{slug}" for
a tag's (feeds/versions.py).

A read never computes anything but this; it never writes. Concurrent misses of one feed
version build it once (FeedCache.get_or_build), so a write costs each process one build of
each feed it changed, however many readers were waiting. The version lookup is
feeds/versions.py (strictly current, cheap on SQLite); ``cached_feed`` is the warm path
alone, for web/feeds.py's fast path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from feedsvc import cursor, metrics
from feedsvc.context import Context
from feedsvc.feeds import document
from feedsvc.feeds.cache import FeedCache, FeedKey, RenderedFeed
from feedsvc.feeds.render import (
    MEDIA_TYPES,
    OPML_MEDIA_TYPE,
    EntryCache,
    render_cached,
    render_opml,
)
from feedsvc.feeds.versions import SITE_FEED, TAG_FEED, FeedVersions
from feedsvc.models import Category, Post, Tag
from feedsvc.repo import categories as category_repo
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from feedsvc.repo.feedstate import FeedState
from feedsvc.repo.posts import PostFilter, SortKey

__all__ = [
    "SITE_FEED",
    "TAG_FEED",
    "cached_feed",
    "feed_length",
    "get_feed",
    "get_opml",
    "page_cursor",
    "read_page_cursor",
    "self_url",
    "tag_slug_named",
]
_VERSIONS = "feeds.versions"
_ROWS = "feeds.rows"
_ENTRIES = "feeds.entries"
# Of feeds.cache_max_bytes, what this process's rendered entries may hold besides (a feed of
# 20 posts of 6 KB is about 150 KB of entries, shared by its versions and the site feed).
ENTRY_CACHE_SHARE = 4


def feed_length(ctx: Context, default: int | None, limit: int | None) -> int:
    """?limit=N when given, else the category's feed length; capped by feeds.max_length."""
    wanted = limit or default or ctx.settings.feeds.default_length
    return min(wanted, ctx.settings.feeds.max_length)


# RFC 5005 §3: a page past the first is addressed by the position of the last entry of the
# page before it, (published_at, id), never by an offset: a post published meanwhile shifts
# every offset but no position, so a reader following "next" sees each post once.
PAGE_CURSOR = "feed"


def page_cursor(key: SortKey) -> str:
    return cursor.encode(PAGE_CURSOR, (key.published_at, key.id))


def read_page_cursor(raw: str) -> SortKey:
    """The position a ?before= cursor names; cursor.BadCursor if it is not one we gave out."""
    published_at, post_id = cursor.decode(PAGE_CURSOR, raw, (datetime, int))
    assert isinstance(published_at, datetime) and isinstance(post_id, int)
    return SortKey(published_at, post_id)


def self_url(
    ctx: Context, slug: str, fmt: str, limit: int | None, before: SortKey | None = None
) -> str:
    # The W3C validator wants rel="self" to equal the URL the feed is fetched from.
    url = document.Links(ctx.settings.site.base_url).feed(slug, fmt)
    query = [] if before is None else [f"before={page_cursor(before)}"]
    query += [] if limit is None else [f"limit={limit}"]
    return f"{url}?{'&'.join(query)}" if query else url


def versions(ctx: Context) -> FeedVersions:
    """This process's version lookup (it remembers what it read: see feeds/versions.py)."""
    found = ctx.memory.get(_VERSIONS)
    if found is None:
        found = ctx.memory.setdefault(
            _VERSIONS, FeedVersions(ctx.db, ctx.settings.feeds.version_max_age_ms)
        )
    assert isinstance(found, FeedVersions)
    return found


def cached_feed(ctx: Context, cache: FeedCache, slug: str, fmt: str) -> RenderedFeed | None:
    """The feed at its default length when it is cached at its current version, else None."""
    state = versions(ctx).state(slug)
    if state is None:
        return None
    return cache.get(FeedKey(slug, fmt, None, state.version), ctx.clock.now())


def get_feed(
    ctx: Context,
    cache: FeedCache,
    slug: str,
    fmt: str,
    limit: int | None,
    before: SortKey | None = None,
) -> RenderedFeed | None:
    """The rendered feed (the page of entries older than ``before``, else the first), or
    None when there is no such category (or tag)."""
    now = ctx.clock.now()
    state = versions(ctx).state(slug)
    if state is None:
        return None
    position = None if before is None else (before.published_at, before.id)
    key = FeedKey(slug, fmt, limit, state.version, position)
    # Single flight: the requests that miss this version together wait for one build.
    feed, hit = cache.get_or_build(
        key, now, lambda: _render(ctx, state, slug, fmt, limit, before, now)
    )
    if hit:
        metrics.feed_cache_hit()
    else:
        metrics.feed_cache_miss()
    return feed


@dataclass(frozen=True)
class _FeedRows:
    """What a feed's formats share at one version: the rows read, before any rendering."""

    posts: list[Post]
    has_next: bool  # older posts follow this page
    newer: list[SortKey] | None  # past the first page: the page before's posts (previous)
    related: dict[int, list[related_repo.RelatedView]]
    category: Category | None
    tag: Tag | None
    valid_until: datetime | None  # when a scheduled post of this feed becomes due

    def fresh_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


# (feed, length, version, the page's position): the rows of one page of one feed version.
_RowsKey = tuple[str, int, int, SortKey | None]


class _RowsMemo:
    """The rows of the last few feed versions read by this process: the RSS and the Atom
    build of one version (each worker builds both after a write) read the database once."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: dict[_RowsKey, _FeedRows] = {}
        self._lock = threading.Lock()

    def get(self, key: _RowsKey, now: datetime) -> _FeedRows | None:
        with self._lock:
            found = self._items.get(key)
        return found if found is not None and found.fresh_at(now) else None

    def put(self, key: _RowsKey, rows: _FeedRows) -> None:
        with self._lock:
            stale = [k for k in self._items if k[0] == key[0] and k[2] < key[2]]
            for old in stale:
                del self._items[old]
            self._items[key] = rows
            while len(self._items) > self._size:
                del self._items[next(iter(self._items))]


def _rows(
    ctx: Context,
    state: FeedState,
    slug: str,
    length: int,
    before: SortKey | None,
    now: datetime,
) -> _FeedRows:
    memo = ctx.memory.get(_ROWS)
    if memo is None:
        memo = ctx.memory.setdefault(_ROWS, _RowsMemo())
    assert isinstance(memo, _RowsMemo)
    key = (slug, length, state.version, before)
    found = memo.get(key, now)
    if found is not None:
        return found
    where = PostFilter(category_id=state.category_id, tag_id=state.tag_id, visible_at=now)
    with ctx.db.read() as session:
        tag = None if state.tag_id is None else post_repo.get_tag_by_id(session, state.tag_id)
        # One more than the page: whether a next page exists, without counting.
        posts = post_repo.list_posts(session, where, limit=length + 1, after=before)
        has_next = len(posts) > length
        posts = posts[:length]
        newer = None if before is None else post_repo.newer_keys(session, where, before, length + 1)
        related = related_repo.related_views(session, [post.id for post in posts], now)
        category = None if state.category_id is None else category_repo.get_category(session, slug)
        valid_until = post_repo.next_due(session, state.category_id, now, tag_id=state.tag_id)
    rows = _FeedRows(posts, has_next, newer, related, category, tag, valid_until)
    memo.put(key, rows)
    return rows


def _page_links(
    ctx: Context,
    slug: str,
    fmt: str,
    limit: int | None,
    before: SortKey | None,
    rows: _FeedRows,
    length: int,
) -> document.PageLinks:
    """RFC 5005 §3: first, next (older) and previous (newer) pages, for a feed that has more
    than one; none for a feed that fits on its first page."""
    if before is None and not rows.has_next:
        return document.PageLinks()
    first = self_url(ctx, slug, fmt, limit)
    following = None
    if rows.has_next:
        last = rows.posts[-1]
        following = self_url(ctx, slug, fmt, limit, SortKey(last.published_at, last.id))
    previous = None
    if rows.newer is not None:
        # The page before ends at ``before`` itself: it starts after the length-th newer post
        # (the first page when there are no more than a page of them).
        newer = rows.newer
        previous = self_url(ctx, slug, fmt, limit, newer[length]) if len(newer) > length else first
    return document.PageLinks(first=first, next=following, previous=previous)


def _hub(ctx: Context, limit: int | None, before: SortKey | None) -> str | None:
    """The hub a feed advertises (W3C WebSub §4), or None. Only the first page at the default
    length, the feed's canonical URL, is a topic (the built-in hub accepts no other): a page
    past the first or a ?limit= variant advertises none, or a reader would subscribe to a URL
    no hub ever notifies."""
    if limit is not None or before is not None:
        return None
    return ctx.settings.hub_url


def _render(
    ctx: Context,
    state: FeedState,
    slug: str,
    fmt: str,
    limit: int | None,
    before: SortKey | None,
    now: datetime,
) -> RenderedFeed | None:
    length = feed_length(ctx, state.feed_length, limit)
    rows = _rows(ctx, state, slug, length, before, now)
    site, url = ctx.settings.site, self_url(ctx, slug, fmt, limit, before)
    pages = _page_links(ctx, slug, fmt, limit, before, rows, length)
    hub = _hub(ctx, limit, before)
    if state.tag_id is not None:
        if rows.tag is None:  # pragma: no cover - deleted between the two reads
            return None
        doc = document.tag_document(
            rows.tag,
            rows.posts,
            site=site,
            self_url=url,
            changed_at=state.changed_at,
            related=rows.related,
            pages=pages,
            hub=hub,
        )
    elif state.category_id is None:
        doc = document.site_document(
            rows.posts,
            site=site,
            self_url=url,
            changed_at=state.changed_at,
            related=rows.related,
            pages=pages,
            hub=hub,
        )
    else:
        if rows.category is None:  # pragma: no cover - deleted between the two reads
            return None
        doc = document.category_document(
            rows.category,
            rows.posts,
            site=site,
            self_url=url,
            changed_at=state.changed_at,
            related=rows.related,
            pages=pages,
            hub=hub,
        )
    body = render_cached(doc, fmt, _entry_cache(ctx))
    # WebSub §4: the hub and the topic's URL as HTTP Link headers too, beside the feed's own.
    links = () if doc.hub is None else (("hub", doc.hub), ("self", doc.self_url))
    return RenderedFeed.of(
        body,
        last_modified=doc.updated,
        media_type=MEDIA_TYPES[fmt],
        valid_until=rows.valid_until,
        links=links,
    )


def tag_slug_named(ctx: Context, name: str) -> str | None:
    """The slug of the tag with this name (a feed URL may name a tag; the slug is canonical)."""
    with ctx.db.read() as session:
        tag = post_repo.get_tag_by_name(session, name)
        return None if tag is None else tag.slug


def _entry_cache(ctx: Context) -> EntryCache:
    """This process's rendered entries: a new version of a feed renders only what changed."""
    found = ctx.memory.get(_ENTRIES)
    if found is None:
        budget = ctx.settings.feeds.cache_max_bytes // ENTRY_CACHE_SHARE
        found = ctx.memory.setdefault(_ENTRIES, EntryCache(budget))
    assert isinstance(found, EntryCache)
    return found


def get_opml(ctx: Context) -> RenderedFeed:
    """The subscription list (/feeds.opml), built on each request: one read of the categories,
    a few hundred bytes rendered; readers fetch it once, when they subscribe, not every poll.
    Its validators come from the bytes and the last change of the list of categories."""
    with ctx.db.read() as session:
        categories = category_repo.list_categories(session)
        removed_at = category_repo.last_removal(session)
    doc = document.subscription_list(categories, site=ctx.settings.site, removed_at=removed_at)
    return RenderedFeed.of(
        render_opml(doc), last_modified=doc.modified, media_type=OPML_MEDIA_TYPE, valid_until=None
    )
