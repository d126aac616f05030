"""Serving a feed: version lookup → cache → on a miss: query, build the document, render.

A read never computes anything but this; it never writes.
"""

from __future__ import annotations

from feedsvc import metrics
from feedsvc.context import Context
from feedsvc.feeds import document
from feedsvc.feeds.cache import FeedCache, FeedKey, RenderedFeed
from feedsvc.feeds.render import RENDERERS
from feedsvc.repo import categories as category_repo
from feedsvc.repo import feedstate
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo

SITE_FEED = "all"


def feed_length(ctx: Context, default: int | None, limit: int | None) -> int:
    """?limit=N when given, else the category's feed length; capped by feeds.max_length."""
    wanted = limit or default or ctx.settings.feeds.default_length
    return min(wanted, ctx.settings.feeds.max_length)


def self_url(ctx: Context, slug: str, fmt: str, limit: int | None) -> str:
    # The W3C validator wants rel="self" to equal the URL the feed is fetched from.
    url = document.Links(ctx.settings.site.base_url).feed(slug, fmt)
    return url if limit is None else f"{url}?limit={limit}"


def get_feed(
    ctx: Context, cache: FeedCache, slug: str, fmt: str, limit: int | None
) -> RenderedFeed | None:
    """The rendered feed, or None when there is no such category."""
    now = ctx.clock.now()
    # The hot path: one indexed row over a plain connection (no ORM session), then memory.
    with ctx.db.engine.connect() as connection:
        state = (
            feedstate.site_feed_state(connection)
            if slug == SITE_FEED
            else feedstate.category_feed_state(connection, slug)
        )
    if state is None:
        return None
    key = FeedKey(slug, fmt, limit, state.version)
    cached = cache.get(key, now)
    if cached is not None:
        metrics.feed_cache_hit()
        return cached
    metrics.feed_cache_miss()
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
    feed = RenderedFeed.of(
        render(doc), last_modified=doc.updated, media_type=media_type, valid_until=valid_until
    )
    cache.put(key, feed)
    return feed
