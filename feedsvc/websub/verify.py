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
from datetime import timedelta

from feedsvc.context import Context
from feedsvc.jobs import Lease
from feedsvc.models import WebSubIntent, WebSubSubscription
from feedsvc.repo import websub as websub_repo
from feedsvc.websub.deliver import Exchange, Messenger
from feedsvc.websub.topics import Topic
from feedsvc.websub.watch import ensure_topic

log = logging.getLogger("feedsvc.websub")

VERIFY_ATTEMPTS = 3
BATCH = 200


def backoff(ctx: Context, failures: int) -> timedelta:
    """Exponential: base · 2^(failures-1), capped (websub.retry_*_seconds)."""
    settings = ctx.settings.websub
    seconds = settings.retry_base_seconds * 2 ** min(max(failures - 1, 0), 30)
    return timedelta(seconds=min(seconds, settings.retry_max_seconds))


def act_on_requests(ctx: Context, lease: Lease, messenger: Messenger) -> int:
    """Verify or deny every request that is due; how many were acted on."""
    done = 0
    while True:
        lease.checkpoint()
        with ctx.db.read() as session:
            intents = websub_repo.due_intents(session, ctx.clock.now(), BATCH)
        if not intents:
            return done
        for intent, exchange in messenger.each(intents, lambda i: _ask(messenger, i)):
            _settle(ctx, intent, exchange)
            done += 1


def _ask(messenger: Messenger, intent: WebSubIntent) -> tuple[Exchange, str]:
    if intent.mode == "denied":
        params = {
            "hub.mode": "denied",
            "hub.topic": intent.topic,
            "hub.reason": intent.reason or "",
        }
        return messenger.tell(intent.callback, params), ""
    challenge = secrets.token_urlsafe(32)
    params = {"hub.mode": intent.mode, "hub.topic": intent.topic, "hub.challenge": challenge}
    if intent.mode == "subscribe":
        params["hub.lease_seconds"] = str(intent.lease_seconds)
    return messenger.verify(intent.callback, params, challenge), challenge


def _settle(ctx: Context, intent: WebSubIntent, answer: tuple[Exchange, str]) -> None:
    exchange, _ = answer
    now = ctx.clock.now()
    what = f"{intent.mode} {intent.callback} to {intent.topic}"
    if intent.mode == "denied":
        # §5.2: told once; nothing else depends on the callback's answer.
        log.info("websub: denied %s: %s", what, intent.reason)
        _forget(ctx, intent)
        return
    if not exchange.ok:
        attempts = intent.attempts + 1
        if exchange.final or attempts >= VERIFY_ATTEMPTS:
            log.warning("websub: %s not verified: %s", what, exchange.error)
            _forget(ctx, intent)
        else:
            with ctx.db.write() as session:
                websub_repo.retry_intent(
                    session, intent.id, now + backoff(ctx, attempts), exchange.error or ""
                )
        return
    if intent.mode == "unsubscribe":
        with ctx.db.write() as session:
            found = websub_repo.get_subscription(
                session, intent.feed or "", intent.fmt or "", intent.callback
            )
            if found is not None:
                session.delete(found)
            websub_repo.remove_intents(session, [intent.id])
        log.info("websub: verified %s", what)
        return
    assert intent.feed is not None and intent.fmt is not None and intent.lease_seconds
    # The new subscriber is owed changes from now on, not what the feed already held.
    baseline = ensure_topic(ctx, Topic(intent.feed, intent.fmt))
    if baseline is None:  # the feed was deleted since the request
        log.info("websub: %s: the feed is gone", what)
        _forget(ctx, intent)
        return
    with ctx.db.write() as session:
        row = websub_repo.get_subscription(session, intent.feed, intent.fmt, intent.callback)
        expires = now + timedelta(seconds=intent.lease_seconds)
        if row is None:  # §5.1: a subscription is new, or a renewal of the same pair
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
            row.topic, row.secret, row.lease_seconds = (
                intent.topic,
                intent.secret,
                intent.lease_seconds,
            )
            row.verified_at, row.expires_at = now, expires
        websub_repo.remove_intents(session, [intent.id])
    log.info("websub: verified %s (lease %ds)", what, intent.lease_seconds)


def _forget(ctx: Context, intent: WebSubIntent) -> None:
    with ctx.db.write() as session:
        websub_repo.remove_intents(session, [intent.id])
