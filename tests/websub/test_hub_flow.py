"""The built-in hub end to end: subscribe, verify, deliver on change and when a scheduled
post becomes due, sign, unsubscribe; on both backends, with a real subscriber on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from datetime import timedelta
from typing import Any

import feedparser
import pytest

from feedsvc import jobs
from feedsvc.config import load_settings
from feedsvc.models import WebSubSubscription
from feedsvc.websub.jobs import WEBSUB, has_work
from tests.conftest import BASE_URL, overrides_for
from tests.processes import wait_for
from tests.websub.subscriber import running_subscriber

TOPIC = f"{BASE_URL}/feeds/licai-fangfa.atom"
SECRET = "一个足够长的密钥-secret-0123456789"


@pytest.fixture
def settings(db_url: str):  # type: ignore[no-untyped-def]
    websub = {"hub": "builtin", "retry_base_seconds": 10, "drop_after_seconds": 120}
    return load_settings(overrides_for(db_url, websub=websub), environ={})


def run_websub(ctx: Any) -> None:
    assert jobs.run_job(ctx, WEBSUB, trigger="cli") is jobs.Outcome.SUCCEEDED


def subscribe(client: Any, callback: str, topic: str = TOPIC, **extra: str) -> Any:
    form = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback, **extra}
    return client.post("/websub", data=form)


def subscriptions(ctx: Any) -> list[WebSubSubscription]:
    with ctx.db.read() as session:
        return list(session.query(WebSubSubscription).order_by(WebSubSubscription.id))


def test_subscribe_verify_deliver_unsubscribe(client, ctx, factory, clock) -> None:
    factory.post(title="先建立应急资金")
    with running_subscriber() as sub:
        answer = subscribe(client, sub.callback(), **{"hub.secret": SECRET})
        assert answer.status_code == 202
        assert subscriptions(ctx) == []  # not before the callback confirmed it
        assert has_work(ctx)
        run_websub(ctx)
        (check,) = sub.of("GET", "subscribe")
        assert check.params["hub.topic"] == TOPIC
        assert int(check.params["hub.lease_seconds"]) == ctx.settings.websub.default_lease_seconds
        (row,) = subscriptions(ctx)
        assert row.callback == sub.callback() and row.feed == "licai-fangfa" and row.fmt == "atom"
        assert sub.deliveries == []  # verified: owed changes from now on, not the feed as it was
        assert not has_work(ctx)

        factory.post(title="基金定投的节奏")
        assert has_work(ctx)
        run_websub(ctx)
        (delivery,) = sub.deliveries
        assert delivery.headers["content-type"].startswith("application/atom+xml")
        assert f'<{BASE_URL}/websub>; rel="hub"' in delivery.headers["link"]
        assert f'<{TOPIC}>; rel="self"' in delivery.headers["link"]
        expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["x-hub-signature"] == f"sha256={expected}"
        titles = [e.title for e in feedparser.parse(delivery.body).entries]
        assert titles[0] == "基金定投的节奏"
        # The delivered body is the feed as served.
        assert delivery.body == client.get("/feeds/licai-fangfa.atom").data

        # A scheduled post: no change to the feed's bytes now, so nothing is sent ...
        sub.clear()
        factory.post(title="年底再平衡", published_at=clock.now() + timedelta(hours=2))
        run_websub(ctx)
        assert sub.deliveries == []
        # ... until it becomes due, with no write: the clock moves, the hub notices.
        clock.advance(hours=2, seconds=1)
        assert has_work(ctx)
        run_websub(ctx)
        (delivery,) = sub.deliveries
        assert feedparser.parse(delivery.body).entries[0].title == "年底再平衡"

        # Unsubscribed (verified): nothing more.
        sub.clear()
        form = {"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.callback": sub.callback()}
        assert client.post("/websub", data=form).status_code == 202
        run_websub(ctx)
        assert len(sub.of("GET", "unsubscribe")) == 1
        assert subscriptions(ctx) == []
        factory.post(title="退订以后的新文章")
        run_websub(ctx)
        assert sub.deliveries == []


def test_wrong_challenge_echo_leaves_it_inactive(client, ctx, factory) -> None:
    factory.post()
    with running_subscriber(echo="wrong") as sub:
        assert subscribe(client, sub.callback()).status_code == 202
        run_websub(ctx)
        assert len(sub.of("GET", "subscribe")) == 1
        assert subscriptions(ctx) == []
        factory.post(title="不该收到")
        run_websub(ctx)
        assert sub.deliveries == []


def test_failing_subscriber_is_retried_then_dropped(client, ctx, factory, clock, caplog) -> None:
    factory.post()
    with running_subscriber(post_status=500) as sub:
        subscribe(client, sub.callback())
        run_websub(ctx)
        factory.post(title="推送失败的文章")
        run_websub(ctx)
        assert len(sub.deliveries) == 1
        run_websub(ctx)  # backing off: not yet
        assert len(sub.deliveries) == 1
        (row,) = subscriptions(ctx)
        assert row.failures == 1 and row.next_attempt_at == clock.now() + timedelta(seconds=10)
        clock.advance(seconds=10)
        run_websub(ctx)
        assert len(sub.deliveries) == 2
        (row,) = subscriptions(ctx)
        assert row.failures == 2 and row.next_attempt_at == clock.now() + timedelta(seconds=20)
        clock.advance(seconds=20)
        run_websub(ctx)
        clock.advance(seconds=40)
        run_websub(ctx)
        clock.advance(seconds=80)  # failing for 150 s > drop_after_seconds (120)
        with caplog.at_level("WARNING", logger="feedsvc.websub"):
            run_websub(ctx)
        assert len(sub.deliveries) == 5
        assert subscriptions(ctx) == []
        assert "dropped subscription" in caplog.text


def test_a_slow_subscriber_holds_up_nobody(db_url, clock) -> None:
    """One subscriber takes 3 s to answer each delivery: the others get the first change at
    once, and a second change made while the slow one is still in flight, at once too."""
    from feedsvc import create_app
    from tests.factories import Factory

    websub = {"hub": "builtin", "timeout": 5, "check_seconds": 0.1}
    settings = load_settings(overrides_for(db_url, websub=websub), environ={})
    app = create_app(settings=settings, clock=clock)
    ctx, client = app.extensions["feedsvc"], app.test_client()
    factory = Factory(ctx)
    factory.post()
    try:
        with running_subscriber(post_delay=3.0) as slow, running_subscriber() as fast:
            subscribe(client, slow.callback())
            subscribe(client, fast.callback())
            run_websub(ctx)
            assert len(subscriptions(ctx)) == 2
            factory.post(title="第一次更新")
            started = time.monotonic()
            runner = threading.Thread(target=run_websub, args=(ctx,))
            runner.start()
            wait_for(lambda: len(fast.deliveries) == 1, 2, "the fast subscriber's delivery")
            assert time.monotonic() - started < 1.5
            factory.post(title="第二次更新")  # while the slow delivery is in flight
            wait_for(lambda: len(fast.deliveries) == 2, 2, "the second change, to the fast one")
            assert time.monotonic() - started < 2.5
            assert runner.is_alive()  # the slow one still holds its slot
            runner.join(timeout=20)
            titles = [feedparser.parse(d.body).entries[0].title for d in fast.deliveries]
            assert titles == ["第一次更新", "第二次更新"]
            # The slow one got the first body, then (owed) the newest.
            wait_for(lambda: len(slow.deliveries) >= 1, 5, "the slow delivery")
            run_websub(ctx)
            last = feedparser.parse(slow.deliveries[-1].body).entries[0].title
            assert last == "第二次更新"
    finally:
        ctx.db.dispose()


def test_leases_renew_expire_and_are_pruned(client, ctx, factory, clock) -> None:
    factory.post()
    lease = ctx.settings.websub.default_lease_seconds
    with running_subscriber() as sub:
        subscribe(client, sub.callback(), **{"hub.secret": "第一个密钥-0123456789"})
        run_websub(ctx)
        (first,) = subscriptions(ctx)
        assert first.expires_at == clock.now() + timedelta(seconds=lease)
        # Subscribing again before it ends renews it: the same row, a new lease and secret.
        clock.advance(days=5)
        subscribe(client, sub.callback(), **{"hub.secret": "第二个密钥-0123456789"})
        run_websub(ctx)
        (renewed,) = subscriptions(ctx)
        assert renewed.id == first.id and renewed.secret == "第二个密钥-0123456789"
        assert renewed.expires_at == clock.now() + timedelta(seconds=lease)
        assert len(sub.of("GET", "subscribe")) == 2
        # Past its lease it is pruned, and nothing more is sent.
        clock.advance(seconds=lease)
        assert has_work(ctx)
        run_websub(ctx)
        assert subscriptions(ctx) == []
        factory.post(title="租约到期以后")
        run_websub(ctx)
        assert sub.deliveries == []
