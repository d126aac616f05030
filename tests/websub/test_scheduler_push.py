"""The real scheduler process pushes within seconds: a subscriber on 127.0.0.1 is verified,
then gets a new post's feed and a scheduled post's, the moment it becomes due (real time)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest

from feedsvc import create_app
from feedsvc.config import load_settings
from tests.conftest import BASE_URL, overrides_for
from tests.factories import Factory
from tests.processes import config_env, feedsvc, stop, wait_for
from tests.websub.subscriber import running_subscriber

pytestmark = pytest.mark.usefixtures("backend")

WEBSUB = {"hub": "builtin", "check_seconds": 0.2}
TOPIC = f"{BASE_URL}/feeds/licai-fangfa.rss"


def test_the_scheduler_process_delivers_within_seconds(db_url: str, tmp_path: Path) -> None:
    settings = load_settings(overrides_for(db_url, websub=WEBSUB), environ={})
    app = create_app(settings=settings)  # the real clock, as the scheduler process has
    ctx, client = app.extensions["feedsvc"], app.test_client()
    factory = Factory(ctx)
    factory.post(title="先有一篇")
    auth = {"Authorization": f"Bearer {factory.token()}"}
    env = config_env(tmp_path, db_url, websub=WEBSUB)
    log = tmp_path / "scheduler.log"
    scheduler = feedsvc(["scheduler"], env, log)
    try:
        with running_subscriber() as sub:
            form = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": sub.callback()}
            assert client.post("/websub", data=form).status_code == 202
            wait_for(lambda: sub.of("GET", "subscribe"), 60, "the verification (start-up)")
            wait_for(
                lambda: client.get("/api/v1/websub/subscriptions", headers=auth).json["items"],
                10,
                "the subscription to be active",
            )

            started = time.monotonic()
            created = client.post(
                "/api/v1/posts",
                headers=auth,
                json={"title": "推送来的新文章", "category": "licai-fangfa", "content": "正文。"},
            )
            assert created.status_code == 201
            wait_for(lambda: sub.deliveries, 10, "the new post's feed to be pushed")
            took = time.monotonic() - started
            print(f"pushed {took:.2f} s after the write returned")
            assert took < 5
            assert feedparser.parse(sub.deliveries[0].body).entries[0].title == "推送来的新文章"

            sub.clear()
            due = ctx.clock.now() + timedelta(seconds=3)
            factory.post(title="三秒后发布", published_at=due, tags=[])
            wait_for(lambda: sub.deliveries, 15, "the scheduled post's feed to be pushed")
            late = (ctx.clock.now() - due).total_seconds()
            print(f"scheduled post pushed {late:.2f} s after it became due")
            assert late < 5
            assert feedparser.parse(sub.deliveries[0].body).entries[0].title == "三秒后发布"
    finally:
        stop(scheduler)
        ctx.db.dispose()
    said = log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in said, said
    assert "websub: run" in said and "(change) succeeded" in said, said
