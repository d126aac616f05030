"""Writes answered by a child process of the web worker (web/writes.py, write_isolation).

The API's own writes go through a real child process, on both backends: what it answers,
what it refuses, at which priority it runs, and what happens when it dies or cannot start.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
from flask import Flask

from feedsvc import create_app
from feedsvc.config import ConfigError, load_settings
from feedsvc.web import writes
from tests.conftest import overrides_for
from tests.factories import Factory

LINUX = sys.platform.startswith("linux")
POST = {"title": "子进程里写的文章", "category": "licai-fangfa", "content": "先记账，再预算。"}


@pytest.fixture
def process_app(db_url: str) -> Iterator[Flask]:
    settings = load_settings(
        overrides_for(db_url, http={"write_isolation": "process", "max_request_bytes": 4096}),
        environ={},
    )
    app: Flask = create_app(settings=settings)
    app.config["TESTING"] = True
    yield app
    queue = app.wsgi_app
    assert isinstance(queue, writes.WriteProcesses)
    queue.close()
    app.extensions["feedsvc"].db.dispose()


@pytest.fixture
def headers(process_app: Flask) -> dict[str, str]:
    token = Factory(process_app.extensions["feedsvc"]).token("tests")
    return {"Authorization": f"Bearer {token}"}


def _queue(app: Flask) -> writes.WriteProcesses:
    queue = app.wsgi_app
    assert isinstance(queue, writes.WriteProcesses)
    return queue


def _category(client: Any, headers: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/categories", json={"slug": "licai-fangfa", "name": "理财方法"}, headers=headers
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def test_a_write_is_answered_by_a_child_process_at_a_lower_priority(
    process_app: Flask, headers: dict[str, str]
) -> None:
    client = process_app.test_client()
    assert _queue(process_app).children() == []  # started by the first write, not before
    _category(client, headers)
    [pid] = _queue(process_app).children()
    assert pid != os.getpid()
    if LINUX:
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + 10
        )
    created = client.post("/api/v1/posts", json=POST, headers=headers)
    assert created.status_code == 201
    assert created.headers["Content-Type"].startswith("application/json")
    assert created.headers["Location"].endswith(f"/api/v1/posts/{created.get_json()['id']}")
    assert _queue(process_app).children() == [pid]  # the same process, one write after another
    # Read here, written there: the feed of this process has the post.
    feed = feedparser.parse(client.get("/feeds/licai-fangfa.rss").data)
    assert [entry.title for entry in feed.entries] == [POST["title"]]
    edited = client.patch(
        f"/api/v1/posts/{created.get_json()['id']}", json={"title": "改过的标题"}, headers=headers
    )
    assert edited.status_code == 200 and edited.get_json()["title"] == "改过的标题"
    deleted = client.delete(f"/api/v1/posts/{created.get_json()['id']}", headers=headers)
    assert deleted.status_code == 204 and deleted.data == b""


@pytest.mark.parametrize(
    ("body", "extra", "status"),
    [
        (b'{"title": "\x00"', {"Content-Type": "application/json"}, 400),
        (b"title=x", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        (b"[" * 1500 + b"]" * 1500, {"Content-Type": "application/json"}, 400),
        (b"x" * 5000, {"Content-Type": "application/json"}, 413),  # over max_request_bytes
    ],
    ids=["nul", "form", "deep", "too-large"],
)
def test_bad_writes_are_refused_by_the_child_as_before(
    process_app: Flask, headers: dict[str, str], body: bytes, extra: dict[str, str], status: int
) -> None:
    client = process_app.test_client()
    response = client.post("/api/v1/posts", data=body, headers=headers | extra)
    assert response.status_code == status
    assert response.get_json()["error"]["message"]
    assert client.get("/api/v1/posts", headers=headers).get_json()["items"] == []
    unauthenticated = client.post("/api/v1/posts", json=POST)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")


# What gunicorn puts in every request's environ, besides the request's own headers.
SERVER_VARIABLES = {
    "wsgi.url_scheme": "http",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "127.0.0.1:8000",
    "SCRIPT_NAME": "",
}


def _as_the_child_answers(app: Flask, variables: dict[str, str], body: bytes) -> Any:
    """What a write process answers to this portable request: its own app (the web worker's
    settings, no write queue) through the function its loop runs."""
    import json

    child_app = create_app(settings=_queue(app)._settings)
    try:
        status, _, data = writes._answer(child_app, variables, body)
    finally:
        child_app.extensions["feedsvc"].db.dispose()
    return int(status.split()[0]), json.loads(data)


def test_a_body_over_the_limit_is_not_read_in_the_web_worker(
    process_app: Flask, headers: dict[str, str]
) -> None:
    class Unreadable:
        def read(self, *_: Any) -> bytes:
            raise AssertionError("the web worker read a body larger than the limit")

    environ = SERVER_VARIABLES | {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/posts",
        "CONTENT_LENGTH": str(10**12),
        "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": headers["Authorization"],
        "wsgi.input": Unreadable(),
    }
    variables, body = _queue(process_app)._portable(environ)
    assert body == b"" and variables["CONTENT_LENGTH"] == str(10**12)
    status, answer = _as_the_child_answers(process_app, variables, body)
    assert status == 413 and answer["error"]["message"]


def test_a_chunked_body_is_read_up_to_the_limit(
    process_app: Flask, headers: dict[str, str]
) -> None:
    environ = SERVER_VARIABLES | {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/posts",
        "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": headers["Authorization"],
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(b"y" * 10_000),
    }
    variables, body = _queue(process_app)._portable(environ)
    assert len(body) == 4097  # max_request_bytes + 1: enough to know it is too large
    assert variables["CONTENT_LENGTH"] == "4097" and "HTTP_TRANSFER_ENCODING" not in variables
    status, answer = _as_the_child_answers(process_app, variables, body)
    assert status == 413 and answer["error"]["message"]
    assert process_app.test_client().get("/api/v1/posts", headers=headers).json["items"] == []


def test_a_dead_child_is_replaced_at_the_next_write(
    process_app: Flask, headers: dict[str, str]
) -> None:
    client = process_app.test_client()
    _category(client, headers)
    [first] = _queue(process_app).children()
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _queue(process_app).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.post("/api/v1/posts", json=POST, headers=headers).status_code == 201
    [second] = _queue(process_app).children()
    assert second != first


def test_a_child_that_dies_during_a_write_answers_503(
    process_app: Flask, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = process_app.test_client()
    _category(client, headers)
    ask = writes._Child.ask

    def dies(child: writes._Child, request: Any) -> Any:
        os.kill(child.pid, signal.SIGKILL)
        child.process.join(10)
        return ask(child, request)

    monkeypatch.setattr(writes._Child, "ask", dies)
    response = client.post("/api/v1/posts", json=POST, headers=headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "write process" in response.get_json()["error"]["message"]
    monkeypatch.undo()
    assert client.post("/api/v1/posts", json=POST, headers=headers).status_code == 201


def test_a_child_that_cannot_start_leaves_the_write_to_the_request_thread(
    process_app: Flask,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuses(*_: Any) -> writes._Child:
        raise OSError("no more processes")

    monkeypatch.setattr(writes._Child, "start", refuses)
    client = process_app.test_client()
    _category(client, headers)
    assert client.post("/api/v1/posts", json=POST, headers=headers).status_code == 201
    assert _queue(process_app).children() == []
    assert "did not start (no more processes)" in caplog.text


def test_feedsvc_serve_isolates_writes_in_processes_unless_told_otherwise(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    auto = load_settings(overrides_for(url), environ={})
    assert auto.http.write_isolation == "auto"
    assert writes.serving(auto).http.write_isolation == "process"
    assert isinstance(create_app(settings=auto).wsgi_app, writes.WriteQueue)  # not serving
    thread = load_settings(overrides_for(url, http={"write_isolation": "thread"}), environ={})
    assert writes.serving(thread).http.write_isolation == "thread"


@pytest.mark.parametrize("value", ['"processes"', "1", '""', '"PROCESS"'])
def test_a_bad_write_isolation_names_the_key(tmp_path: Path, value: str) -> None:
    (tmp_path / "feedsvc.toml").write_text(f"[http]\nwrite_isolation = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"http\.write_isolation"):
        load_settings(environ={"FEEDSVC_CONFIG": str(tmp_path / "feedsvc.toml")})


def _request(base: str, method: str, path: str, body: Any = None, token: str = "") -> Any:
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _children(pid: int) -> list[int]:
    """Every child of ``pid``, whichever of its threads started it (/proc/PID/task/*)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(part) for part in task.read_text().split()]
        except OSError:  # the thread ended
            continue
    return found


def test_feedsvc_serve_writes_in_a_child_of_each_worker_and_stops_them(
    db_url: str, tmp_path: Path
) -> None:
    from tests.processes import alive, cmdline, config_env, feedsvc, free_port, wait_for
    from tests.test_feeds_fresh import healthy, shut_down

    env = config_env(tmp_path, db_url, scheduler={"enabled": False})
    token = Factory(create_app(settings=load_settings(environ=env)).extensions["feedsvc"]).token()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--workers", "2", "--no-scheduler"]
    server = feedsvc(args, env, tmp_path / "serve.log")
    try:
        wait_for(lambda: server.poll() is not None or healthy(base), 60, "/healthz")
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        workers = _children(server.pid)
        category = {"slug": "licai-fangfa", "name": "理财方法"}
        assert _request(base, "POST", "/api/v1/categories", category, token)[0] == 201
        for n in range(6):  # new connections: whichever worker answers starts its child
            post = POST | {"title": f"第{n}篇：子进程写入"}
            assert _request(base, "POST", "/api/v1/posts", post, token)[0] == 201
        status, bad = _request(base, "POST", "/api/v1/posts", {"title": 1}, token)
        assert status == 422 and b'"message"' in bad
        # multiprocessing's resource tracker is a child too; the write processes are spawned.
        spawned = [pid for worker in workers for pid in _children(worker)]
        writers = [pid for pid in spawned if "spawn_main" in cmdline(pid)]
        assert 1 <= len(writers) <= 2
        for pid in writers:
            parent = next(worker for worker in workers if pid in _children(worker))
            expected = min(19, os.getpriority(os.PRIO_PROCESS, parent) + 10)
            assert os.getpriority(os.PRIO_PROCESS, pid) == expected
        status, body = _request(base, "GET", "/feeds/licai-fangfa.rss")
        assert status == 200
        assert len(feedparser.parse(body).entries) == 6
    finally:
        shut_down(server)
    wait_for(lambda: not any(alive(pid) for pid in spawned), 20, "the write processes to end")
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_a_write_process_answers_500_when_the_app_raises_and_ends_with_the_pipe(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json
    import multiprocessing
    import threading

    def broken(environ: dict[str, Any], start_response: Any) -> Any:
        assert environ["wsgi.input"].read() == b'{"title": "x"}'
        raise RuntimeError("a middleware broke")

    ours, theirs = multiprocessing.Pipe()
    loop = threading.Thread(target=writes.answer_requests, args=(broken, theirs))
    loop.start()
    ours.send(({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "14"}, b'{"title": "x"}'))
    status, headers, body = ours.recv()
    assert status.startswith("500 ") and ("Content-Type", "application/json") in headers
    assert json.loads(body)["error"]["message"]
    assert "a middleware broke" in caplog.text
    ours.close()  # the web worker is gone: the loop ends
    loop.join(timeout=10)
    assert not loop.is_alive()
