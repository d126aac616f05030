"""Feed serving benchmark: ratios measured side by side in one run (absolute times are noisy).

On one 20-item category feed (Chinese posts of about 3 KB of HTML each), in RSS and in JSON
Feed (``--formats``):
- cold build (in process): our whole miss path (version lookup, queries, document, render,
  gzip, ETag) vs a bare build of the same items from data already in memory (feedgen for RSS,
  json.dumps for the JSON Feed);
- warm 200, gzip 200 and 304 through a real `feedsvc serve` (gunicorn, 2 workers, serve's
  threads) vs a Flask app answering the same bytes as constants (bench/constant.py) under
  the same gunicorn configuration, both loaded by wrk -t2 -c16. The two servers are
  measured in alternating rounds and the median ratio printed, so that load from other
  processes on the machine hits both alike.

A feed page deep in the archive (RFC 5005 ``?before=``) at 1,000 and at 100,000 posts is in
bench/scale.py, which has the corpora ("feed cold page 90%", "feed page 90% rows").

Run: `make bench` (or `.venv/bin/python bench/feeds.py [--postgres URL] [--seconds S]`).
"""

from __future__ import annotations

import argparse
import json
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

from bench.site import (
    CATEGORY,
    ITEMS,
    PARAGRAPH,
    build_site,
    fetch,
    free_port,
    post_body,
    start_constant,
    start_feedsvc,
    stop,
    wrk,
)
from feedsvc import create_app
from feedsvc.config import load_settings
from feedsvc.feeds.service import get_feed


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


def bare_json(items: list[dict]) -> bytes:
    """A JSON Feed 1.1 of the same items, written by hand with json.dumps."""
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "基金",
        "home_page_url": "http://127.0.0.1:8000/categories/jijin",
        "feed_url": "http://127.0.0.1:8000/feeds/jijin.json",
        "language": "zh-CN",
        "items": [
            {
                "id": item["guid"],
                "url": item["link"],
                "title": item["title"],
                "content_html": item["content"],
                "summary": item["summary"],
                "date_published": item["published"].isoformat(),
            }
            for item in items
        ],
    }
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def cold_build(db_url: str, fmt: str = "rss") -> tuple[float, float]:
    """Median seconds of our miss path and of a bare build of the same items: feedgen for RSS,
    json.dumps for the JSON Feed."""
    settings = load_settings(
        {"database": {"url": db_url}, "scheduler": {"enabled": False}}, environ={}
    )
    app = create_app(settings=settings)
    ctx = app.extensions["feedsvc"]
    cache = app.extensions["feedsvc.feed_cache"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = [
        {
            "guid": f"tag:bench,2026:post/{n}",
            "title": f"定投笔记第{n}篇",
            "link": f"http://127.0.0.1:8000/posts/{n}",
            "published": start + timedelta(days=n),
            "summary": PARAGRAPH[:120],
            "content": post_body(),
        }
        for n in range(ITEMS)
    ]

    def ours_cold() -> None:
        cache.clear()
        get_feed(ctx, cache, CATEGORY, fmt, None)

    bare = bare_json if fmt == "json" else bare_feedgen
    try:
        return timeit(ours_cold, 50), timeit(lambda: bare(items), 50)
    finally:
        ctx.db.dispose()


def through_gunicorn(
    config: Path, tmp: Path, rounds: int, seconds: float, fmt: str = "rss"
) -> list[tuple[str, float, float, float]]:
    """(measure, our req/s, constant req/s, median ratio) for warm 200, gzip 200 and 304 of
    the category feed in this format (rss, atom, json)."""
    ours_port, const_port = free_port(), free_port()
    ours = constant = None
    try:
        ours = start_feedsvc(config, ours_port, tmp / "serve.log")
        feed_url = f"http://127.0.0.1:{ours_port}/feeds/{CATEGORY}.{fmt}"
        status, headers, body = fetch(feed_url)
        assert status == 200, status
        payload = tmp / f"payload.{fmt}"
        payload.write_bytes(body)
        constant = start_constant(payload, const_port, tmp / f"constant-{fmt}.log")
        base = f"http://127.0.0.1:{const_port}"
        gz = {"Accept-Encoding": "gzip"}
        cases = [
            ("warm 200", feed_url, {}, f"{base}/constant", {}),
            ("warm 200 gzip", feed_url, gz, f"{base}/constant.gz", gz),
            ("warm 304", feed_url, {"If-None-Match": headers["ETag"]}, f"{base}/constant.304", {}),
        ]
        for _, url, sent, _, _ in cases:  # every request answers what we mean to measure
            status, got, _ = fetch(url, sent)
            assert status == (304 if "If-None-Match" in sent else 200), (url, status)
            assert ("gzip" in sent.get("Accept-Encoding", "")) == (
                got.get("Content-Encoding") == "gzip"
            )
        results = []
        for name, url, sent, const_url, const_sent in cases:
            wrk(url, sent, 1)  # warm both (caches, connections)
            wrk(const_url, const_sent, 1)
            ratios, ours_rps, const_rps = [], [], []
            for _ in range(rounds):
                ours_rps.append(wrk(url, sent, seconds))
                const_rps.append(wrk(const_url, const_sent, seconds))
                ratios.append(ours_rps[-1] / const_rps[-1])
            results.append(
                (
                    name,
                    statistics.median(ours_rps),
                    statistics.median(const_rps),
                    statistics.median(ratios),
                )
            )
        return results
    finally:
        stop(ours)
        stop(constant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres", metavar="URL", help="bench on this (emptied!) PostgreSQL database"
    )
    parser.add_argument("--seconds", type=int, default=3, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per measure")
    parser.add_argument(
        "--version-max-age-ms",
        type=int,
        default=0,
        help="feeds.version_max_age_ms (PostgreSQL's bounded mode; 0: strict)",
    )
    parser.add_argument(
        "--formats", default="rss,json", help="feed formats measured warm (rss, atom, json)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        config, db_url = build_site(tmp, args.postgres)
        if args.version_max_age_ms:
            with config.open("a", encoding="utf-8") as extra:
                extra.write(f"[feeds]\nversion_max_age_ms = {args.version_max_age_ms}\n")
        formats = args.formats.split(",")
        cold = {fmt: cold_build(db_url, fmt) for fmt in formats if fmt in ("rss", "json")}
        rows = []
        for fmt in formats:
            for measure, ours, base, ratio in through_gunicorn(
                config, tmp, args.rounds, args.seconds, fmt
            ):
                rows.append((f"{fmt} {measure}", ours, base, ratio))
    backend = "PostgreSQL" if args.postgres else "SQLite"
    mode = (
        f", versions reused up to {args.version_max_age_ms} ms" if args.version_max_age_ms else ""
    )
    print(f"feed: {ITEMS} items on {backend}{mode}; feedsvc serve, 2 workers; wrk -t2 -c16")
    print(f"{'measure':<34}{'ours':>12}{'baseline':>12}{'ratio':>8}")
    for fmt, (cold_ours, cold_bare) in cold.items():
        bare = "json.dumps" if fmt == "json" else "feedgen"
        name, speed = f"{fmt} cold build vs bare {bare}", cold_bare / cold_ours
        print(f"{name:<34}{cold_ours * 1e3:>10.3f}ms{cold_bare * 1e3:>10.3f}ms{speed:>8.2f}")
    for name, ours, base, ratio in rows:
        label = f"{name} vs constant route"
        print(f"{label:<34}{ours:>9.0f}r/s{base:>9.0f}r/s{ratio:>8.2f}")
    print("ratio: ours/baseline in speed (1.00 = as fast as the baseline; goal >= 0.90 warm)")


if __name__ == "__main__":
    main()
