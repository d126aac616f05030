"""Feed URLs: /feeds/{category}.rss|.atom|.json, /feeds/all.* and /feeds/tags/{tag}.*, with
HTTP caching.

A tag feed's URL names the tag by its slug (/feeds/tags/ding-tou.rss), the form the fast path
serves; a URL naming it by its name (/feeds/tags/%E5%AE%9A%E6%8A%95.rss, 定投) is redirected
there (301), and a tag neither names is a 404, as an unknown category's feed.

Every feed is paged (RFC 5005 §3) when it has more entries than fit: the first page is the
plain URL; ``?before=`` (an opaque cursor from the page's rel="next" link) asks for the page of
entries older than a position. A cursor we did not give out is a 400.

Two ways in, one answer. The Flask view serves every feed request. In front of the app,
``FeedFastPath`` (installed with the blueprint) answers the common poll itself: GET or HEAD
of a feed at its default length (no query string) that is cached at its current version.
It answers the precomputed header lists and bytes of the cache entry (feeds/cache.py)
without building a request context, routing, or a Response object, which cost more than
everything else of a warm poll. Anything else (a miss, a query string, an unknown slug, an
error) goes on to the Flask view, which answers the same headers and bytes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import BadRequest, NotFound

from feedsvc import metrics
from feedsvc.context import Context
from feedsvc.cursor import BadCursor
from feedsvc.feeds.cache import FeedCache, RenderedFeed, Representation
from feedsvc.feeds.service import (
    TAG_FEED,
    cached_feed,
    get_feed,
    get_opml,
    read_page_cursor,
    tag_slug_named,
)
from feedsvc.repo.posts import SortKey
from feedsvc.schemas import parse_whole_number
from feedsvc.web import ctx, feed_cache
from feedsvc.web.conditional import accepts_gzip, not_modified

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

bp = Blueprint("feeds", __name__)

# The URL rule below, for slugs a category can have (schemas.SLUG_PATTERN) and "all".
# Its label in the request metrics (web/metrics.py's route_label of the rule below).
FEED_ROUTE = "/feeds/<slug>.<fmt>"
TAG_FEED_ROUTE = "/feeds/tags/<tag>.<fmt>"
_FEED_PATH = re.compile(r"/feeds/((?:tags/)?[a-z0-9]+(?:-[a-z0-9]+)*)\.(rss|atom|json)")
# Longer than any tag name or slug (models.Tag: 100 and 120): no such tag, without a query.
MAX_TAG_LENGTH = 200


def _limit_argument() -> int | None:
    raw = request.args.get("limit")
    if raw is None:
        return None
    ceiling = ctx().settings.feeds.max_length
    limit = parse_whole_number(raw)
    if limit is None or not 1 <= limit <= ceiling:
        # The real bounds, not a silent clamp: a reader asking for more learns the maximum.
        raise BadRequest(f"limit must be a whole number from 1 to {ceiling}")
    return limit


def _before_argument() -> SortKey | None:
    raw = request.args.get("before")
    if raw is None:
        return None
    try:
        return read_page_cursor(raw)
    except BadCursor:
        raise BadRequest(
            'before is not a page cursor this feed gave out: follow the feed\'s rel="next" link'
        ) from None


def cache_control(context: Context) -> tuple[str, str]:
    return ("Cache-Control", f"public, max-age={context.settings.feeds.cache_max_age}")


def answer(
    feed: RenderedFeed, if_none_match: str | None, if_modified_since: str | None, gzip: bool
) -> tuple[bool, Representation]:
    """(modified?, the representation to answer with) for these request headers."""
    chosen = feed.gzipped if gzip else feed.identity
    unchanged = (if_none_match is not None or if_modified_since is not None) and not_modified(
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
        etag=feed.etag,
        last_modified=feed.last_modified,
    )
    return not unchanged, chosen


@bp.route("/feeds/<string:slug>.<any(rss, atom, json):fmt>", methods=["GET"])
def feed(slug: str, fmt: str) -> Response:
    feed = get_feed(ctx(), feed_cache(), slug, fmt, _limit_argument(), _before_argument())
    if feed is None:
        raise NotFound(f"There is no category {slug!r}, so there is no feed at {request.path}.")
    return respond(feed)


@bp.route("/feeds/tags/<string:tag>.<any(rss, atom, json):fmt>", methods=["GET"])
def tag_feed(tag: str, fmt: str) -> Response:
    limit, before = _limit_argument(), _before_argument()
    if len(tag) > MAX_TAG_LENGTH:
        raise NotFound(f"There is no tag {tag[:40]!r}…: tag names are at most 100 characters.")
    feed = get_feed(ctx(), feed_cache(), f"{TAG_FEED}{tag}", fmt, limit, before)
    if feed is None:
        slug = tag_slug_named(ctx(), tag)
        if slug is None or slug == tag:
            raise NotFound(f"There is no tag {tag!r}, so there is no feed at {request.path}.")
        # The slug's URL is the feed's one URL (rel=self, the cache, the fast path).
        # Its arguments as given (re-encoded: a raw non-ASCII byte is no Location header).
        arguments = urlencode(list(request.args.items(multi=True)))
        query = f"?{arguments}" if arguments else ""
        location = f"/feeds/{TAG_FEED}{slug}.{fmt}{query}"
        return Response(
            f"This feed is at {location}\n",
            status=301,
            headers=[("Location", location)],
            mimetype="text/plain",
        )
    return respond(feed)


@bp.route("/feeds.opml", methods=["GET"])
def opml() -> Response:
    """OPML 2.0: the site feed and every category's feed, for a reader to subscribe at once."""
    return respond(get_opml(ctx()))


def respond(feed: RenderedFeed) -> Response:
    """A cached representation as a Flask view's answer: 304 or 200, identity or gzip, with
    Cache-Control (the feed views', and the site's pages')."""
    modified, chosen = answer(
        feed,
        request.headers.get("If-None-Match"),
        request.headers.get("If-Modified-Since"),
        accepts_gzip(request.headers.get("Accept-Encoding", "")),
    )
    control = cache_control(ctx())
    if not modified:
        return Response(status=304, headers=[*chosen.not_modified_headers, control])
    response = Response(chosen.body, status=200, headers=[*chosen.ok_headers, control])
    response.direct_passthrough = True  # bytes as they are: no iteration, no re-encoding
    return response


class FeedFastPath:
    """WSGI middleware: the warm feed poll answered from the cache entry (see the docstring)."""

    def __init__(self, app: Flask, wsgi: WSGIApplication) -> None:
        self._wsgi = wsgi
        self._ctx: Context = app.extensions["feedsvc"]
        self._cache: FeedCache = app.extensions["feedsvc.feed_cache"]
        self._cache_control = cache_control(self._ctx)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if (method == "GET" or method == "HEAD") and not environ.get("QUERY_STRING"):
            match = _FEED_PATH.fullmatch(environ.get("PATH_INFO", ""))
            if match is not None:
                started = time.perf_counter() if metrics.enabled() else None
                try:
                    feed = cached_feed(self._ctx, self._cache, match[1], match[2])
                except Exception:  # the view answers it, through the error handlers
                    feed = None
                if feed is not None:
                    route = TAG_FEED_ROUTE if match[1].startswith(TAG_FEED) else FEED_ROUTE
                    return self._respond(feed, environ, start_response, method, started, route)
        return self._wsgi(environ, start_response)

    def _respond(
        self,
        feed: RenderedFeed,
        environ: WSGIEnvironment,
        start: StartResponse,
        method: str,
        started: float | None,
        route: str,
    ) -> Iterable[bytes]:
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
        modified, chosen = answer(
            feed,
            if_none_match,
            if_modified_since,
            accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")),
        )
        if not modified:
            start("304 NOT MODIFIED", [*chosen.not_modified_headers, self._cache_control])
        else:
            start("200 OK", [*chosen.ok_headers, self._cache_control])
        if started is not None:  # what the Flask hooks of web/metrics.py count for the view
            status = 200 if modified else 304
            metrics.feed_cache_hit()
            metrics.request_finished(route, method, status, time.perf_counter() - started)
            if if_none_match is not None or if_modified_since is not None:
                metrics.conditional_feed_request(status)
        return [] if not modified or method == "HEAD" else [chosen.body]


def _install_fast_path(state: BlueprintSetupState) -> None:
    app: Any = state.app
    app.wsgi_app = FeedFastPath(app, app.wsgi_app)


bp.record_once(_install_fast_path)
