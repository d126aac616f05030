"""`/metrics` (Prometheus) and the request hooks that count every response.

Off (``metrics.enabled = false``, the default) nothing is registered: /metrics is a 404 like
any unknown path and requests pay nothing. On, every response is counted by URL rule, method
and status with its latency, feed requests that carried a validator by 304 or 200, and a
scrape adds gauges read from the database then (related-list freshness). With
``metrics.token`` a scrape needs ``Authorization: Bearer <token>``, compared in constant time.
Query strings are ignored (the same answer for every scrape).
"""

from __future__ import annotations

import gzip
import hmac
import logging
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import Unauthorized

from feedsvc import metrics
from feedsvc.context import Context
from feedsvc.db import storage_fault
from feedsvc.related import freshness

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = logging.getLogger("feedsvc.metrics")

bp = Blueprint("metrics", __name__)

FEED_ENDPOINT = "feeds.feed"
_STARTED = "feedsvc.metrics.started"
_CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")
_routes: dict[str, str] = {}


def route_label(rule: str) -> str:
    """The URL rule without its converters: ``/feeds/<slug>.<fmt>``."""
    label = _routes.get(rule)
    if label is None:
        label = _routes[rule] = _CONVERTER.sub(r"<\1>", rule)
    return label


def _start_clock() -> None:
    request.environ[_STARTED] = time.perf_counter()


def _count(response: Response) -> Response:
    # On every request: plain dict reads of the WSGI environ where they do (each attribute
    # of ``request`` is a context-local look-up).
    environ = request.environ
    started: float | None = environ.get(_STARTED)
    seconds = None if started is None else time.perf_counter() - started
    rule = request.url_rule
    status = response.status_code
    if rule is None:
        metrics.request_finished(metrics.UNMATCHED, environ["REQUEST_METHOD"], status, seconds)
        return response
    metrics.request_finished(route_label(rule.rule), environ["REQUEST_METHOD"], status, seconds)
    if (
        rule.endpoint == FEED_ENDPOINT
        and status in (200, 304)
        and ("HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ)
    ):
        metrics.conditional_feed_request(status)
    return response


class RelatedFreshness:
    """Gauges computed per scrape from the database (feedsvc/related/freshness.py)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import GaugeMetricFamily

        now = self._ctx.clock.now()
        try:
            with self._ctx.db.read() as session:
                fresh = freshness.measure(session, now)
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:  # pragma: no cover - a bug of ours: a logged 500, as anywhere
                raise
            # The other metrics still answer; these gauges are absent (alert on absent()).
            log.error("metrics: related freshness not read: %s", fault.message)
            return
        yield GaugeMetricFamily(
            "feedsvc_related_stale_seconds",
            "How long the stalest related list has been out of date (0: all are current)",
            value=fresh.stale_seconds(now),
        )
        yield GaugeMetricFamily(
            "feedsvc_related_pending_changes",
            "Post writes, posts become due and upstream items not yet in the related lists",
            value=fresh.pending,
        )
        age = fresh.refreshed_age_seconds(now)
        if age is not None:  # absent until the first refresh or rebuild
            yield GaugeMetricFamily(
                "feedsvc_related_refreshed_age_seconds",
                "Seconds since the last successful related refresh or rebuild",
                value=age,
            )


def _authorized(token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    # RFC 9110 §11.1: the scheme is case-insensitive. compare_digest wants bytes: a header may
    # hold anything (NUL, non-ASCII), and the comparison must not stop at the first difference.
    given = credentials.strip().encode("utf-8", "surrogatepass")
    return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode("ascii"))


@bp.route("/metrics", methods=["GET"])
def scrape() -> Response:
    from feedsvc.web import ctx

    context = ctx()
    if not _authorized(context.settings.metrics.token):
        raise Unauthorized("/metrics needs the header Authorization: Bearer <metrics.token>")
    body, content_type = metrics.exposition(
        metrics.Scrape([RelatedFreshness(context)]), request.headers.get("Accept")
    )
    headers = {"Cache-Control": "no-store", "Vary": "Accept, Accept-Encoding"}
    if request.accept_encodings["gzip"] > 0:
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers, content_type=content_type)


def init_app(app: Flask, enabled: bool) -> None:
    """Call before any other ``before_request`` is registered: the clock starts first, and
    the count, registered first, runs last of the ``after_request`` hooks (final status)."""
    metrics.configure(enabled)
    if not enabled:
        return
    app.before_request(_start_clock)
    app.after_request(_count)
    app.register_blueprint(bp)
