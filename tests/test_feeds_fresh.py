"""A write that has returned is on the very next poll, whichever process wrote and answers.

Real processes: `feedsvc serve` with 2 gunicorn workers (each with its own feed cache and
remembered versions) and its scheduler process; writes through the API, the CLI and a
scheduled job (an upstream source imported as posts). Each check polls 32 times over 16
concurrent connections right after the write returned, so both workers answer, and every
answer must show the write; conditional requests with the old validators get 200, never 304.
"""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import event, select, text
from werkzeug import Request, Response

from feedsvc import create_app
from feedsvc.config import load_settings
from feedsvc.models import Post
from feedsvc.schemas import SourceCreate
from feedsvc.services import sources as source_service
from tests.factories import Factory
from tests.processes import (
    ROOT,
    alive,
    children,
    config_env,
    feedsvc,
    free_port,
    kill_all,
    stop,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("backend")

CATEGORY = "jijin"
POLLS, CONNECTIONS = 32, 16
CLI = [sys.executable, "-m", "feedsvc.cli"]


@dataclass
class Site:
    base: str
    env: dict[str, str]
    token: str
    factory: Factory

    def feed_url(self, fmt: str = "rss") -> str:
        return f"{self.base}/feeds/{CATEGORY}.{fmt}"

    def stored(self, title: str) -> bool:
        with self.factory.ctx.db.read() as session:
            return session.scalar(select(Post.id).where(Post.title == title)) is not None


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            raw = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            return response.status, dict(response.headers.items()), raw.decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read().decode()


def healthy(base: str) -> bool:
    try:
        return get(f"{base}/healthz")[0] == 200
    except OSError:  # not listening yet
        return False


def shut_down(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM (gunicorn stops its workers and the scheduler); SIGKILL whatever is left."""
    kids = children(server.pid)
    kids += [pid for kid in kids for pid in children(kid)]
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stop(server)
    kill_all([pid for pid in kids if alive(pid)])


def polls(url: str, headers: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """POLLS polls, CONNECTIONS at a time (a new connection each: both workers answer)."""
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        answers = list(pool.map(lambda _: get(url, headers), range(POLLS)))
    return [(status, body) for status, _, body in answers]


@pytest.fixture
def start_site(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """Start `feedsvc serve` on a site with one post, after ``prepare(factory)`` if given."""
    env = config_env(tmp_path, db_url)
    settings = load_settings(environ={"FEEDSVC_CONFIG": env["FEEDSVC_CONFIG"]})
    app = create_app(settings=settings)  # the real clock: the server's
    factory = Factory(app.extensions["feedsvc"])
    servers: list[subprocess.Popen[bytes]] = []

    def start(prepare: Callable[[Factory], object] | None = None) -> Site:
        factory.post(CATEGORY, title="旧文：先存后花")
        token = factory.token()
        if prepare is not None:
            prepare(factory)
        port = free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
        server = feedsvc(args, env, tmp_path / "serve.log")
        servers.append(server)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: server.poll() is not None or healthy(base), 60, "/healthz to answer")
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        return Site(base, env, token, factory)

    try:
        yield start
    finally:
        for server in servers:
            shut_down(server)
        app.extensions["feedsvc"].db.dispose()


@pytest.fixture
def site(start_site: Callable[..., Site]) -> Site:
    return start_site()


def warm(site: Site) -> dict[str, str]:
    """Both workers cache the feed; returns its validators (for conditional polls)."""
    for fmt in ("rss", "atom"):
        assert all(status == 200 for status, _ in polls(site.feed_url(fmt)))
    status, headers, _ = get(site.feed_url())
    assert status == 200
    old = {"If-None-Match": headers["ETag"]}
    assert {status for status, _ in polls(site.feed_url(), old)} == {304}
    return old


def assert_everyone_sees(site: Site, title: str, old: dict[str, str]) -> None:
    for fmt in ("rss", "atom"):
        answers = polls(site.feed_url(fmt))
        assert all(status == 200 and title in body for status, body in answers), fmt
    conditional = polls(site.feed_url(), old)
    assert all(status == 200 and title in body for status, body in conditional)
    gzip_polls = polls(site.feed_url(), {"Accept-Encoding": "gzip"})
    assert all(status == 200 and title in body for status, body in gzip_polls)


def test_an_api_write_is_on_the_next_poll_of_every_worker(site: Site) -> None:
    old = warm(site)
    body = json.dumps(
        {"title": "新文：API 写入", "category": CATEGORY, "content": "定投要有纪律。"}
    ).encode()
    request = urllib.request.Request(
        f"{site.base}/api/v1/posts",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 201
    assert_everyone_sees(site, "新文：API 写入", old)
    # Unchanged since: the new validators get 304 from every worker again.
    _, headers, _ = get(site.feed_url())
    assert {s for s, _ in polls(site.feed_url(), {"If-None-Match": headers["ETag"]})} == {304}


def test_a_cli_write_is_on_the_next_poll_of_every_worker(site: Site) -> None:
    old = warm(site)
    done = subprocess.run(
        [*CLI, "post", "add", "--title", "新文：命令行写入", "--category", CATEGORY],
        input="每月结余先存一半。".encode(),
        env=site.env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert_everyone_sees(site, "新文：命令行写入", old)


def test_a_job_write_is_on_the_next_poll_of_every_worker(
    start_site: Callable[..., Site], httpserver: HTTPServer
) -> None:
    upstream = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>合作博客</title><link>http://partner.test/</link><description>d</description>"
        '<item><guid isPermaLink="false">u1</guid><title>新文：任务导入</title>'
        "<link>http://partner.test/u1</link><pubDate>Mon, 02 Mar 2026 09:00:00 +0800</pubDate>"
        "<description><![CDATA[<p>债券基金的久期。</p>]]></description></item>"
        "</channel></rss>"
    ).encode()
    release = threading.Event()

    def upstream_feed(request: Request) -> Response:
        # The scheduler's first poll waits here until both workers have cached the feed.
        release.wait(25)
        return Response(upstream, content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(upstream_feed)

    def add_source(factory: Factory) -> None:
        data = SourceCreate(url=httpserver.url_for("/feed"), category=CATEGORY, mode="posts")
        source_service.create_source(factory.ctx, data)

    site = start_site(add_source)
    old = warm(site)
    assert not site.stored("新文：任务导入")
    release.set()
    # The scheduler process imports it; the moment its transaction is committed, every
    # worker must serve it.
    wait_for(lambda: site.stored("新文：任务导入"), 30, "the source job to import the entry")
    assert_everyone_sees(site, "新文：任务导入", old)


# -- in process: what a warm poll costs the database, and what makes it read again ----------


@pytest.fixture
def statements(app: Any) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs (the SQLite data_version probe is not one:
    it runs on its own connection, outside the engine)."""
    seen: list[str] = []
    engine = app.extensions["feedsvc"].db.engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_warm_poll_reads_nothing_on_sqlite(
    backend: str, client: Any, factory: Factory, statements: list[str]
) -> None:
    """SQLite: nothing at all. PostgreSQL: nothing through the engine either: its one read
    per poll is a prepared statement on the thread's own connection (Database.hot_row),
    whose freshness the other tests here prove."""
    factory.post(CATEGORY, title="旧文：先存后花")
    assert client.get(f"/feeds/{CATEGORY}.rss").status_code == 200
    assert client.get(f"/feeds/{CATEGORY}.atom").status_code == 200
    statements.clear()
    for _ in range(5):
        assert client.get(f"/feeds/{CATEGORY}.rss").status_code == 200
        assert client.head(f"/feeds/{CATEGORY}.atom").status_code == 200
    assert statements == []


def test_a_write_by_another_connection_is_seen_at_once(
    client: Any, factory: Factory, settings: Any, statements: list[str]
) -> None:
    """Another process stands here as a second app (its own engine) on the same database."""
    factory.post(CATEGORY, title="旧文：先存后花")
    before = client.get(f"/feeds/{CATEGORY}.rss")
    other = create_app(settings=settings)
    try:
        Factory(other.extensions["feedsvc"]).post(CATEGORY, title="新文：另一个进程写入")
    finally:
        other.extensions["feedsvc"].db.dispose()
    after = client.get(f"/feeds/{CATEGORY}.rss", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and "新文：另一个进程写入" in after.get_data(as_text=True)
    assert statements  # the version was read again


def test_the_change_token_follows_commits_and_the_file(tmp_path: Path) -> None:
    from feedsvc.db import Database

    path = tmp_path / "feedsvc.db"
    db, writer = Database(f"sqlite:///{path}"), Database(f"sqlite:///{path}")
    try:
        with writer.engine.begin() as connection:
            connection.execute(text("CREATE TABLE notes (body TEXT)"))
        first = db.change_token()
        assert first is not None and db.change_token() == first  # nothing committed
        with writer.engine.begin() as connection:
            connection.execute(text("INSERT INTO notes VALUES ('记账')"))
        assert db.change_token() != first
        with db.engine.begin() as connection:  # this database's own pool counts too
            connection.execute(text("INSERT INTO notes VALUES ('预算')"))
        second = db.change_token()
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO notes VALUES ('储蓄')"))
        assert db.change_token() != second
        writer.dispose()
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            name.unlink(missing_ok=True)
        assert db.change_token() is None  # no file: callers read (and report) every time
        assert not path.exists()  # the probe never creates one
    finally:
        db.dispose()
        writer.dispose()
    assert Database("postgresql+psycopg://u@127.0.0.1:1/x").change_token() is None
