"""The scheduler SIGKILLed mid-run: the lease expires, the next run completes, no feed is torn.

Real scheduler processes on the test database (both backends), killed in the middle of
(a) a related rebuild slowed deterministically (small batches, a pause at every checkpoint)
and (b) a poll held by a slow upstream server on 127.0.0.1. Time passing is stood for by
moving the dead run's lease into the past.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from feedsvc import jobs
from feedsvc.context import Context
from feedsvc.models import Category, JobLease, JobRun, Post, RelatedItem, Source
from feedsvc.related import refresh
from feedsvc.repo import related as related_repo
from feedsvc.schemas import SourceCreate
from feedsvc.services import sources as source_service
from tests.factories import Factory
from tests.feedcheck import parse
from tests.processes import config_env, feedsvc, stop, wait_for

pytestmark = pytest.mark.usefixtures("backend")

# The real CLI, with the rebuild made slow on purpose: batches of 4 lists, 0.3 s per batch.
SLOW_REBUILD = """
import sys, time
from feedsvc import jobs
from feedsvc.related import refresh
refresh.BATCH = 4
_checkpoint = jobs.Lease.checkpoint
def slow_checkpoint(self):
    time.sleep(0.3)
    _checkpoint(self)
jobs.Lease.checkpoint = slow_checkpoint
from feedsvc.cli import main
sys.argv = ["feedsvc", *sys.argv[1:]]
main()
"""

TOPICS = [
    ("国债", "国债 收益率 期限 久期 利率 票息 国债"),
    ("指数基金", "指数基金 定投 费率 跟踪误差 指数基金 宽基"),
    ("保险", "保险 重疾险 保额 免责条款 保险 受益人"),
    ("记账", "记账 预算 结余 储蓄 记账 消费"),
]


def runs(ctx: Context, job: str) -> list[tuple[int, str, str | None]]:
    with ctx.db.read() as session:
        rows = session.execute(
            select(JobRun.id, JobRun.status, JobRun.error)
            .where(JobRun.job == job)
            .order_by(JobRun.id)
        )
        return [(row.id, row.status, row.error) for row in rows]


def expire_lease(ctx: Context, name: str) -> None:
    """Stand for time passing: the dead holder's lease is now past its expiry."""
    with ctx.db.write() as session:
        session.execute(
            update(JobLease)
            .where(JobLease.name == name)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )


def feeds(client: FlaskClient, ctx: Context) -> dict[str, bytes]:
    """Every category's RSS and Atom bytes, each parsed cleanly (bozo 0, well-formed)."""
    with ctx.db.read() as session:
        slugs = list(session.scalars(select(Category.slug).order_by(Category.slug)))
    out: dict[str, bytes] = {}
    for slug in slugs:
        for fmt in ("rss", "atom"):
            response = client.get(f"/feeds/{slug}.{fmt}")
            assert response.status_code == 200, (slug, fmt)
            parse(response.data)
            out[f"{slug}.{fmt}"] = response.data
    return out


def lists(ctx: Context) -> dict[int, list[str]]:
    with ctx.db.read() as session:
        stored = related_repo.stored_lists(session)
    return {post_id: [key for key, _ in ranked] for post_id, ranked in stored.items()}


def test_rebuild_killed_mid_run_completes_next_time(
    db_url: str, ctx: Context, factory: Factory, client: FlaskClient, tmp_path: Path
) -> None:
    for n in range(48):
        topic, words = TOPICS[n % len(TOPICS)]
        factory.post(
            "jijin" if n % 2 else "licai-fangfa",
            title=f"{topic}笔记第{n}篇",
            content=f"{words}。第{n}篇的例子。",
            tags=[topic],
        )
    env = config_env(tmp_path, db_url)
    log = tmp_path / "scheduler.log"
    killed = feedsvc(["scheduler"], env, log, code=SLOW_REBUILD)
    try:

        def partly_written() -> bool:
            with ctx.db.read() as session:
                written = session.scalar(select(func.count(func.distinct(RelatedItem.post_id))))
            return bool(written) and runs(ctx, refresh.REFRESH_JOB)[-1:][0][1] == "running"

        wait_for(lambda: runs(ctx, refresh.REFRESH_JOB) and partly_written(), 60, "a rebuild")
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
    finally:
        stop(killed)
    # Killed mid-run: the run says running, the lease is still held, some lists are written.
    assert [status for _, status, _ in runs(ctx, refresh.REFRESH_JOB)] == ["running"]
    with ctx.db.read() as session:
        lease = session.get(JobLease, "related")
        assert lease is not None and lease.owner is not None
        assert lease.expires_at is not None and lease.expires_at > datetime.now(UTC)
    partial = lists(ctx)
    assert 0 < len(partial) < 48
    feeds(client, ctx)  # what readers see mid-way parses, every feed

    expire_lease(ctx, "related")
    again = feedsvc(["scheduler"], env, log)
    try:
        wait_for(
            lambda: any(s == "succeeded" for _, s, _ in runs(ctx, refresh.REFRESH_JOB)),
            60,
            "the next run to succeed",
        )
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) == 0
    finally:
        stop(again)
    history = runs(ctx, refresh.REFRESH_JOB)
    assert history[0][1:] == ("failed", jobs.ABANDONED)  # closed by the run that took over
    assert history[-1][1] == "succeeded"
    complete = lists(ctx)
    assert len(complete) == 48 and len(complete) > len(partial)
    before = feeds(client, ctx)
    # Every list equals what a full rebuild computes, exactly: a rebuild now writes nothing
    # and no feed changes by a byte.
    report = refresh.rebuild(ctx, None)
    assert report.written == 0
    assert lists(ctx) == complete
    assert feeds(client, ctx) == before
    with ctx.db.read() as session:
        lease = session.get(JobLease, "related")
        assert lease is not None and lease.owner is None


# -- a poll killed while an upstream is slow ------------------------------------------------


def rss(prefix: str, titles: list[str]) -> bytes:
    items = "".join(
        f'<item><guid isPermaLink="false">{prefix}-{n}</guid><title>{title}</title>'
        f"<link>http://partner.test/{prefix}/{n}</link>"
        f"<pubDate>Mon, 0{n + 1} Mar 2026 09:00:00 +0800</pubDate>"
        f"<description><![CDATA[<p>{title}：正文。</p>]]></description></item>"
        for n, title in enumerate(titles)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{prefix}</title><link>http://partner.test/</link><description>d</description>"
        f"{items}</channel></rss>"
    ).encode()


FAST = ["快讯：央行降准", "快讯：国债发行", "快讯：基金分红"]
SLOW = ["慢报：养老金入市", "慢报：保险新规", "慢报：房贷利率"]


class Upstream:
    """/fast.xml at once; /slow.xml held until ``release`` is set (then at once)."""

    def __init__(self) -> None:
        self.slow_arrived = threading.Event()
        self.release = threading.Event()
        self.hits: dict[str, int] = {}
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.hits[self.path] = upstream.hits.get(self.path, 0) + 1
                if self.path == "/slow.xml":
                    upstream.slow_arrived.set()
                    upstream.release.wait(60)
                name = self.path.removeprefix("/").removesuffix(".xml")
                body = rss(name, FAST if self.path == "/fast.xml" else SLOW)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the fetching process was killed meanwhile
                    pass

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


def posts_titles(ctx: Context) -> list[str]:
    with ctx.db.read() as session:
        return sorted(session.scalars(select(Post.title)))


def fetched(ctx: Context, source_id: int) -> bool:
    with ctx.db.read() as session:
        row = session.get(Source, source_id)
        return row is not None and row.last_fetched_at is not None


def test_poll_killed_mid_run_completes_next_time(
    db_url: str,
    ctx: Context,
    factory: Factory,
    client: FlaskClient,
    upstream: Upstream,
    tmp_path: Path,
) -> None:
    factory.ensure_category("jijin")
    ids = [
        source_service.create_source(
            ctx, SourceCreate(url=f"{upstream.url}/{name}.xml", category="jijin", mode="posts")
        ).id
        for name in ("fast", "slow")
    ]
    env = config_env(tmp_path, db_url)
    log = tmp_path / "scheduler.log"
    killed = feedsvc(["scheduler"], env, log)
    try:
        wait_for(upstream.slow_arrived.is_set, 60, "the slow fetch to start")
        wait_for(lambda: fetched(ctx, ids[0]), 30, "the fast source to be stored")
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
    finally:
        stop(killed)
    # Mid-run: the fast source is stored whole, the slow one not at all; feeds parse.
    assert [s for _, s, _ in runs(ctx, "sources-poll")] == ["running"]
    assert posts_titles(ctx) == sorted(FAST)
    assert not fetched(ctx, ids[1])
    mid = feeds(client, ctx)
    assert all(title in mid["jijin.atom"].decode() for title in FAST)

    upstream.release.set()  # the upstream answers at once from now on
    expire_lease(ctx, "sources-poll")
    again = feedsvc(["scheduler"], env, log)
    try:
        wait_for(lambda: fetched(ctx, ids[1]), 60, "the slow source to be polled again")
        wait_for(
            lambda: any(s == "succeeded" for _, s, _ in runs(ctx, "sources-poll")),
            30,
            "the poll to succeed",
        )
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) == 0
    finally:
        stop(again)
    history = runs(ctx, "sources-poll")
    assert history[0][1:] == ("failed", jobs.ABANDONED)
    # Every upstream entry exactly once; the fast source was not fetched twice.
    assert posts_titles(ctx) == sorted(FAST + SLOW)
    assert upstream.hits["/fast.xml"] == 1
    after = feeds(client, ctx)
    parsed, _ = parse(after["jijin.atom"])
    assert sorted(entry.title for entry in parsed.entries) == sorted(FAST + SLOW)
