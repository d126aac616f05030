"""Feed URLs: /feeds/{category}.rss|.atom and /feeds/all.rss|.atom, with HTTP caching."""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.http import http_date

from feedsvc.feeds.service import get_feed
from feedsvc.schemas import parse_whole_number
from feedsvc.web import ctx, feed_cache
from feedsvc.web.conditional import not_modified

bp = Blueprint("feeds", __name__)


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


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


@bp.route("/feeds/<string:slug>.<any(rss, atom):fmt>", methods=["GET"])
def feed(slug: str, fmt: str) -> Response:
    feed = get_feed(ctx(), feed_cache(), slug, fmt, _limit_argument())
    if feed is None:
        raise NotFound(f"There is no category {slug!r}, so there is no feed at {request.path}.")
    gzip = _accepts_gzip()
    headers = {
        "ETag": feed.gzip_etag if gzip else feed.etag,
        "Last-Modified": http_date(feed.last_modified),
        "Cache-Control": f"public, max-age={ctx().settings.feeds.cache_max_age}",
        "Vary": "Accept-Encoding",
    }
    if not_modified(
        if_none_match=request.headers.get("If-None-Match"),
        if_modified_since=request.headers.get("If-Modified-Since"),
        etag=feed.etag,
        last_modified=feed.last_modified,
    ):
        return Response(status=304, headers=headers)
    body = feed.gzip_body if gzip else feed.body
    if gzip:
        headers["Content-Encoding"] = "gzip"
    response = Response(body, status=200, headers=headers, content_type=feed.media_type)
    response.content_length = len(body)
    return response
