"""Telling the world a topic changed: content distribution (built-in hub), publish pings
(external hub).

Built-in (W3C WebSub §7): every live subscription whose ``delivered_etag`` is not its topic's
ETag gets a POST of the topic's full current body, with the topic's Content-Type, the hub and
topic as Link headers, and ``X-Hub-Signature`` when it gave a secret. The body is rendered
once per topic per batch (this process's feed cache) and sent by ``websub.concurrency``
threads. Always the newest body: a subscriber that missed several changes while it was down
gets one POST with the feed as it is now, which holds them all.

A failure (no answer, a timeout, a non-2xx) is retried with exponential backoff; a
subscriber failing for ``websub.drop_after_seconds`` is dropped and logged; 410 Gone drops
it at once (§7). External: one ``hub.mode=publish`` POST per changed topic, retried the same
way and given up after as long.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from feedsvc.context import Context
from feedsvc.feeds import service
from feedsvc.feeds.cache import RenderedFeed
from feedsvc.feeds.document import Links
from feedsvc.models import WebSubSubscription, WebSubTopic
from feedsvc.repo import websub as websub_repo
from feedsvc.websub.deliver import Exchange, Messenger, hub_links, signature
from feedsvc.websub.topics import Topic, topic_url
from feedsvc.websub.verify import backoff
from feedsvc.websub.watch import feed_cache

log = logging.getLogger("feedsvc.websub")


@dataclass(frozen=True)
class _Delivery:
    subscription: WebSubSubscription
    # The topic's ETag as the watcher last saw it: recorded as delivered, even when the body
    # sent is newer still (the watcher then sees that change and it is sent again), so that
    # a delivery never leaves a subscription owed what it was just sent.
    etag: str
    feed: RenderedFeed | None  # None: the feed is gone (deleted since it changed)


class Deliveries:
    """Bodies owed to subscribers (Errands for pump.py): one per subscription at a time."""

    def __init__(self, ctx: Context, messenger: Messenger, hub: str) -> None:
        self.messenger, self.hub = messenger, hub
        self.links = Links(ctx.settings.site.base_url)

    def due(self, ctx: Context, exclude: set[Hashable], limit: int) -> list[_Delivery]:
        with ctx.db.read() as session:
            owed = websub_repo.due_deliveries(
                session, ctx.clock.now(), limit, exclude={int(str(k)) for k in exclude}
            )
        feeds: dict[tuple[str, str], RenderedFeed | None] = {}
        for sub, _ in owed:
            if (sub.feed, sub.fmt) not in feeds:  # rendered once per change (the cache)
                feeds[sub.feed, sub.fmt] = service.get_feed(
                    ctx, feed_cache(ctx), sub.feed, sub.fmt, None
                )
        return [_Delivery(sub, etag, feeds[sub.feed, sub.fmt]) for sub, etag in owed]

    def key(self, item: _Delivery) -> Hashable:
        return item.subscription.id

    def send(self, item: _Delivery) -> Exchange:
        return _post(self.messenger, self.hub, self.links, item)

    def record(self, ctx: Context, results: Sequence[tuple[_Delivery, Exchange]]) -> None:
        _record(ctx, results)


def _post(messenger: Messenger, hub: str, links: Links, delivery: _Delivery) -> Exchange:
    sub, feed = delivery.subscription, delivery.feed
    if feed is None:
        return Exchange(None, "websub: the feed is gone")
    # §7: rel="self" is the topic's canonical URL (a tag feed named by its tag: the slug's).
    topic = topic_url(links, Topic(sub.feed, sub.fmt))
    headers = {"Content-Type": feed.media_type, "Link": hub_links(hub, topic)}
    if sub.secret:
        headers["X-Hub-Signature"] = signature(sub.secret, feed.body)
    return messenger.post(sub.callback, feed.body, headers)


def _record(ctx: Context, results: Sequence[tuple[_Delivery, Exchange]]) -> None:
    now = ctx.clock.now()
    drop_after = timedelta(seconds=ctx.settings.websub.drop_after_seconds)
    dropped: list[tuple[WebSubSubscription, str]] = []
    with ctx.db.write() as session:
        # One query for the batch: a get per row cost a SELECT each, and the autoflush of the
        # row before it as a single UPDATE (a third of a delivery run to 1,000 subscribers,
        # bench/websub.py); the UPDATEs now go at commit, batched by SQLAlchemy.
        rows = websub_repo.subscriptions_by_id(
            session, (delivery.subscription.id for delivery, _ in results)
        )
        for delivery, exchange in results:
            row = rows.get(delivery.subscription.id)
            if row is None:  # unsubscribed or removed meanwhile
                continue
            if exchange.ok and delivery.feed is not None:
                row.delivered_etag, row.delivered_at = delivery.etag, now
                row.failures, row.failing_since, row.next_attempt_at = 0, None, None
                row.last_error = None
                continue
            if delivery.feed is None:  # nothing to send until the feed is back
                row.next_attempt_at = now + backoff(ctx, 1)
                continue
            since = row.failing_since or now
            if exchange.status == 410 or now - since >= drop_after:
                dropped.append((row, exchange.error or ""))
                session.delete(row)
                continue
            row.failures += 1
            row.failing_since, row.last_error = since, exchange.error
            row.next_attempt_at = now + backoff(ctx, row.failures)
    for row, error in dropped:
        log.warning(
            "websub: dropped subscription %d (%s to %s): %s", row.id, row.callback, row.topic, error
        )


_Ping = tuple[str, str, str]  # feed, format, the ETag announced


class Pings:
    """Publish pings owed to an external hub (Errands for pump.py): one per changed topic."""

    def __init__(self, ctx: Context, messenger: Messenger, hub: str) -> None:
        self.messenger, self.hub = messenger, hub
        self.links = Links(ctx.settings.site.base_url)

    def due(self, ctx: Context, exclude: set[Hashable], limit: int) -> list[_Ping]:
        with ctx.db.read() as session:
            rows = websub_repo.due_pings(session, ctx.clock.now(), limit + len(exclude))
        return [(r.feed, r.fmt, r.etag) for r in rows if (r.feed, r.fmt) not in exclude][:limit]

    def key(self, item: _Ping) -> Hashable:
        return item[0], item[1]

    def send(self, item: _Ping) -> Exchange:
        url = topic_url(self.links, Topic(item[0], item[1]))
        # The PubSubHubbub 0.4 publish request every public hub understands.
        body = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.messenger.post(self.hub, body, headers, guarded=False)

    def record(self, ctx: Context, results: Sequence[tuple[_Ping, Exchange]]) -> None:
        _record_pings(ctx, results, ctx.clock.now())


def _record_pings(
    ctx: Context, results: Sequence[tuple[tuple[str, str, str], Exchange]], now: datetime
) -> None:
    drop_after = timedelta(seconds=ctx.settings.websub.drop_after_seconds)
    with ctx.db.write() as session:
        for (feed, fmt, etag), exchange in results:
            row = session.get(WebSubTopic, (feed, fmt))
            if row is None:
                continue
            if exchange.ok:
                # A change seen while the ping was in flight still owes one.
                row.ping_due_at = None if row.etag == etag else now
                row.ping_failures, row.ping_failing_since, row.ping_error = 0, None, None
                continue
            since = row.ping_failing_since or now
            if now - since >= drop_after:
                log.error(
                    "websub: gave up pinging the hub for %s.%s: %s", feed, fmt, exchange.error
                )
                row.ping_due_at, row.ping_failures, row.ping_failing_since = None, 0, None
                row.ping_error = exchange.error
                continue
            row.ping_failures += 1
            row.ping_failing_since, row.ping_error = since, exchange.error
            row.ping_due_at = now + backoff(ctx, row.ping_failures)
            log.warning(
                "websub: publish ping for %s.%s failed (%d): %s",
                feed,
                fmt,
                row.ping_failures,
                exchange.error,
            )
