"""Serving a feed: version lookup → cache → on a miss: query, build the document, render.

A read never computes anything but this; it never writes. Concurrent misses of one feed
version build it once (FeedCache.get_or_build), so a write costs each process one build of
each feed it changed, however many readers were waiting. The version lookup is
feeds/versions.py (strictly current, cheap on SQLite); ``cached_feed`` is the warm path
alone, for web/feeds.py's fast path.
"""

from __future__ import annotations

from datetime import datetime

from feedsvc import metrics
from feedsvc.context import Context
from feedsvc.feeds import document
from feedsvc.feeds.cache import FeedCache, FeedKey, RenderedFeed
from feedsvc.feeds.render import RENDERERS
from feedsvc.feeds.versions import SITE_FEED, FeedVersions
from feedsvc.repo import categories as category_repo
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from feedsvc.repo.feedstate import FeedState

__all__ = ["SITE_FEED", "cached_feed", "feed_length", "get_feed", "self_url"]
_VERSIONS = "feeds.versions"


def feed_length(ctx: Context, default: int | None, limit: int | None) -> int:
    """?limit=N when given, else the category's feed length; capped by feeds.max_length."""
    wanted = limit or default or ctx.settings.feeds.default_length
    return min(wanted, ctx.settings.feeds.max_length)


def self_url(ctx: Context, slug: str, fmt: str, limit: int | None) -> str:
    # The W3C validator wants rel="self" to equal the URL the feed is fetched from.
    url = document.Links(ctx.settings.site.base_url).feed(slug, fmt)
    return url if limit is None else f"{url}?limit={limit}"


def versions(ctx: Context) -> FeedVersions:
    """This process's version lookup (it remembers per thread: see feeds/versions.py)."""
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
    ctx: Context, cache: FeedCache, slug: str, fmt: str, limit: int | None
) -> RenderedFeed | None:
    """The rendered feed, or None when there is no such category."""
    now = ctx.clock.now()
    state = versions(ctx).state(slug)
    if state is None:
        return None
    key = FeedKey(slug, fmt, limit, state.version)
    # Single flight: the requests that miss this version together wait for one build.
    feed, hit = cache.get_or_build(key, now, lambda: _render(ctx, state, slug, fmt, limit, now))
    if hit:
        metrics.feed_cache_hit()
    else:
        metrics.feed_cache_miss()
    return feed


def _render(
    ctx: Context, state: FeedState, slug: str, fmt: str, limit: int | None, now: datetime
) -> RenderedFeed | None:
    with ctx.db.read() as session:
        length = feed_length(ctx, state.feed_length, limit)
        posts = post_repo.feed_posts(session, state.category_id, now, length)
        site, url = ctx.settings.site, self_url(ctx, slug, fmt, limit)
        related = related_repo.related_views(session, [post.id for post in posts], now)
        if state.category_id is None:
            doc = document.site_document(
                posts, site=site, self_url=url, changed_at=state.changed_at, related=related
            )
        else:
            category = category_repo.get_category(session, slug)
            if category is None:  # pragma: no cover - deleted between the two reads
                return None
            doc = document.category_document(
                category,
                posts,
                site=site,
                self_url=url,
                changed_at=state.changed_at,
                related=related,
            )
        valid_until = post_repo.next_due(session, state.category_id, now)
    render, media_type = RENDERERS[fmt]
    return RenderedFeed.of(
        render(doc), last_modified=doc.updated, media_type=media_type, valid_until=valid_until
    )
