"""Plain HTML pages, so that every link in a feed resolves (the full site comes later)."""

from __future__ import annotations

from flask import Blueprint, render_template
from werkzeug.exceptions import NotFound

from feedsvc.feeds.document import Links
from feedsvc.repo import categories as category_repo
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from feedsvc.web import ctx

bp = Blueprint("pages", __name__)

PAGE_LENGTH = 50


def _common(feed_slug: str, title: str) -> dict[str, object]:
    settings = ctx().settings
    base = settings.site.base_url
    return {
        "site": settings.site,
        "base_url": base,
        "language": settings.site.language,
        "tz": settings.site.tz,
        "feeds": [
            {
                "type": "application/atom+xml",
                "title": f"{title} (Atom)",
                "href": f"{base}/feeds/{feed_slug}.atom",
            },
            {
                "type": "application/rss+xml",
                "title": f"{title} (RSS)",
                "href": f"{base}/feeds/{feed_slug}.rss",
            },
        ],
    }


@bp.get("/")
def home() -> str:
    now = ctx().clock.now()
    with ctx().db.read() as session:
        posts = post_repo.feed_posts(session, None, now, PAGE_LENGTH)
        categories = category_repo.list_categories(session)
        site = ctx().settings.site
        return render_template(
            "list.html",
            heading=site.title,
            description=site.description,
            posts=posts,
            categories=categories,
            **_common("all", site.title),
        )


@bp.get("/categories/<slug>")
def category(slug: str) -> str:
    now = ctx().clock.now()
    with ctx().db.read() as session:
        found = category_repo.get_category(session, slug)
        if found is None:
            raise NotFound(f"There is no category {slug!r}.")
        posts = post_repo.feed_posts(session, found.id, now, PAGE_LENGTH)
        return render_template(
            "list.html",
            heading=found.name,
            description=found.description,
            posts=posts,
            categories=[],
            **_common(found.slug, found.name),
        )


@bp.get("/posts/<slug>")
def post(slug: str) -> str:
    now = ctx().clock.now()
    with ctx().db.read() as session:
        found = post_repo.get_post_by_slug(session, slug)
        if found is None or found.status != "published" or found.published_at > now:
            raise NotFound(f"There is no post {slug!r}.")
        related = related_repo.related_views(session, [found.id], now).get(found.id, [])
        return render_template(
            "post.html",
            related=related,
            links=Links(ctx().settings.site.base_url),
            post=found,
            published=found.published_at.astimezone(ctx().settings.site.tz),
            **_common(found.category.slug, found.category.name),
        )
