"""Fixtures of the browser tests: one Chromium for the session (build/e2e/ emptied when it
starts) and a loopback upstream feed (tests/e2e/browser.py has the rest)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.browser import SHOTS, chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    with chromium() as driver:
        yield driver


UPSTREAM_ITEMS = (
    (
        "上游：如何为孩子准备教育金",
        "upstream-jiaoyujin",
        "教育金要早做打算，定投指数基金是常见的办法。",
    ),
    (
        "上游：个人养老金账户怎么开",
        "upstream-yanglaojin",
        "个人养老金账户每年可存一万二千元，享受税收优惠。",
    ),
)
UPSTREAM_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>上游理财周刊</title><link>{base}/</link><description>测试用的上游订阅</description>
<language>zh-CN</language>
{items}
</channel></rss>
"""
UPSTREAM_ITEM = """<item><title>{title}</title><link>{base}/{slug}</link>
<guid isPermaLink="false">{slug}</guid><pubDate>{date}</pubDate>
<description>{text}</description></item>"""


@dataclass
class Upstream:
    """An upstream RSS feed on 127.0.0.1 (``url``) with the two Chinese ``items`` (title,
    slug, text); ``requests`` records each path asked for, in order."""

    url: str
    items: tuple[tuple[str, str, str], ...] = UPSTREAM_ITEMS
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def upstream_feed() -> Iterator[Upstream]:
    """For a source step: a tiny HTTP server in a thread answering /feed.xml (200, RSS 2.0)
    and 404 to anything else, until the module ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    upstream = Upstream(f"{base}/feed.xml")
    dates = ("Sat, 28 Nov 2026 02:00:00 GMT", "Sun, 29 Nov 2026 02:00:00 GMT")
    body = UPSTREAM_RSS.format(
        base=base,
        items="\n".join(
            UPSTREAM_ITEM.format(base=base, title=title, slug=slug, text=text, date=date)
            for (title, slug, text), date in zip(UPSTREAM_ITEMS, dates, strict=True)
        ),
    ).encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            upstream.requests.append(self.path)
            found = self.path.split("?")[0] == "/feed.xml"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: pytest shows what failed

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
