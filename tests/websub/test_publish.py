"""An external hub: one publish ping per changed feed per change, retried with backoff when the
hub is down, and a write never waits for it (measured). Both backends."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from feedsvc import create_app, jobs
from feedsvc.config import load_settings
from feedsvc.models import WebSubTopic
from feedsvc.websub.jobs import WEBSUB, has_work
from tests.conftest import BASE_URL, overrides_for
from tests.factories import Factory
from tests.processes import free_port, wait_for
from tests.websub.subscriber import Subscriber, running_subscriber

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def hub() -> Any:
    with running_subscriber() as server:
        yield server


@pytest.fixture
def settings(db_url: str, hub: Subscriber):  # type: ignore[no-untyped-def]
    websub = {"hub": hub.callback("hub"), "retry_base_seconds": 30, "drop_after_seconds": 600}
    return load_settings(overrides_for(db_url, websub=websub), environ={})


def run_websub(ctx: Any) -> None:
    assert jobs.run_job(ctx, WEBSUB, trigger="cli") is jobs.Outcome.SUCCEEDED


def pings(hub: Subscriber) -> Counter[str]:
    found: Counter[str] = Counter()
    for ping in hub.deliveries:
        form = parse_qs(ping.body.decode("ascii"))
        assert form["hub.mode"] == ["publish"]
        assert ping.headers["content-type"] == "application/x-www-form-urlencoded"
        (url,) = form["hub.url"]
        found[url] += 1
    return found


def feeds(*names: str) -> Counter[str]:
    return Counter(f"{BASE_URL}/feeds/{name}.{fmt}" for name in names for fmt in FORMATS)


FORMATS = ("rss", "atom", "json")


def test_one_ping_per_changed_feed_per_change(client, ctx, factory, clock, hub, auth) -> None:
    factory.category("jijin")
    factory.post(tags=["储蓄"])
    run_websub(ctx)  # the first look: a baseline, no ping for what the feeds already held
    assert hub.deliveries == []
    assert not has_work(ctx)

    created = client.post(
        "/api/v1/posts",
        headers=auth,
        json={
            "title": "货币基金的收益从哪里来",
            "category": "jijin",
            "content": "正文。",
            "tags": ["储蓄"],
        },
    )
    assert created.status_code == 201
    assert has_work(ctx)
    run_websub(ctx)
    assert pings(hub) == feeds("jijin", "all", "tags/chu-xu")
    run_websub(ctx)  # nothing new: no second ping
    assert len(hub.deliveries) == 9

    hub.clear()  # an edit of the title changes the same feeds again, once each
    slug = created.json["id"]
    edited = client.patch(f"/api/v1/posts/{slug}", headers=auth, json={"title": "货币基金的收益"})
    assert edited.status_code == 200
    run_websub(ctx)
    assert pings(hub) == feeds("jijin", "all", "tags/chu-xu")

    hub.clear()  # a draft changes no feed's bytes: no ping at all
    factory.post("jijin", title="草稿", status="draft", tags=[])
    run_websub(ctx)
    assert hub.deliveries == []

    hub.clear()  # moved to another category: both categories' feeds change
    moved = client.patch(f"/api/v1/posts/{slug}", headers=auth, json={"category": "licai-fangfa"})
    assert moved.status_code == 200
    run_websub(ctx)
    assert pings(hub) == feeds("jijin", "licai-fangfa", "all", "tags/chu-xu")

    hub.clear()  # a scheduled post: nothing until it is due, then its feeds, once
    factory.post("jijin", title="下周发布", tags=[], published_at=clock.now() + timedelta(hours=1))
    run_websub(ctx)
    assert hub.deliveries == []
    clock.advance(hours=1)
    assert has_work(ctx)
    run_websub(ctx)
    assert pings(hub) == feeds("jijin", "all")

    hub.clear()  # deleted: its feeds change
    assert client.delete(f"/api/v1/posts/{slug}", headers=auth).status_code == 204
    run_websub(ctx)
    assert pings(hub) == feeds("licai-fangfa", "all", "tags/chu-xu")


def test_a_new_tag_feed_is_pinged(client, ctx, factory, hub, auth) -> None:
    factory.post(tags=["储蓄"])
    run_websub(ctx)
    client.post(
        "/api/v1/posts",
        headers=auth,
        json={"title": "黄金", "category": "licai-fangfa", "content": "正文。", "tags": ["黄金"]},
    )
    run_websub(ctx)
    assert pings(hub) == feeds("licai-fangfa", "all", "tags/huang-jin")


@contextmanager
def app_with_hub(db_url: str, clock: Any, hub_url: str) -> Iterator[Any]:
    """An app whose settings name ``hub_url`` (known only once a port was chosen)."""
    websub = {"hub": hub_url, "retry_base_seconds": 30}
    settings = load_settings(overrides_for(db_url, websub=websub), environ={})
    app = create_app(settings=settings, clock=clock)
    try:
        yield app
    finally:
        app.extensions["feedsvc"].db.dispose()


def _write_latency(client: Any, auth: dict[str, str], n: int, tag: str) -> list[float]:
    took = []
    for i in range(n):
        started = time.perf_counter()
        answer = client.post(
            "/api/v1/posts",
            headers=auth,
            json={"title": f"{tag}第{i}篇", "category": "licai-fangfa", "content": "正文。"},
        )
        took.append(time.perf_counter() - started)
        assert answer.status_code == 201
    return took


def test_a_hub_that_is_down_never_fails_or_slows_a_write(db_url, clock) -> None:
    """Writes timed with the hub up and with it down (its port refusing), in alternating
    rounds, while the websub job runs beside them as the scheduler process would."""
    port = free_port()
    with app_with_hub(db_url, clock, f"http://127.0.0.1:{port}/hub") as app:
        ctx, client = app.extensions["feedsvc"], app.test_client()
        factory = Factory(ctx)
        factory.post()
        auth = {"Authorization": f"Bearer {factory.token()}"}
        stop = threading.Event()

        def job() -> None:
            while not stop.is_set():
                if has_work(ctx):
                    jobs.run_job(ctx, WEBSUB, trigger="change")
                time.sleep(0.01)

        runner = threading.Thread(target=job, daemon=True)
        runner.start()
        up: list[float] = []
        down: list[float] = []
        pinged = 0
        try:
            for round_ in range(6):
                with running_subscriber(port=port) as hub:
                    up += _write_latency(client, auth, 5, f"上{round_}")
                    wait_for(lambda: not has_work(ctx), 20, "the pings to be sent")
                    pinged += len(hub.deliveries)
                down += _write_latency(client, auth, 5, f"下{round_}")
        finally:
            stop.set()
            runner.join(timeout=30)
    median_up, median_down = statistics.median(up), statistics.median(down)
    print(
        f"write latency median: hub up {median_up * 1000:.2f} ms, down {median_down * 1000:.2f} ms"
    )
    assert pinged > 0  # the job did ping while the hub was up
    # Within noise: this machine's medians of 30 writes move by a few ms between runs.
    assert median_down < median_up * 1.5 + 0.010


def test_pings_owed_to_a_down_hub_back_off_and_survive(db_url, clock) -> None:
    port = free_port()  # nothing listens here
    with app_with_hub(db_url, clock, f"http://127.0.0.1:{port}/hub") as app:
        down_ctx = app.extensions["feedsvc"]
        factory = Factory(down_ctx)
        factory.post()
        run_websub(down_ctx)  # baseline
        factory.post(title="枢纽宕机时写的文章")
        started = time.perf_counter()
        run_websub(down_ctx)  # refused at once: the run does not hang on it
        assert time.perf_counter() - started < 5
        with down_ctx.db.read() as session:
            owed = session.scalars(select(WebSubTopic).where(WebSubTopic.ping_due_at.is_not(None)))
            failed = {(t.feed, t.ping_failures, t.ping_due_at) for t in owed}
        due = clock.now() + timedelta(seconds=30)
        assert failed == {
            (feed, 1, due) for feed in ("licai-fangfa", "all", "tags/chu-xu", "tags/yu-suan")
        }
        assert not has_work(down_ctx)  # backing off
    # The hub comes back on its port; a new process (a restart) finds the backlog.
    with running_subscriber(port=port) as back:
        clock.advance(seconds=30)
        with app_with_hub(db_url, clock, f"http://127.0.0.1:{port}/hub") as restarted_app:
            restarted = restarted_app.extensions["feedsvc"]
            assert has_work(restarted)
            run_websub(restarted)
        assert pings(back) == feeds("licai-fangfa", "all", "tags/chu-xu", "tags/yu-suan")


def test_a_related_block_change_is_pinged(ctx, factory, hub) -> None:
    """The related refresh writes no post, but the 相关内容 blocks it changes are in the feeds."""
    from feedsvc.schedule import JOBS

    text = "指数基金定投适合长期投资，每月固定金额买入基金，摊低成本，坚持定投。"
    factory.post(title="指数基金定投入门", content=text, tags=[])
    factory.post("jijin", title="基金定投要坚持", content=text + "定投基金要有耐心。", tags=[])
    run_websub(ctx)
    assert hub.deliveries == []
    refresh = jobs.run_job(ctx, JOBS["related-refresh"], trigger="cli")
    assert refresh is jobs.Outcome.SUCCEEDED
    run_websub(ctx)
    assert pings(hub) == feeds("licai-fangfa", "jijin", "all")
