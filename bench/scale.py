"""Does a request cost the same at 100,000 posts as at 1,000? One table says, per backend.

    .venv/bin/python bench/scale.py [--sizes 1000,10000,100000] [--postgres URL] [--quick]
                                    [--save FILE] [--compare FILE]

For each backend (SQLite; PostgreSQL too when --postgres names a server: the corpora get
databases of their own there, ``bench_scale_<n>``) and each size, the corpus of
bench/corpus.py (built once, cached under build/) is served by the app in this process
through Flask's test client, and the median latency of each request below is measured:

- feeds: a cold category feed (RSS, Atom: the feed cache cleared before each request), the
  warm one (cached), the cold site feed (/feeds/all.rss), a cold deep page (?limit=100);
- HTML: the home page, a category page, a post page (a post halfway down the corpus);
- the API list: anonymous, authenticated first page, authenticated 90% deep by cursor, and
  with a status, a category and a tag filter (first page and 90% deep).

The sizes are measured side by side: request by request, one call at each size in turn,
so that whatever else loads the machine weighs on every size alike. The table prints each
median and its ratio to the smallest size (the goal of issue 9: <= 1.2x at 100k). On
PostgreSQL it also counts the transactions a request costs (pg_stat_database, "PG xacts").
Then the query plans (EXPLAIN QUERY PLAN / EXPLAIN) of the statements the key requests ran
at the largest size, captured as SQLAlchemy sent them. Then the write-load figures of
bench/writes.py (``reads_under_writes``) when that module exists.

--save writes the medians as JSON; --compare FILE prints them beside this run's (how the
"before" column of the README was made: the same script run on a checkout of main).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import CATEGORIES, database_url, site_for  # noqa: E402

CATEGORY = CATEGORIES[0][0]
PAGE = 20  # ?limit= of the API lists measured
# Which requests' statements to EXPLAIN at the largest size.
PLANNED = (
    "feed cold rss",
    "site feed cold",
    "feed page 90% rows",
    "post page cold",
    "api list auth",
    "api list auth 90%",
    "api tag 90%",
)


@dataclass
class Request:
    name: str
    path: str
    auth: bool = False
    cold: bool = False  # clear the feed and page caches first
    rows: bool = False  # and the rows the feed read at this version (feeds/service.py memo)


def requests_for(app: Any, token: str) -> list[Request]:
    """The measured requests, their cursors taken from this corpus's own order."""
    from sqlalchemy import func, select

    from feedsvc.feeds.service import page_cursor
    from feedsvc.models import Category, Post, Tag, post_tags
    from feedsvc.repo.posts import SortKey
    from feedsvc.web.api import cursor

    ctx = app.extensions["feedsvc"]
    with ctx.db.read() as session:
        published = session.scalar(select(func.count()).where(Post.status == "published")) or 0
        middle = session.scalar(
            select(Post.slug)
            .where(Post.status == "published")
            .order_by(Post.id)
            .offset(published // 2)
            .limit(1)
        )
        tag_name, tagged = session.execute(
            select(Tag.name, func.count())
            .join(post_tags, post_tags.c.tag_id == Tag.id)
            .group_by(Tag.name)
            .order_by(Tag.name)
            .limit(1)
        ).one()
        total = session.scalar(select(func.count()).select_from(Post)) or 0

        def deep(query: Any, count: int) -> str:
            """A cursor 90% down the list, or as deep as still leaves a whole page after it
            (a small tag's 90% page holds 2 posts: it would be cheap for being short)."""
            position = max(0, min(count * 9 // 10, count - PAGE - 2))
            row = session.execute(
                query.order_by(Post.published_at.desc(), Post.id.desc()).offset(position).limit(1)
            ).one()
            return str(cursor.encode("posts", (row[0], row[1])))

        base = select(Post.published_at, Post.id)
        all_deep = deep(base, total)
        # A feed page 90% down the category's archive (RFC 5005 ?before=, the feeds' cursor).
        in_category = base.join(Category, Category.id == Post.category_id).where(
            Category.slug == CATEGORY, Post.status == "published"
        )
        category_posts = (
            session.scalar(select(func.count()).select_from(in_category.subquery())) or 0
        )
        position = max(0, min(category_posts * 9 // 10, category_posts - PAGE - 2))
        at, post_id = session.execute(
            in_category.order_by(Post.published_at.desc(), Post.id.desc()).offset(position).limit(1)
        ).one()
        feed_deep = page_cursor(SortKey(at, post_id))
        tag_slug = session.scalar(select(Tag.slug).where(Tag.name == tag_name))
        published_deep = deep(base.where(Post.status == "published"), published)
        tag_deep = deep(
            base.join(post_tags, post_tags.c.post_id == Post.id).where(
                post_tags.c.tag_id == select(Tag.id).where(Tag.name == tag_name).scalar_subquery()
            ),
            tagged,
        )
    return [
        Request("feed cold rss", f"/feeds/{CATEGORY}.rss", cold=True),
        Request("feed cold atom", f"/feeds/{CATEGORY}.atom", cold=True),
        Request("feed warm rss", f"/feeds/{CATEGORY}.rss"),
        Request("site feed cold", "/feeds/all.rss", cold=True),
        Request("site feed warm", "/feeds/all.atom"),
        Request("feed cold ?limit=100", f"/feeds/{CATEGORY}.atom?limit=100", cold=True),
        Request("feed cold json", f"/feeds/{CATEGORY}.json", cold=True),
        Request("feed warm json", f"/feeds/{CATEGORY}.json"),
        Request("feed cold page 90%", f"/feeds/{CATEGORY}.atom?before={feed_deep}", cold=True),
        # Its rows read again too: the keyset query itself, at the first page and 90% down.
        Request("feed page 1 rows", f"/feeds/{CATEGORY}.atom", cold=True, rows=True),
        Request(
            "feed page 90% rows",
            f"/feeds/{CATEGORY}.atom?before={feed_deep}",
            cold=True,
            rows=True,
        ),
        Request("tag feed cold", f"/feeds/tags/{tag_slug}.rss", cold=True),
        Request("home page", "/"),
        Request("category page", f"/categories/{CATEGORY}"),
        Request("post page", f"/posts/{middle}"),
        # The pages as built after a write (the page cache emptied first).
        Request("home page cold", "/", cold=True),
        Request("category page cold", f"/categories/{CATEGORY}", cold=True),
        Request("post page cold", f"/posts/{middle}", cold=True),
        Request("api list anonymous", "/api/v1/posts?limit=20"),
        Request("api list auth", "/api/v1/posts?limit=20", auth=True),
        Request("api list auth 90%", f"/api/v1/posts?limit=20&cursor={all_deep}", auth=True),
        Request("api status=published", "/api/v1/posts?limit=20&status=published", auth=True),
        Request(
            "api status 90%",
            f"/api/v1/posts?limit=20&status=published&cursor={published_deep}",
            auth=True,
        ),
        Request("api category", f"/api/v1/posts?limit=20&category={CATEGORY}", auth=True),
        Request("api tag", f"/api/v1/posts?limit=20&tag={tag_name}", auth=True),
        Request("api tag 90%", f"/api/v1/posts?limit=20&tag={tag_name}&cursor={tag_deep}", True),
    ]


def make_app(folder: Path) -> Any:
    from feedsvc import create_app
    from feedsvc.config import load_settings

    settings = load_settings(
        {
            "database": {"url": database_url(folder)},
            "scheduler": {"enabled": False},
            "site": {"base_url": "http://127.0.0.1:8000", "title": "财经笔记"},
        },
        environ={},
    )
    return create_app(settings=settings)


@contextmanager
def captured_statements(engine: Any) -> Any:
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", remember)


def explain(engine: Any, statement: str, parameters: Any) -> list[str]:
    """The plan of a statement as the driver received it (no statistics are gathered)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return [f"{'  ' * (row[1] != 0)}{row[3]}" for row in cursor.fetchall()]
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + statement, parameters)
        return [row[0] for row in cursor.fetchall()]
    finally:
        raw.rollback()
        raw.close()


STATISTICS = {
    "sqlite": "no ANALYZE: SQLite plans without statistics",
    "postgresql": "after the VACUUM ANALYZE autovacuum would run anyway (bench/corpus.py)",
}
# PostgreSQL: transactions per request (pg_stat_database; pre-ping made one per checkout).
ROUND_TRIPS = ("feed warm rss", "feed cold rss", "post page cold", "api list auth")


def transactions(ctx: Any) -> int:
    """Transactions committed or rolled back in the app's database so far (all backends).

    The app's connections are closed first: a backend reports its counts when it exits.
    """
    from sqlalchemy import create_engine, text

    ctx.db.dispose()
    time.sleep(0.5)
    url = ctx.db.engine.url
    admin = create_engine(url.set(database="postgres"))
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            return int(
                connection.scalar(
                    text(
                        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                        " WHERE datname = :d"
                    ),
                    {"d": url.database},
                )
            )
    finally:
        admin.dispose()


@dataclass
class Site:
    """One corpus served by the app in this process, and the requests measured on it."""

    size: int
    app: Any
    client: Any
    headers: dict[str, str]
    requests: dict[str, Request]

    @classmethod
    def open(cls, size: int, folder: Path) -> Site:
        from feedsvc.services.tokens import create_token

        app = make_app(folder)
        _, token = create_token(app.extensions["feedsvc"], "bench-scale")
        requests = {req.name: req for req in requests_for(app, token)}
        headers = {"Authorization": f"Bearer {token}"}
        return cls(size, app, app.test_client(), headers, requests)

    def get(self, name: str) -> None:
        req = self.requests[name]
        if req.cold:
            self.app.extensions["feedsvc.feed_cache"].clear()
            self.app.extensions["feedsvc.page_cache"].clear()
        if req.rows:
            self.app.extensions["feedsvc"].memory.pop("feeds.rows", None)
        response = self.client.get(req.path, headers=self.headers if req.auth else {})
        assert response.status_code == 200, (req.path, response.status_code)
        response.close()

    def close(self) -> None:
        self.app.extensions["feedsvc"].db.dispose()


def measure(sites: list[Site], repeat: int) -> dict[int, dict[str, float]]:
    """Median latency of each request at each size, the sizes interleaved request by request:
    whatever else loads the machine meanwhile weighs on every size alike."""
    results: dict[int, dict[str, float]] = {site.size: {} for site in sites}
    for name in sites[0].requests:
        times: dict[int, list[float]] = {site.size: [] for site in sites}
        for site in sites:
            site.get(name)  # warms imports, templates, the pool and the page cache
        for _ in range(repeat):
            for site in sites:
                started = time.perf_counter()
                site.get(name)
                times[site.size].append((time.perf_counter() - started) * 1000)
        for site in sites:
            results[site.size][name] = statistics.median(times[site.size])
            ctx = site.app.extensions["feedsvc"]
            if ctx.db.dialect == "postgresql" and name in ROUND_TRIPS:
                before, count = transactions(ctx), 40
                for _ in range(count):
                    site.get(name)
                results[site.size][f"{name} (PG xacts)"] = (transactions(ctx) - before) / count
    return results


def query_plans(site: Site) -> list[str]:
    """EXPLAIN of the statements the PLANNED requests send (those reading posts or lists)."""
    engine = site.app.extensions["feedsvc"].db.engine
    lines: list[str] = []
    for name in PLANNED:
        with captured_statements(engine) as seen:
            site.get(name)
        lines.append(f"-- {name}: GET {site.requests[name].path[:90]}")
        for statement, parameters in seen:
            if "posts" not in statement and "related_items" not in statement:
                continue
            flat = " ".join(statement.split())
            lines.append(f"   {flat[:150]}{'...' if len(flat) > 150 else ''}")
            lines.extend(f"      {line}" for line in explain(engine, statement, parameters))
    return lines


def write_load(folder: Path, seconds: float) -> dict[str, float] | str:
    try:
        import writes  # type: ignore[import-not-found]
    except ImportError:
        return "skipped: bench/writes.py not merged yet"
    if not hasattr(writes, "reads_under_writes"):
        return "skipped: bench/writes.py has no reads_under_writes yet"
    result: dict[str, float] = writes.reads_under_writes(folder, seconds)
    return result


def table(
    backend: str,
    sizes: list[int],
    results: dict[int, dict[str, float]],
    before: dict[int, dict[str, float]] | None,
) -> list[str]:
    names = list(results[sizes[0]])
    head = f"{backend:<24}" + "".join(f"{size:>20}" for size in sizes)
    if before:
        head += "   | before (--compare)" + "".join(
            f"{size:>20}" for size in sizes if size in before
        )
    lines = [head, "-" * len(head)]
    for name in names:
        if name.endswith("xacts)"):
            counts = "".join(f"{results[size][name]:>17.2f} tx" for size in sizes)
            old = "".join(
                f"{before[size][name]:>17.2f} tx"
                for size in sizes
                if before and size in before and name in before[size]
            )
            lines.append(f"{name:<24}" + counts + (f"   |{' ' * 17}{old}" if old else ""))
            continue
        base = results[sizes[0]][name]
        cells = [f"{results[sizes[0]][name]:>11.2f} ms      "]
        for size in sizes[1:]:
            value = results[size][name]
            cells.append(f"{value:>9.2f} ms ({value / base:>4.2f}x)")
        line = f"{name:<24}" + "".join(f"{cell:>20}" for cell in cells)
        if before:
            old = [size for size in sizes if size in before and name in before[size]]
            if old:
                first = before[old[0]][name]
                parts = [f"{first:>11.2f} ms      "]
                parts += [
                    f"{before[s][name]:>9.2f} ms ({before[s][name] / first:>4.2f}x)"
                    for s in old[1:]
                ]
                line += "   |" + " " * 17 + "".join(f"{p:>20}" for p in parts)
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server URL (any database)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter writes")
    parser.add_argument("--backends", default=None, help="sqlite,postgresql (default: all given)")
    parser.add_argument("--save", type=Path, default=None, help="write the medians as JSON")
    parser.add_argument("--compare", type=Path, default=None, help="medians of an earlier --save")
    parser.add_argument("--no-writes", action="store_true", help="skip the write-load figures")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    repeat = 5 if args.quick else 15
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    if args.backends:
        backends = [b for b in backends if b in args.backends.split(",")]
    before = json.loads(args.compare.read_text()) if args.compare else {}
    saved: dict[str, dict[str, dict[str, float]]] = {}
    report: list[str] = []
    for backend in backends:
        server = args.postgres if backend == "postgresql" else None
        folders = {}
        for size in sizes:
            started = time.perf_counter()
            folders[size] = site_for(size, server)
            print(
                f"{backend} {size}: corpus ready in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
        sites = [Site.open(size, folders[size]) for size in sizes]
        try:
            results = measure(sites, repeat)
            plans = query_plans(sites[-1])
        finally:
            for site in sites:
                site.close()
        loads: dict[int, dict[str, float] | str] = {}
        if not args.no_writes:
            for size in sizes:
                loads[size] = write_load(folders[size], 5.0 if args.quick else 20.0)
        saved[backend] = {str(size): values for size, values in results.items()}
        old = {int(size): values for size, values in before.get(backend, {}).items()}
        report += ["", *table(backend, sizes, results, old or None)]
        report += [
            "",
            f"{backend}: query plans at {sizes[-1]} posts ({STATISTICS[backend]})",
            *plans,
        ]
        if loads:
            report.append(f"{backend}: reads under writes (bench/writes.py)")
            for size, figures in loads.items():
                if isinstance(figures, str):
                    report.append(f"   {size:>7}: {figures}")
                else:
                    shown = ", ".join(f"{k} {v:.2f}" for k, v in figures.items())
                    report.append(f"   {size:>7}: {shown}")
    print("\n".join(report))
    if args.save:
        args.save.write_text(json.dumps(saved, indent=1))


if __name__ == "__main__":
    main()
