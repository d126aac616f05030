"""PostgreSQL: no ping per checkout, and a lost connection is still survived.

Issue 9: ``pool_pre_ping`` cost a round trip (a transaction) per checkout, doubling the
transactions of a warm feed request. The pool now notices a connection the server hung up on
from its socket, at no round-trip cost (feedsvc/db.py, ``_notice_dropped_connections``).
These tests terminate the server side of every connection with ``pg_terminate_backend``, as a
restart or a failover does, while a real HTTP server answers readers.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from feedsvc import create_app
from feedsvc.config import load_settings
from tests.dbfaults import admin_engine
from tests.factories import Factory
from tests.processes import children, config_env, feedsvc, free_port, kill_all, wait_for

# Waits (up to 5 s) until each terminated backend is gone, as after a restart.
_TERMINATE = (
    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
    " WHERE datname = :d AND pid <> pg_backend_pid()"
)


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("server-side connection termination is PostgreSQL's")


def terminate_all(db_url: str) -> int:
    admin = admin_engine(db_url)
    try:
        with admin.connect() as connection:
            return len(connection.execute(text(_TERMINATE), {"d": make_url(db_url).database}).all())
    finally:
        admin.dispose()


def test_a_pooled_read_sends_no_ping(
    postgres_only: None, ctx: Any, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory.post()
    pings: list[object] = []
    monkeypatch.setattr(ctx.db.engine.dialect, "do_ping", lambda conn: pings.append(conn) or True)
    for _ in range(3):
        with ctx.db.read() as session:
            assert session.execute(text("SELECT count(*) FROM posts")).scalar() == 1
    assert pings == []


def test_idle_connections_terminated_are_replaced_unseen(
    postgres_only: None, db_url: str, ctx: Any, client: Any, factory: Factory
) -> None:
    post = factory.post()
    paths = ["/api/v1/posts?limit=5", f"/posts/{post.slug}", f"/api/v1/posts/{post.id}"]
    # Several pooled connections at once, all idle in the pool afterwards.
    sessions = [ctx.db.read() for _ in range(4)]
    for opened in sessions:
        opened.__enter__().execute(text("SELECT 1"))
    for opened in sessions:
        opened.__exit__(None, None, None)
    for _ in range(3):
        assert terminate_all(db_url) >= 1
        for path in paths * 3:
            response = client.get(path)
            assert response.status_code == 200, (path, response.get_data(as_text=True))


def test_readers_see_no_errors_while_backends_are_terminated(
    postgres_only: None, db_url: str, tmp_path: Path
) -> None:
    """Four readers poll a real `feedsvc serve`; every backend is terminated five times meanwhile.

    Only requests in flight at a termination may fail (with a 503, never a 500); every other
    request succeeds, and after the last termination all of them do.
    """
    env = config_env(tmp_path, db_url, scheduler={"enabled": False})
    app = create_app(settings=load_settings(environ={"FEEDSVC_CONFIG": env["FEEDSVC_CONFIG"]}))
    factory = Factory(app.extensions["feedsvc"])
    posts = [factory.post() for _ in range(3)]
    app.extensions["feedsvc"].db.dispose()
    paths = ["/api/v1/posts?limit=5"] + [f"/posts/{p.slug}" for p in posts]
    paths += [f"/feeds/licai-fangfa.rss?limit={n}" for n in (1, 2, 3)] + ["/feeds/all.atom"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    server = feedsvc(command, env, tmp_path / "serve.log")
    statuses: Counter[int] = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def read() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                with urllib.request.urlopen(base + paths[n % len(paths)], timeout=10) as answer:
                    status = answer.status
            except urllib.error.HTTPError as error:
                status = error.code
            with lock:
                statuses[status] += 1

    readers = [threading.Thread(target=read) for _ in range(4)]
    try:
        wait_for(lambda: server.poll() is not None or _serving(base), 60, "feedsvc serve")
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        for reader in readers:
            reader.start()
        time.sleep(1.0)
        terminated = 0
        for _ in range(5):
            terminated += terminate_all(db_url)
            time.sleep(0.5)
        with lock:
            before_end = sum(statuses.values())
            errors_before_end = statuses[503]
        time.sleep(1.0)
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=15)
        workers = children(server.pid)
        server.terminate()  # gunicorn stops its workers on SIGTERM
        try:
            server.wait(timeout=20)
        finally:
            kill_all([server.pid, *workers])
    log = (tmp_path / "serve.log").read_text()
    assert terminated >= 5
    assert set(statuses) <= {200, 503}, (statuses, log[-3000:])
    # At most the requests in flight at each termination: one per reader.
    assert statuses[503] <= 5 * len(readers), statuses
    assert statuses[503] == errors_before_end, statuses  # none once the terminations stopped
    assert sum(statuses.values()) > before_end + 10  # readers went on after the last one
    assert statuses[200] > 50, statuses


def _serving(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _dropped_once(real: Any) -> Any:
    """``real``, except that its first call fails as a connection the server dropped."""
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise DBAPIError(
                "SELECT 1",
                {},
                Exception("server closed the connection"),
                connection_invalidated=True,
            )
        return real(*args, **kwargs)

    return flaky


def test_a_read_that_meets_a_dropped_connection_is_answered_again(
    client: Any, factory: Factory, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.repo import posts as post_repo

    post = factory.post()
    monkeypatch.setattr(post_repo, "get_post_by_slug", _dropped_once(post_repo.get_post_by_slug))
    page = client.get(f"/posts/{post.slug}")
    assert page.status_code == 200
    assert post.title in page.get_data(as_text=True)


def test_a_write_that_meets_a_dropped_connection_is_not_repeated(
    client: Any, factory: Factory, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.services import posts as post_service

    factory.post()
    before = factory.counts()
    monkeypatch.setattr(post_service, "create_post", _dropped_once(post_service.create_post))
    body = {"title": "断线时写的一篇", "category": "licai-fangfa", "content": "正文。"}
    response = client.post("/api/v1/posts", json=body, headers=auth)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert factory.counts() == before
