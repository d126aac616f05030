"""The built-in hub acting on requests it answered 202: verification of intent, denials.

W3C WebSub §5.2-5.3: a subscribe or unsubscribe request takes effect only when the callback,
asked by a GET carrying ``hub.challenge``, echoes it with a 2xx; a subscription that is
refused (a topic that is not a feed here) is told so by a GET with ``hub.mode=denied``.

A callback that answers 404 (§5.3: the subscriber does not agree), echoes something else, or
is refused by the address guard ends the request. One that cannot be reached or answers 5xx
is asked again with backoff, up to ``VERIFY_ATTEMPTS`` times.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Hashable, Sequence
from datetime import timedelta

from sqlalchemy.orm import Session

from feedsvc.context import Context
from feedsvc.models import WebSubIntent, WebSubSubscription
from feedsvc.repo import websub as websub_repo
from feedsvc.websub.deliver import Exchange, Messenger
from feedsvc.websub.topics import Topic
from feedsvc.websub.watch import ensure_topic

log = logging.getLogger("feedsvc.websub")

VERIFY_ATTEMPTS = 3


def backoff(ctx: Context, failures: int) -> timedelta:
    """Exponential: base · 2^(failures-1), capped (websub.retry_*_seconds)."""
    settings = ctx.settings.websub
    seconds = settings.retry_base_seconds * 2 ** min(max(failures - 1, 0), 30)
    return timedelta(seconds=min(seconds, settings.retry_max_seconds))


class Requests:
    """Requests to verify or deny (Errands for pump.py). Their outcomes are stored together:
    the baseline ETag of each topic a subscriber verified is read first (rendering the feed
    if it is not watched yet), then every outcome in one transaction."""

    def __init__(self, messenger: Messenger) -> None:
        self.messenger = messenger

    def due(self, ctx: Context, exclude: set[Hashable], limit: int) -> list[WebSubIntent]:
        with ctx.db.read() as session:
            rows = websub_repo.due_intents(session, ctx.clock.now(), limit + len(exclude))
        return [row for row in rows if row.id not in exclude][:limit]

    def key(self, item: WebSubIntent) -> Hashable:
        return item.id

    def send(self, item: WebSubIntent) -> Exchange:
        return _ask(self.messenger, item)

    def record(self, ctx: Context, results: Sequence[tuple[WebSubIntent, Exchange]]) -> None:
        baselines = {
            (intent.feed, intent.fmt): ensure_topic(ctx, Topic(intent.feed, intent.fmt))
            for intent, exchange in results
            if intent.mode == "subscribe" and exchange.ok and intent.feed and intent.fmt
        }
        said: list[tuple[int, str, object]] = []
        with ctx.db.write() as session:
            for intent, exchange in results:
                said += _settle(ctx, session, intent, exchange, baselines)
        for level, message, detail in said:
            log.log(level, message, detail)


def _ask(messenger: Messenger, intent: WebSubIntent) -> Exchange:
    if intent.mode == "denied":
        params = {
            "hub.mode": "denied",
            "hub.topic": intent.topic,
            "hub.reason": intent.reason or "",
        }
        return messenger.tell(intent.callback, params)
    challenge = secrets.token_urlsafe(32)
    params = {"hub.mode": intent.mode, "hub.topic": intent.topic, "hub.challenge": challenge}
    if intent.mode == "subscribe":
        params["hub.lease_seconds"] = str(intent.lease_seconds)
    return messenger.verify(intent.callback, params, challenge)


def _settle(
    ctx: Context,
    session: Session,
    intent: WebSubIntent,
    exchange: Exchange,
    baselines: dict[tuple[str, str], str | None],
) -> list[tuple[int, str, object]]:
    """Store what one request came to; the log lines to say once it is committed."""
    now = ctx.clock.now()
    what = f"{intent.mode} {intent.callback} to {intent.topic}"
    if intent.mode == "denied":
        # §5.2: told once; nothing else depends on the callback's answer.
        websub_repo.remove_intents(session, [intent.id])
        told = f"{intent.callback} told its subscription to {intent.topic} is denied"
        return [(logging.INFO, "websub: %s", f"{told}: {intent.reason}")]
    if not exchange.ok:
        attempts = intent.attempts + 1
        if exchange.final or attempts >= VERIFY_ATTEMPTS:
            websub_repo.remove_intents(session, [intent.id])
            return [(logging.WARNING, "websub: not verified: %s", f"{what}: {exchange.error}")]
        at = now + backoff(ctx, attempts)
        websub_repo.retry_intent(session, intent.id, at, exchange.error or "")
        return []
    websub_repo.remove_intents(session, [intent.id])
    found = websub_repo.get_subscription(
        session, intent.feed or "", intent.fmt or "", intent.callback
    )
    if intent.mode == "unsubscribe":
        if found is not None:
            session.delete(found)
        return [(logging.INFO, "websub: verified %s", what)]
    assert intent.feed is not None and intent.fmt is not None and intent.lease_seconds
    # The new subscriber is owed changes from now on, not what the feed already held.
    baseline = baselines.get((intent.feed, intent.fmt))
    if baseline is None:  # the feed was deleted since the request
        return [(logging.INFO, "websub: %s: the feed is gone", what)]
    expires = now + timedelta(seconds=intent.lease_seconds)
    if found is None:  # §5.1: a subscription is new, or a renewal of the same pair
        session.add(
            WebSubSubscription(
                feed=intent.feed,
                fmt=intent.fmt,
                topic=intent.topic,
                callback=intent.callback,
                secret=intent.secret,
                lease_seconds=intent.lease_seconds,
                created_at=now,
                verified_at=now,
                expires_at=expires,
                delivered_etag=baseline,
                failures=0,
            )
        )
    else:  # a renewal: the new lease and secret; what is owed stays owed
        found.topic, found.secret = intent.topic, intent.secret
        found.lease_seconds, found.verified_at, found.expires_at = (
            intent.lease_seconds,
            now,
            expires,
        )
    session.flush()  # a second request of the same pair in this batch finds this row
    return [(logging.INFO, "websub: verified %s", f"{what} (lease {intent.lease_seconds}s)")]
