"""A real `feedsvc serve`: an answer given before the request's body was read closes the
connection, so the unread body is never taken for the next request; an answer to a request
whose body was read keeps it alive (feedsvc/request_body.py, feedsvc/server.py)."""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from feedsvc import create_app
from feedsvc.config import load_settings
from feedsvc.request_body import closing_after_unread_body
from tests.factories import Factory
from tests.processes import config_env, feedsvc, free_port, wait_for
from tests.test_feeds_fresh import healthy, shut_down

Send = Callable[[http.client.HTTPConnection, str], None]
Read = Callable[[io.BytesIO], object]


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """The port of a `feedsvc serve` with one worker, and an API token."""
    env = config_env(tmp_path, db_url, scheduler={"enabled": False})
    token = Factory(create_app(settings=load_settings(environ=env)).extensions["feedsvc"]).token()
    port = free_port()
    args = ["serve", "--port", str(port), "--workers", "1", "--no-scheduler"]
    server = feedsvc(args, env, tmp_path / "log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: server.poll() is not None or healthy(base), 60, "/healthz")
        assert server.poll() is None, (tmp_path / "log").read_text()
        yield port, token
    finally:
        shut_down(server)


def _too_large(connection: http.client.HTTPConnection, token: str) -> None:
    body = json.dumps({"title": "太长", "category": "licai-fangfa", "content": "长" * 500_000})
    connection.request(
        "POST",
        "/api/v1/posts",
        body=body.encode(),  # 1.5 MB, over http.max_request_bytes (1 MiB)
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )


def _signed_out_form(connection: http.client.HTTPConnection, token: str) -> None:
    connection.request(
        "POST",
        "/admin/posts",
        body=b"title=" + b"x" * 1_500_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def _chunked(connection: http.client.HTTPConnection, token: str) -> None:
    connection.request(
        "POST", "/feeds/all.rss", body=iter([b"x" * 100_000] * 12), encode_chunked=True
    )


def _with_length(connection: http.client.HTTPConnection, token: str) -> None:
    connection.request("POST", "/feeds/all.rss", body=b"x" * 1_200_000)


@pytest.mark.parametrize(
    ("send", "status"),
    [(_too_large, 413), (_signed_out_form, 302), (_chunked, 405), (_with_length, 405)],
    ids=["413-too-large", "302-sign-in", "405-chunked", "405-content-length"],
)
def test_an_unread_body_closes_the_connection(
    served: tuple[int, str], send: Send, status: int
) -> None:
    port, token = served
    for _ in range(5):  # the lost request it guards against came about half the time
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        send(connection, token)
        first = connection.getresponse()
        first.read()
        assert first.status == status
        assert first.getheader("Connection") == "close"
        # http.client sees the close and opens a fresh connection for the next request.
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        assert (second.status, json.loads(second.read())["status"]) == (200, "ok")
        connection.close()


def test_a_read_body_keeps_the_connection_alive(served: tuple[int, str]) -> None:
    port, token = served
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.connect()
    opened = connection.sock
    for _ in range(3):
        connection.request(
            "POST",
            "/api/v1/posts",
            body=json.dumps({"title": "没有分类", "content": "正文" * 10_000}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        refused = connection.getresponse()
        assert refused.status in (400, 422), refused.read()
        assert json.loads(refused.read())["error"]["fields"]
        assert refused.getheader("Connection") == "keep-alive"
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        assert answer.status == 200, answer.read()
        answer.read()
    assert connection.sock is opened  # one connection all along
    connection.close()


class _GunicornResponse:
    """What closing_after_unread_body needs of gunicorn's Response."""

    def __init__(self) -> None:
        self.closes = False

    def force_close(self) -> None:
        self.closes = True

    def start_response(self, status: str, headers: object, exc_info: object = None) -> None:
        self.status = status


def _answer(environ: dict[str, object], read: Read) -> bool:
    """Whether the connection closes when the app reads the body with ``read``."""

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        read(environ["wsgi.input"])  # type: ignore[arg-type]
        start_response("400 Bad Request", [])
        return [b""]

    response = _GunicornResponse()
    closing_after_unread_body(app)(environ, response.start_response)  # type: ignore[arg-type]
    return response.closes


@pytest.mark.parametrize(
    ("read", "with_length", "chunked"),
    [
        (lambda body: None, True, True),
        (lambda body: body.read(10), True, True),
        (lambda body: body.read(), False, False),
        # Exactly the declared length: read. Of a chunked body, its end is not seen yet.
        (lambda body: body.read(12), False, True),
        (lambda body: body.read(100), False, False),  # a short read: the end
        (lambda body: list(body), False, False),
        (lambda body: body.readline(), True, True),
    ],
    ids=["unread", "part", "read()", "read(length)", "short-read", "lines", "one-line"],
)
def test_what_counts_as_read(read: Read, with_length: bool, chunked: bool) -> None:
    body = b"a=1\nb=2\nc=34"  # 12 bytes
    assert _answer({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": "12"}, read) is with_length
    framing = {"HTTP_TRANSFER_ENCODING": "chunked"}
    assert _answer({"wsgi.input": io.BytesIO(body), **framing}, read) is chunked


def test_no_body_never_closes() -> None:
    assert (
        _answer({"wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": ""}, lambda body: None) is False
    )
    assert _answer({"wsgi.input": io.BytesIO(b"")}, lambda body: None) is False


def test_a_long_request_line_reaches_the_app(served: tuple[int, str]) -> None:
    port, _ = served
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    # 5,000 characters of path and a search of 800 Chinese characters (7,200 bytes escaped):
    # past gunicorn's default limit (4094), under the one feedsvc serve sets (8190).
    for target in ["/admin/" + "x" * 5_000, "/admin/posts?q=" + quote("长" * 800)]:
        connection.request("GET", target)
        answer = connection.getresponse()
        page = answer.read().decode()
        assert answer.status in (302, 404), page  # the app's answer: signed out, or no page
        assert "Request Line is too large" not in page
    connection.request("GET", "/admin/" + "x" * 8_200)
    too_long = connection.getresponse()
    assert too_long.status == 414  # gunicorn's own answer, before any app sees it
    connection.close()
