"""The reader-facing site: the home page, category, tag and post pages, served like feeds.

Serving: request → page key (the path and the page number) and the site's content version
(feeds/versions.py, the lookup the feeds use) → the page cache (a FeedCache of its own: the
bytes, their gzip, ETag and Last-Modified computed once per version) → on a miss: one page
of rows → the Jinja template → cache → response, with validators (304). ``PageFastPath``
answers a cached page's GET or HEAD in front of Flask, as the feeds' fast path does.

Every page is keyed by the site's version: every write that changes what the site shows
bumps it (services/posts.py for posts and the related lists that show them,
services/categories.py for categories, the related refresh). A post page shows related
posts of any category, and every list shows posts' categories, so no narrower version
covers a page; one write makes each page be built again once per process, on its next view.

Lists are numbered pages (``?page=N``, 20 posts each, 上一页 / 下一页): one OFFSET query of 21
rows, whose cost grows with the depth (bench/pages.py measures it); no count of the list's
posts (a walk of its index, which grew 3.4x from 1,000 to 100,000 posts), so the first page
costs the same at any size and a page past the end is known by having no posts.
A multi-page post (共N页) shows one of its pages at a time, with the same ``?page=N``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import BadRequest, NotFound

from feedsvc import metrics
from feedsvc.config import Settings
from feedsvc.context import Context
from feedsvc.feeds.cache import FeedCache, FeedKey, RenderedFeed
from feedsvc.feeds.document import Links
from feedsvc.feeds.service import versions
from feedsvc.feeds.versions import SITE_FEED
from feedsvc.repo import categories as category_repo
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from feedsvc.repo.posts import PostFilter
from feedsvc.repo.related import RelatedView
from feedsvc.schemas import MAX_ID, parse_whole_number
from feedsvc.web import ctx
from feedsvc.web.conditional import accepts_gzip
from feedsvc.web.feeds import answer, cache_control, respond

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

bp = Blueprint("pages", __name__)

PAGE_SIZE = 20
HTML = "text/html; charset=utf-8"
PAGE_CACHE = "feedsvc.page_cache"
# The routes the fast path answers, as the metrics label them (web/metrics.py route_label).
_ROUTES = (
    (re.compile(r"/"), "/"),
    (re.compile(r"/categories/[^/]+"), "/categories/<slug>"),
    (re.compile(r"/posts/[^/]+"), "/posts/<slug>"),
    (re.compile(r"/tags/.+"), "/tags/<tag>"),
)
_PAGE_QUERY = re.compile(r"page=([0-9]{1,9})")


def page_cache() -> FeedCache:
    cache: FeedCache = current_app.extensions[PAGE_CACHE]
    return cache


# -- what every page shows ----------------------------------------------------------------------


@dataclass(frozen=True)
class Alternate:
    """A ``<link rel="alternate">`` of a feed (feed autodiscovery)."""

    type: str
    title: str
    href: str


_FORMATS = (
    ("rss", "application/rss+xml", "RSS"),
    ("atom", "application/atom+xml", "Atom"),
    ("json", "application/feed+json", "JSON Feed"),
)


def alternates(links: Links, name: str, feed: Callable[[str], str]) -> list[Alternate]:
    return [Alternate(media, f"{name} ({label})", feed(fmt)) for fmt, media, label in _FORMATS]


def layout(settings: Settings, feeds: Iterable[Alternate] = ()) -> dict[str, Any]:
    """What base.html needs: no database read, so that error pages can use it too."""
    links = Links(settings.site.base_url)
    site_feeds = alternates(links, settings.site.title, lambda fmt: links.feed(SITE_FEED, fmt))
    return {
        "site": settings.site,
        "language": settings.site.language,
        "links": links,
        "tz": settings.site.tz,
        # The site's feeds first: a reader that takes the first alternate gets everything.
        "feeds": [*site_feeds, *feeds],
    }


@dataclass(frozen=True)
class Pager:
    """Links to the pages of a multi-page post (上一页 / 下一页, the page numbers, 共N页) or of
    a list (上一页 / 下一页 only: counting a list's posts would cost a walk of its index)."""

    url: str  # page 1's URL; page N adds ?page=N
    number: int
    count: int | None  # None: a list, whose end is known only from its last page
    more: bool = False  # a list: whether a page follows this one

    def href(self, number: int) -> str:
        return self.url if number == 1 else f"{self.url}?page={number}"

    @property
    def previous(self) -> str | None:
        return self.href(self.number - 1) if self.number > 1 else None

    @property
    def next(self) -> str | None:
        last = self.more if self.count is None else self.number < self.count
        return self.href(self.number + 1) if last else None

    def numbers(self, around: int = 3) -> list[int | None]:
        """The page numbers to show: the first, the last, and those near this one; None where
        numbers are left out (…). A list shows none."""
        if self.count is None:
            return []
        shown = sorted(
            {1, self.count, *range(self.number - around, self.number + around + 1)}
            & set(range(1, self.count + 1))
        )
        out: list[int | None] = []
        for number in shown:
            if out and number - (out[-1] or 0) > 1:
                out.append(None)
            out.append(number)
        return out


def _list_page(session: Any, where: PostFilter, number: int, what: str) -> tuple[list[Any], bool]:
    """The posts of list page ``number`` and whether another page follows; NotFound past the
    end (page 1 always exists). One query of PAGE_SIZE + 1 rows, no count."""
    if number > MAX_ID // PAGE_SIZE + 1:  # past any list there can be (and any OFFSET)
        raise NotFound(f"{what} has fewer pages: there is no page {number}.")
    rows = post_repo.list_posts(
        session, where, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE
    )
    if not rows and number > 1:
        raise NotFound(f"{what} has fewer pages: there is no page {number}.")
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _page_number() -> int:
    raw = request.args.get("page")
    if raw is None:
        return 1
    number = parse_whole_number(raw)
    if number is None or number < 1:
        raise BadRequest("page must be a whole number from 1 up, in ASCII digits")
    return number


def _out_of_range(what: str, number: int, count: int) -> NotFound:
    return NotFound(
        f"{what} has {count} page{'s' if count > 1 else ''}: there is no page {number}."
    )


# -- serving ------------------------------------------------------------------------------------


def _serve(number: int, build: Callable[[datetime], tuple[str, datetime | None]]) -> Response:
    """The page at this path and number from the cache, built on a miss; ``build`` returns
    the HTML and when it expires (a scheduled post becoming due), or raises NotFound."""
    context = ctx()
    state = versions(context).state(SITE_FEED)
    assert state is not None  # the site_state row is made by the migrations
    now = context.clock.now()

    def rendered() -> RenderedFeed:
        html, valid_until = build(now)
        return RenderedFeed.of(
            html.encode(), last_modified=state.changed_at, media_type=HTML, valid_until=valid_until
        )

    key = FeedKey(request.path, "html", number, state.version)
    page, _ = page_cache().get_or_build(key, now, rendered)
    assert page is not None
    return respond(page)


def _list(
    session: Any,
    where: PostFilter,
    number: int,
    *,
    heading: str,
    description: str,
    url: str,
    feeds: list[Alternate] | None = None,
    categories: list[Any] | None = None,
) -> str:
    """A list page (home, category, tag): its posts, 上一页 / 下一页, and the feeds of what it
    lists (the site's only, on the home page)."""
    posts, more = _list_page(session, where, number, heading)
    return render_template(
        "list.html",
        heading=heading,
        description=description,
        posts=posts,
        categories=categories or [],
        pager=Pager(url, number, None, more),
        category_feeds=feeds or [],
        **layout(ctx().settings, feeds or []),
    )


@bp.get("/")
def home() -> Response:
    number = _page_number()

    def build(now: datetime) -> tuple[str, datetime | None]:
        site = ctx().settings.site
        with ctx().db.read() as session:
            html = _list(
                session,
                PostFilter(visible_at=now),
                number,
                heading=site.title,
                description=site.description,
                url=Links(site.base_url).home(),
                categories=category_repo.list_categories(session),
            )
            return html, post_repo.next_due(session, None, now)

    return _serve(number, build)


@bp.get("/categories/<slug>")
def category(slug: str) -> Response:
    number = _page_number()

    def build(now: datetime) -> tuple[str, datetime | None]:
        links = Links(ctx().settings.site.base_url)
        with ctx().db.read() as session:
            found = category_repo.get_category(session, slug)
            if found is None:
                raise NotFound(f"There is no category {slug!r}.")
            html = _list(
                session,
                PostFilter(category_id=found.id, visible_at=now),
                number,
                heading=found.name,
                description=found.description,
                url=links.category(found.slug),
                feeds=alternates(links, found.name, lambda fmt: links.feed(found.slug, fmt)),
            )
            return html, post_repo.next_due(session, found.id, now)

    return _serve(number, build)


# <path:…>: a tag's name may hold a slash (A/B股), which a link encodes as %2F and the
# server sees decoded.
@bp.get("/tags/<path:tag>")
def tag(tag: str) -> Response:
    if "\x00" in tag:  # the path converter is not routing.py's TextConverter
        raise NotFound("There is no tag with a NUL character.")
    number = _page_number()

    def build(now: datetime) -> tuple[str, datetime | None]:
        links = Links(ctx().settings.site.base_url)
        with ctx().db.read() as session:
            found = post_repo.get_tag(session, tag)
            if found is None:
                raise NotFound(f"There is no tag {tag!r}.")
            heading = f"标签：{found.name}"
            html = _list(
                session,
                PostFilter(tag_id=found.id, visible_at=now),
                number,
                heading=heading,
                description="",
                url=links.tag(found.name),
                feeds=alternates(links, heading, lambda fmt: links.tag_feed(found.slug, fmt)),
            )
            return html, post_repo.next_due(session, None, now, tag_id=found.id)

    return _serve(number, build)


@bp.get("/posts/<slug>")
def post(slug: str) -> Response:
    number = _page_number()

    def build(now: datetime) -> tuple[str, datetime | None]:
        context = ctx()
        with context.db.read() as session:
            found = post_repo.get_post_by_slug(session, slug)
            if found is None or found.status != "published" or found.published_at > now:
                raise NotFound(f"There is no post {slug!r}.")
            if number > len(found.pages):
                raise _out_of_range(found.title, number, len(found.pages))
            related = related_repo.related_views(session, [found.id], now).get(found.id, [])
            html = post_html(context.settings, found, number, related)
            return html, post_repo.next_due(session, None, now)

    return _serve(number, build)


def post_html(
    settings: Settings,
    post: Any,
    number: int,
    related: list[RelatedView],
    *,
    template: str = "post.html",
    **extra: Any,
) -> str:
    """Page ``number`` of a post as readers see it. The admin's preview passes a post that is
    not stored (admin/posts.py) and a template that extends post.html with a banner: the
    page itself is this one, byte for byte."""
    links = Links(settings.site.base_url)
    category = post.category
    feeds = alternates(links, category.name, lambda fmt: links.feed(category.slug, fmt))
    return render_template(
        template,
        post=post,
        page_html=post.pages[number - 1],
        pager=Pager(links.post(post.slug), number, len(post.pages)),
        published=post.published_at.astimezone(settings.site.tz),
        related=related,
        **layout(settings, feeds),
        **extra,
    )


# -- the fast path ------------------------------------------------------------------------------


class PageFastPath:
    """WSGI middleware: a cached page's GET or HEAD answered from its cache entry, without a
    request context, routing or a Response (feeds' FeedFastPath, for pages). A path with no
    query or only ``page=N``; anything else, and every miss, goes on to the Flask view."""

    def __init__(self, app: Flask, wsgi: WSGIApplication) -> None:
        self._wsgi = wsgi
        self._ctx: Context = app.extensions["feedsvc"]
        self._cache: FeedCache = app.extensions[PAGE_CACHE]
        self._cache_control = cache_control(self._ctx)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "GET" or method == "HEAD":
            found = self._cached(environ)
            if found is not None:
                return self._respond(*found, environ, start_response, method)
        return self._wsgi(environ, start_response)

    def _cached(self, environ: WSGIEnvironment) -> tuple[RenderedFeed, str, float] | None:
        query = environ.get("QUERY_STRING", "")
        number = 1
        if query:
            match = _PAGE_QUERY.fullmatch(query)
            if match is None:
                return None
            number = int(match[1])
            if number < 1:
                return None
        try:  # WSGI carries the path's bytes as latin-1; Werkzeug routes on their UTF-8
            path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
        except UnicodeError:
            return None
        route = next((label for pattern, label in _ROUTES if pattern.fullmatch(path)), None)
        if route is None:
            return None
        started = time.perf_counter()
        try:
            state = versions(self._ctx).state(SITE_FEED)
        except Exception:  # the view answers it, through the error handlers
            return None
        if state is None:  # pragma: no cover - the migrations make the row
            return None
        page = self._cache.get(FeedKey(path, "html", number, state.version), self._ctx.clock.now())
        return None if page is None else (page, route, started)

    def _respond(
        self,
        page: RenderedFeed,
        route: str,
        started: float,
        environ: WSGIEnvironment,
        start: StartResponse,
        method: str,
    ) -> Iterable[bytes]:
        modified, chosen = answer(
            page,
            environ.get("HTTP_IF_NONE_MATCH"),
            environ.get("HTTP_IF_MODIFIED_SINCE"),
            accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")),
        )
        if not modified:
            start("304 NOT MODIFIED", [*chosen.not_modified_headers, self._cache_control])
        else:
            start("200 OK", [*chosen.ok_headers, self._cache_control])
        status = 200 if modified else 304
        metrics.request_finished(route, method, status, time.perf_counter() - started)
        return [] if not modified or method == "HEAD" else [chosen.body]


def _install(state: BlueprintSetupState) -> None:
    app: Any = state.app
    settings: Settings = app.extensions["feedsvc"].settings
    app.extensions[PAGE_CACHE] = FeedCache(
        settings.feeds.cache_entries, settings.feeds.cache_max_bytes
    )
    app.wsgi_app = PageFastPath(app, app.wsgi_app)


bp.record_once(_install)
