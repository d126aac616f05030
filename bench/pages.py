"""Pages against feeds: ratios measured side by side in one run (absolute times are noisy).

(a) warm, over HTTP: a real `feedsvc serve` (2 workers) on a bench corpus
    (bench/corpus.py: 1,000 posts by default), loaded by wrk -t2 -c16. Each page is measured
    beside the feed of the same posts, in alternating rounds, and the median ratio printed:
    a category page (its newest 20 posts) against the category's RSS feed (20 items), the
    home page against the site feed; a post page, a tag page and the 304 of a page are shown
    against the category feed too. Goal (issue 10): a warm page ≥ 0.8× a warm feed.
(b) cold, in process: a numbered list page built on a miss (the page cache emptied before
    each request), at page 1 and at the last page, for each corpus size given: an OFFSET
    query grows with the depth, the first page must not.

Run: `.venv/bin/python bench/pages.py [--sizes 1000,100000] [--postgres URL] [--seconds S]`
(wrk must be installed: apt-get install wrk). Corpora are built once, under build/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import corpus
from bench.site import fetch, free_port, start_feedsvc, stop, wrk


def _app(folder: Path) -> Any:
    from feedsvc import create_app
    from feedsvc.config import load_settings

    overrides = {"database": {"url": corpus.database_url(folder)}, "scheduler": {"enabled": False}}
    return create_app(settings=load_settings(overrides, environ={}))


def _urls(folder: Path) -> dict[str, str]:
    """The paths measured, read from the corpus: a category, a tag, a post."""
    from sqlalchemy import func, select

    from feedsvc.models import Post, Tag, post_tags

    app = _app(folder)
    ctx = app.extensions["feedsvc"]
    try:
        with ctx.db.read() as session:
            slug = session.scalar(
                select(Post.slug)
                .where(Post.status == "published", Post.published_at <= datetime.now(UTC))
                .order_by(Post.published_at.desc())
                .limit(1)
            )
            tag = session.scalar(
                select(Tag.name)
                .join(post_tags, post_tags.c.tag_id == Tag.id)
                .group_by(Tag.name)
                .order_by(func.count().desc())
                .limit(1)
            )
    finally:
        ctx.db.dispose()
    from urllib.parse import quote

    category = corpus.CATEGORIES[0][0]
    return {
        "category feed": f"/feeds/{category}.rss",
        "category page": f"/categories/{category}",
        "site feed": "/feeds/all.rss",
        "home page": "/",
        "post page": f"/posts/{slug}",
        "tag page": f"/tags/{quote(tag)}",
    }


PAIRS = [
    ("category page", "category feed", {}),
    ("home page", "site feed", {}),
    ("post page", "category feed", {}),
    ("tag page", "category feed", {}),
]


def warm(folder: Path, seconds: float, rounds: int) -> list[tuple[str, float, float, float]]:
    """(pair, page req/s, feed req/s, median ratio) for each pair, and for the 304s."""
    urls = _urls(folder)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-pages-") as tmp:
        server = start_feedsvc(folder / "feedsvc.toml", port, Path(tmp) / "serve.log")
        try:
            etags = {}
            for name, path in urls.items():
                status, headers, _ = fetch(base + path)
                assert status == 200, (name, path, status)
                etags[name] = headers["ETag"]
            results = []
            pairs: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
                (page, feed, {}, {}) for page, feed, _ in PAIRS
            ]
            pairs.append(
                (
                    "category page 304",
                    "category feed 304",
                    {"If-None-Match": etags["category page"]},
                    {"If-None-Match": etags["category feed"]},
                )
            )
            for page, feed, page_headers, feed_headers in pairs:
                page_url = base + urls[page.removesuffix(" 304")]
                feed_url = base + urls[feed.removesuffix(" 304")]
                ratios, page_rps, feed_rps = [], [], []
                for _ in range(rounds):
                    a = wrk(page_url, page_headers, seconds)
                    b = wrk(feed_url, feed_headers, seconds)
                    page_rps.append(a)
                    feed_rps.append(b)
                    ratios.append(a / b)
                results.append(
                    (
                        f"{page} / {feed}",
                        statistics.median(page_rps),
                        statistics.median(feed_rps),
                        statistics.median(ratios),
                    )
                )
            return results
        finally:
            stop(server)


def cold(folder: Path, repeat: int) -> dict[str, float]:
    """Median ms of a category list page built on a miss: page 1 and the last page."""
    from feedsvc.web.pages import PAGE_CACHE, PAGE_SIZE

    app = _app(folder)
    ctx = app.extensions["feedsvc"]
    client = app.test_client()
    category = corpus.CATEGORIES[0][0]
    figures: dict[str, float] = {}
    try:
        from sqlalchemy import func, select

        from feedsvc.models import Category, Post

        with ctx.db.read() as session:
            posts = session.scalar(
                select(func.count())
                .select_from(Post)
                .join(Category, Category.id == Post.category_id)
                .where(
                    Category.slug == category,
                    Post.status == "published",
                    Post.published_at <= datetime.now(UTC),
                )
            )
        last = max(1, -(-(posts or 0) // PAGE_SIZE))
        figures["category pages"] = last
        for label, path in (
            ("home page 1", "/"),
            ("category page 1", f"/categories/{category}"),
            ("category last page", f"/categories/{category}?page={last}"),
        ):
            times = []
            for _ in range(repeat):
                app.extensions[PAGE_CACHE].clear()
                started = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, (path, response.status_code)
            figures[label] = statistics.median(times) * 1e3
        figures["posts per page"] = PAGE_SIZE
    finally:
        ctx.db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000", help="corpus sizes, comma-separated")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server for the corpora")
    parser.add_argument("--seconds", type=float, default=5.0, help="per wrk measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating wrk rounds")
    parser.add_argument("--repeat", type=int, default=15, help="cold builds timed per page")
    parser.add_argument("--only", default="a,b", help="parts to run: a (warm), b (cold)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    backend = "PostgreSQL" if args.postgres else "SQLite"
    folders = {size: corpus.site_for(size, args.postgres) for size in sizes}
    if "a" in args.only:
        print(f"(a) {backend}, {sizes[0]} posts: warm req/s, page against feed (median of rounds)")
        for name, page, feed, ratio in warm(folders[sizes[0]], args.seconds, args.rounds):
            print(f"  {name:44} {page:9.0f} {feed:9.0f}  {ratio:5.2f}x")
    if "b" in args.only:
        table: dict[str, dict[int, Any]] = {}
        for size, folder in folders.items():
            for label, figure in cold(folder, args.repeat).items():
                table.setdefault(label, {})[size] = figure
        print(f"(b) {backend}: cold page builds, median ms (page cache emptied before each)")
        print("  " + " " * 24 + "".join(f"{size:>12,}" for size in sizes))
        for label, by_size in table.items():
            print(f"  {label:24}" + "".join(f"{by_size.get(s, 0):12.2f}" for s in sizes))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
