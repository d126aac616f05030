"""Rows → the API's JSON shapes (one place, so the CLI prints the same)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from feedsvc.context import Context
from feedsvc.feeds.document import Links
from feedsvc.models import ApiToken, Category, Post


def _time(ctx: Context, value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(ctx.settings.site.tz).isoformat()


def category_json(ctx: Context, category: Category) -> dict[str, Any]:
    links = Links(ctx.settings.site.base_url)
    return {
        "slug": category.slug,
        "name": category.name,
        "description": category.description,
        "language": category.language,
        "position": category.position,
        "feed_length": category.feed_length,
        "url": links.category(category.slug),
        "feeds": {fmt: links.feed(category.slug, fmt) for fmt in ("rss", "atom")},
        "created_at": _time(ctx, category.created_at),
        "updated_at": _time(ctx, category.updated_at),
    }


def post_json(ctx: Context, post: Post) -> dict[str, Any]:
    links = Links(ctx.settings.site.base_url)
    return {
        "id": post.id,
        "slug": post.slug,
        "guid": post.guid,
        "url": links.post(post.slug),
        "feeds": {fmt: links.feed(post.category.slug, fmt) for fmt in ("rss", "atom")},
        "category": post.category.slug,
        "title": post.title,
        "author": post.author,
        "summary": post.summary,
        "format": post.format,
        "content": post.body,
        "content_html": "\n".join(post.pages),
        "pages": list(post.pages),
        "page_count": len(post.pages),
        "tags": [tag.name for tag in post.tags],
        "status": post.status,
        "published_at": _time(ctx, post.published_at),
        "created_at": _time(ctx, post.created_at),
        "updated_at": _time(ctx, post.updated_at),
    }


def token_json(ctx: Context, token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": _time(ctx, token.created_at),
        "last_used_at": _time(ctx, token.last_used_at),
        "revoked_at": _time(ctx, token.revoked_at),
    }
