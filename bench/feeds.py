"""Feed serving benchmark: ratios measured side by side in one run (absolute times are noisy).

On one 20-item category feed (Chinese posts of about 3 KB of HTML each, SQLite):
- cold build: our whole miss path (version lookup, queries, document, feedgen, gzip, ETag)
  vs a bare feedgen build of the same items from data already in memory;
- warm 200 and 304: our feed view vs a Flask route returning constant bytes of the same size.

Run: `make bench` (or `.venv/bin/python bench/feeds.py`).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lxml.etree  # noqa: F401
from feedgen.feed import FeedGenerator
from flask import Flask, Response

from feedsvc import create_app, migrate
from feedsvc.config import load_settings
from feedsvc.feeds.service import get_feed
from feedsvc.schemas import CategoryCreate, PostCreate
from feedsvc.services.categories import create_category
from feedsvc.services.posts import create_post

ITEMS = 20
PARAGRAPH = (
    "定投的核心不是择时，而是用纪律对抗情绪。每月固定日期买入固定金额，"
    "市场下跌时同样的钱买到更多份额，上涨时买到更少，长期下来平均成本被拉平。"
    "需要注意的是，定投并不能保证盈利，选择长期向上的宽基指数更为重要。"
)


def timeit(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bare_feedgen(items: list[dict]) -> bytes:
    fg = FeedGenerator()
    fg.id("tag:bench,2026:feeds/jijin")
    fg.title("基金")
    fg.link(href="http://127.0.0.1:8000/feeds/jijin.rss", rel="self")
    fg.link(href="http://127.0.0.1:8000/categories/jijin", rel="alternate")
    fg.description("基金")
    fg.language("zh-CN")
    for item in items:
        fe = fg.add_entry(order="append")
        fe.id(item["guid"])
        fe.title(item["title"])
        fe.link(href=item["link"])
        fe.pubDate(item["published"])
        fe.summary(item["summary"])
        fe.content(item["content"], type="html")
    return fg.rss_str()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            {"database": {"url": f"sqlite:///{tmp}/bench.db"}, "scheduler": {"enabled": False}},
            environ={},
        )
        app = create_app(settings=settings)
        ctx = app.extensions["feedsvc"]
        cache = app.extensions["feedsvc.feed_cache"]
        migrate.upgrade(ctx.db)
        create_category(ctx, CategoryCreate(slug="jijin", name="基金"))
        start = datetime(2026, 1, 1, tzinfo=UTC)
        body = "\n\n".join(f"## 第{n}节\n\n{PARAGRAPH}" for n in range(1, 8))
        for n in range(ITEMS):
            create_post(
                ctx,
                PostCreate(
                    title=f"定投笔记第{n}篇",
                    category="jijin",
                    content=body,
                    tags=["定投", "指数基金"],
                    published_at=start + timedelta(days=n),
                ),
            )

        feed = get_feed(ctx, cache, "jijin", "rss", None)
        assert feed is not None
        items = [
            {
                "guid": f"tag:bench,2026:post/{n}",
                "title": f"定投笔记第{n}篇",
                "link": f"http://127.0.0.1:8000/posts/{n}",
                "published": start + timedelta(days=n),
                "summary": PARAGRAPH[:120],
                "content": body,
            }
            for n in range(ITEMS)
        ]

        def ours_cold() -> None:
            cache.clear()
            get_feed(ctx, cache, "jijin", "rss", None)

        cold_ours = timeit(ours_cold, 50)
        cold_bare = timeit(lambda: bare_feedgen(items), 50)

        client = app.test_client()
        constant = Flask("constant")
        payload = feed.body

        @constant.get("/constant")
        def _constant() -> Response:
            return Response(payload, content_type="application/rss+xml; charset=utf-8")

        constant_client = constant.test_client()
        etag = client.get("/feeds/jijin.rss").headers["ETag"]
        warm_200 = timeit(lambda: client.get("/feeds/jijin.rss"), 500)
        warm_304 = timeit(
            lambda: client.get("/feeds/jijin.rss", headers={"If-None-Match": etag}), 500
        )
        const_200 = timeit(lambda: constant_client.get("/constant"), 500)
        ctx.db.dispose()

    print(f"feed: {ITEMS} items, {len(feed.body)} bytes ({len(feed.gzip_body)} gzipped)")
    print(f"{'measure':<34}{'ours':>12}{'baseline':>12}{'ratio':>8}")
    rows = [
        ("cold build vs bare feedgen", cold_ours, cold_bare),
        ("warm 200 vs constant-bytes route", warm_200, const_200),
        ("warm 304 vs constant-bytes route", warm_304, const_200),
    ]
    for name, ours, base in rows:
        print(f"{name:<34}{ours * 1e3:>10.3f}ms{base * 1e3:>10.3f}ms{ours / base:>8.2f}")


if __name__ == "__main__":
    main()
