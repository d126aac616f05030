"""The nginx front (deploy/nginx.conf, rendered by bench/front.py) before a real `feedsvc serve`.

Debian's nginx runs the shipped config with this test's ports and folders: feeds are cached
and revalidated, clients' conditional requests get 304 from nginx, gzip and identity bodies
never mix, the API is never cached, and a feed write is served within the documented bound.
Skipped only when no nginx binary can be found (`make test` installs nginx-light).
"""

from __future__ import annotations

import gzip
import http.client
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from werkzeug.http import http_date, parse_date

from bench.front import nginx_binary, render_config, start_nginx
from bench.site import stop as stop_gracefully
from feedsvc import create_app
from feedsvc.config import load_settings
from tests.factories import Factory
from tests.processes import config_env, feedsvc, free_port, wait_for

pytestmark = [
    pytest.mark.usefixtures("backend"),
    pytest.mark.skipif(
        nginx_binary() is None, reason="nginx not found (apt-get install nginx-light)"
    ),
]

CATEGORY = "jijin"
FEED = f"/feeds/{CATEGORY}.rss"
# deploy/nginx.conf's bound: 2 s (1 s validity, counted by nginx in whole seconds) plus the
# one revalidation that fetches the new bytes (a feed render: 20-200 ms measured here), with
# up to a second for that render on a loaded test machine.
BOUND_SECONDS = 3.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        raw = (
            gzip.decompress(self.body)
            if self.headers.get("Content-Encoding") == "gzip"
            else self.body
        )
        return raw.decode()


def call(
    url: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    data: bytes | None = None,
) -> Answer:
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return Answer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers.items()), error.read())


@dataclass
class Front:
    base: str  # nginx
    upstream: str  # gunicorn, directly
    token: str
    serve_log: Path
    server: subprocess.Popen[bytes]  # `feedsvc serve`

    def post(self, title: str) -> Answer:
        body = {"title": title, "category": CATEGORY, "content": "定投要有纪律，也要有耐心。"}
        return call(
            f"{self.base}/api/v1/posts",
            {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="POST",
            data=json.dumps(body).encode(),
        )


def _listening(url: str) -> bool:
    try:
        return call(url).status == 200
    except OSError:
        return False


@pytest.fixture
def front(db_url: str, tmp_path: Path) -> Iterator[Front]:
    env = config_env(tmp_path, db_url, scheduler={"enabled": False})
    settings = load_settings(environ={"FEEDSVC_CONFIG": env["FEEDSVC_CONFIG"]})
    app = create_app(settings=settings)  # the real clock: the server's
    factory = Factory(app.extensions["feedsvc"])
    factory.post(CATEGORY, title="旧文：先存后花")
    token = factory.token()
    app_port, front_port = free_port(), free_port()
    command = ["serve", "--host", "127.0.0.1", "--port", str(app_port), "--workers", "2"]
    server = feedsvc([*command, "--forwarded-allow-ips", "127.0.0.1"], env, tmp_path / "serve.log")
    nginx = None
    try:
        upstream = f"http://127.0.0.1:{app_port}"
        wait_for(
            lambda: server.poll() is not None or _listening(f"{upstream}/healthz"), 60, "serve"
        )
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        folder = tmp_path / "nginx"
        folder.mkdir()
        config = render_config(folder, listen_port=front_port, upstream=f"127.0.0.1:{app_port}")
        nginx = start_nginx(config, front_port)
        yield Front(
            f"http://127.0.0.1:{front_port}", upstream, token, tmp_path / "serve.log", server
        )
    finally:
        # SIGTERM: nginx's master stops its workers (after a SIGKILL they would serve on).
        stop_gracefully(nginx)
        stop_gracefully(server)
        app.extensions["feedsvc"].db.dispose()


def test_feeds_are_cached_and_clients_get_304_from_nginx(front: Front) -> None:
    direct = call(f"{front.upstream}{FEED}")
    first = call(f"{front.base}{FEED}")
    assert first.status == 200 and first.body == direct.body
    assert "旧文：先存后花" in first.text
    assert first.headers["ETag"] == direct.headers["ETag"]
    assert first.headers["Vary"] == "Accept-Encoding"
    second = call(f"{front.base}{FEED}")
    assert second.headers["X-Cache-Status"] == "HIT" and second.body == direct.body
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    later = http_date(parse_date(last_modified) + timedelta(days=1))
    for validators in (
        {"If-None-Match": etag},
        {"If-Modified-Since": last_modified},
        {"If-Modified-Since": later},
    ):
        answer = call(f"{front.base}{FEED}", validators)
        assert answer.status == 304, validators
        assert answer.headers["X-Cache-Status"] in ("HIT", "REVALIDATED", "UPDATING")
        assert answer.body == b""
    changed = call(f"{front.base}{FEED}", {"If-None-Match": '"some-other-version"'})
    assert changed.status == 200 and changed.body == direct.body
    head = call(f"{front.base}{FEED}", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(direct.body))


def test_gzip_and_identity_bodies_never_mix(front: Front) -> None:
    identity = call(f"{front.base}{FEED}")
    assert "Content-Encoding" not in identity.headers
    xml = identity.body
    assert xml.startswith(b"<?xml")
    for spelling in ("gzip, deflate, br", "gzip", "deflate, gzip;q=0.8"):
        answer = call(f"{front.base}{FEED}", {"Accept-Encoding": spelling})
        assert answer.headers.get("Content-Encoding") == "gzip", spelling
        assert gzip.decompress(answer.body) == xml
        assert answer.headers["ETag"] != identity.headers["ETag"]  # another coding, another tag
    for spelling in ("gzip;q=0", "identity", "deflate, br", ""):
        answer = call(f"{front.base}{FEED}", {"Accept-Encoding": spelling})
        assert "Content-Encoding" not in answer.headers, spelling
        assert answer.body == xml
    gzipped = call(f"{front.base}{FEED}", {"Accept-Encoding": "gzip"})
    again = call(
        f"{front.base}{FEED}", {"Accept-Encoding": "gzip", "If-None-Match": gzipped.headers["ETag"]}
    )
    assert again.status == 304 and again.headers["ETag"] == gzipped.headers["ETag"]


def test_the_api_is_never_cached(front: Front) -> None:
    listing = f"{front.base}/api/v1/posts?category={CATEGORY}"
    before = call(listing)
    assert before.status == 200 and "X-Cache-Status" not in before.headers
    created = front.post("新文：API 不经缓存")
    assert created.status == 201
    post_id = json.loads(created.body)["id"]
    # At once, through the front: the write is there.
    assert "新文：API 不经缓存" in call(listing).body.decode()
    shown = call(f"{front.base}/api/v1/posts/{post_id}")
    assert shown.status == 200 and json.loads(shown.body)["title"] == "新文：API 不经缓存"
    removed = call(
        f"{front.base}/api/v1/posts/{post_id}",
        {"Authorization": f"Bearer {front.token}"},
        method="DELETE",
    )
    assert removed.status == 204
    assert call(f"{front.base}/api/v1/posts/{post_id}").status == 404


@pytest.mark.parametrize("coding", ["identity", "gzip"])
def test_a_feed_write_is_served_within_the_bound(front: Front, coding: str) -> None:
    headers = {"Accept-Encoding": coding}
    for _ in range(3):
        call(f"{front.base}{FEED}", headers)
    assert call(f"{front.base}{FEED}", headers).headers["X-Cache-Status"] == "HIT"
    assert front.post("新文：新鲜度").status == 201
    written = time.monotonic()
    while "新文：新鲜度" not in call(f"{front.base}{FEED}", headers).text:
        assert time.monotonic() - written < BOUND_SECONDS, "the front served stale bytes too long"
        time.sleep(0.02)
    # Once served, never the old bytes again: each nginx worker keeps cache files open
    # (open_file_cache) and must reopen an entry whose file was replaced.
    for _ in range(40):
        assert "新文：新鲜度" in call(f"{front.base}{FEED}", headers).text


# Linux routes all of 127.0.0.0/8 to loopback: a client on 127.0.0.2 is not the front.
CLIENT = "127.0.0.2"


def call_from(address: str, url: str, headers: dict[str, str]) -> int:
    """A GET from the local ``address`` (http.client: urllib cannot choose the source)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=20, source_address=(address, 0)
    )
    try:
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_serve_logs_the_client_address_the_front_passed(front: Front) -> None:
    # `feedsvc serve --forwarded-allow-ips 127.0.0.1` trusts the front's X-Forwarded-For: its
    # access lines name the reader, not nginx, for the API and for a feed (a first request:
    # a cache miss, which reaches gunicorn), even when the reader claims another address.
    api = f"/api/v1/posts?category={CATEGORY}"
    assert call_from(CLIENT, f"{front.base}{api}", {}) == 200
    assert call_from(CLIENT, f"{front.base}{FEED}", {"X-Forwarded-For": "203.0.113.7"}) == 200
    stop_gracefully(front.server)  # its access lines are all written once it has exited
    lines = front.serve_log.read_text(encoding="utf-8", errors="replace").splitlines()
    for path in (api, FEED):
        (line,) = [line for line in lines if "gunicorn.access" in line and f"GET {path} " in line]
        assert f" gunicorn.access: {CLIENT} " in line, line


class _Recorder(BaseHTTPRequestHandler):
    """An upstream that answers 200 and keeps the headers of each request it got."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers.items()))
        body = b"recorded"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("path", ["/api/v1/posts", "/admin/", "/about", FEED])
def test_the_front_tells_the_upstream_who_asked_and_how(tmp_path: Path, path: str) -> None:
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    port = free_port()
    folder = tmp_path / "nginx"
    folder.mkdir()
    config = render_config(
        folder, listen_port=port, upstream=f"127.0.0.1:{recorder.server_address[1]}"
    )
    # start_nginx knows nginx is up when the recorder answered its "/": forgotten below.
    nginx = start_nginx(config, port)
    try:
        _Recorder.seen.clear()
        sent = {"Host": "feeds.example.cn", "X-Forwarded-For": "203.0.113.7"}
        assert call_from(CLIENT, f"http://127.0.0.1:{port}{path}", sent) == 200
    finally:
        stop_gracefully(nginx)
        recorder.shutdown()
        recorder.server_close()
    [got] = _Recorder.seen
    # The address the front saw is appended to what the client claimed (feedsvc's access log
    # picks the last hop that is not a trusted front); scheme and host are the client's.
    assert got["X-Forwarded-For"] == f"203.0.113.7, {CLIENT}"
    assert got["X-Forwarded-Proto"] == "http"
    assert got["X-Forwarded-Host"] == "feeds.example.cn"
    assert got["Host"] == "feeds.example.cn"
