"""Writes run on the process's write thread, one at a time, at a lower priority (web/writes.py).

A probe route added to the test app reports where it ran; the API's own writes go the same
way (the last tests). The real server's figures are bench/writes.py's (b).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify

from feedsvc import create_app
from feedsvc.config import ConfigError, load_settings
from feedsvc.web import writes
from tests.conftest import overrides_for

LINUX = sys.platform.startswith("linux")


def _where() -> dict[str, Any]:
    thread = threading.current_thread()
    nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if LINUX else None
    return {"thread": thread.name, "nice": nice}


def _probe_app(db_url: str, clock: Any, **http: int) -> Flask:
    settings = load_settings(overrides_for(db_url, http=http), environ={})
    app: Flask = create_app(settings=settings, clock=clock)
    app.config["TESTING"] = True
    running = {"now": 0, "most": 0, "order": []}
    lock = threading.Lock()

    @app.route("/probe", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def probe() -> Any:
        from flask import request

        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        time.sleep(float(request.args.get("sleep", "0")))
        with lock:
            running["now"] -= 1
            running["order"].append(request.args.get("n"))
        return jsonify(_where())

    @app.post("/broken")
    def broken() -> Any:
        raise RuntimeError("the view failed")

    app.extensions["probe"] = running
    return app


@pytest.fixture
def probe_app(db_url: str, clock: Any):  # type: ignore[no-untyped-def]
    app = _probe_app(db_url, clock)
    yield app
    app.extensions["feedsvc"].db.dispose()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_write_runs_on_a_write_thread_at_a_lower_priority(probe_app: Flask, method: str) -> None:
    response = probe_app.test_client().open("/probe", method=method)
    assert response.status_code == 200
    seen = response.get_json()
    assert seen["thread"].startswith(writes.THREAD_NAME)
    if LINUX:
        base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert seen["nice"] == min(19, base + 10)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_a_read_runs_on_the_request_thread(probe_app: Flask, method: str) -> None:
    response = probe_app.test_client().open("/probe", method=method)
    assert response.status_code == 200
    if method == "GET":
        assert response.get_json()["thread"] == threading.current_thread().name


def test_writes_run_one_at_a_time_in_arrival_order(probe_app: Flask) -> None:
    client = probe_app.test_client()
    answers: list[int] = []

    def write(n: int) -> None:
        answers.append(client.post(f"/probe?sleep=0.05&n={n}").status_code)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # in this order
    for thread in threads:
        thread.join()
    assert answers == [200] * 6
    assert probe_app.extensions["probe"]["most"] == 1
    assert probe_app.extensions["probe"]["order"] == [str(n) for n in range(6)]


def test_reads_do_not_wait_for_the_write_queue(probe_app: Flask) -> None:
    client = probe_app.test_client()
    slow = threading.Thread(target=lambda: client.post("/probe?sleep=1"))
    slow.start()
    time.sleep(0.1)
    started = time.perf_counter()
    assert client.get("/probe").status_code == 200
    assert time.perf_counter() - started < 0.5  # the write still holds the write thread
    slow.join()


def test_without_write_threads_a_write_runs_on_the_request_thread(db_url: str, clock: Any) -> None:
    app = _probe_app(db_url, clock, write_threads=0)
    try:
        seen = app.test_client().post("/probe").get_json()
        assert seen["thread"] == threading.current_thread().name
        assert not isinstance(app.wsgi_app, writes.WriteQueue)
    finally:
        app.extensions["feedsvc"].db.dispose()


def test_more_write_threads_run_writes_side_by_side(db_url: str, clock: Any) -> None:
    app = _probe_app(db_url, clock, write_threads=3, write_nice=0)
    try:
        client = app.test_client()
        threads = [
            threading.Thread(target=lambda: client.post("/probe?sleep=0.2")) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert app.extensions["probe"]["most"] == 3
        if LINUX:  # nice 0: the process's own priority
            seen = client.post("/probe").get_json()
            assert seen["nice"] == os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    finally:
        app.extensions["feedsvc"].db.dispose()


def test_an_error_in_a_write_is_answered_as_before(probe_app: Flask) -> None:
    response = probe_app.test_client().post("/broken")
    assert response.status_code == 500  # web/errors.py's answer, logged
    assert probe_app.test_client().post("/probe").status_code == 200  # the thread lives on


def test_api_writes_answer_as_before_through_the_queue(
    client: Any, auth: dict[str, str], app: Flask
) -> None:
    assert isinstance(app.wsgi_app, writes.WriteQueue)
    created = client.post(
        "/api/v1/categories", json={"slug": "licai-fangfa", "name": "理财方法"}, headers=auth
    )
    assert created.status_code == 201
    bad = client.post("/api/v1/posts", data=b"{\x00", headers=auth | {"Content-Type": "x"})
    assert bad.status_code == 415 and bad.get_json()["error"]["message"]
    post = client.post(
        "/api/v1/posts",
        json={"title": "月度预算表", "category": "licai-fangfa", "content": "先记账。"},
        headers=auth,
    )
    assert post.status_code == 201
    assert client.get(f"/api/v1/posts/{post.get_json()['id']}", headers=auth).status_code == 200
    assert "月度预算表" in client.get("/feeds/licai-fangfa.rss").get_data(as_text=True)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[http]\nwrite_threads = -1\n", "http.write_threads"),
        ("[http]\nwrite_threads = 65\n", "http.write_threads"),
        ('[http]\nwrite_threads = "one"\n', "http.write_threads"),
        ("[http]\nwrite_threads = 1.5\n", "http.write_threads"),
        ("[http]\nwrite_nice = 20\n", "http.write_nice"),
        ("[http]\nwrite_nice = -5\n", "http.write_nice"),
        ('[http]\nwrite_nice = "ten"\n', "http.write_nice"),
    ],
)
def test_bad_write_queue_settings_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "feedsvc.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"FEEDSVC_CONFIG": str(tmp_path / "feedsvc.toml")})
    assert key in str(info.value) and "\n" not in str(info.value)


@pytest.mark.skipif(not LINUX, reason="per-thread priority is Linux's")
def test_lower_priority_caps_at_19() -> None:
    seen: list[int | None] = []
    thread = threading.Thread(target=lambda: seen.append(writes.lower_priority(50)))
    thread.start()
    thread.join()
    assert seen == [19]
    assert writes.lower_priority(0) is None  # nothing asked: the thread keeps its priority
