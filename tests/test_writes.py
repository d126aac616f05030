"""Writes at scale (issue 9): slug suffixes in constant statements, unique under concurrent
creates; single-flight feed builds; a byte-bounded feed cache; statistics after bulk loads;
bulk paths batched."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, func, insert, select, text

from feedsvc.config import ConfigError, load_settings
from feedsvc.content import slug_from_title
from feedsvc.feeds import service as feed_service
from feedsvc.feeds.cache import ENTRY_OVERHEAD, FeedCache, FeedKey, RenderedFeed, entry_size
from feedsvc.models import Post, SlugCounter
from feedsvc.schemas import PostCreate
from feedsvc.services import posts as post_service
from tests.conftest import NOW
from tests.factories import Factory

TITLE = "每日财经快讯"
BASE = slug_from_title(TITLE)


@contextmanager
def statements(ctx: Any) -> Iterator[list[str]]:
    """Every SQL statement sent through the engine inside the block."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(ctx.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", record)


def create(ctx: Any, title: str = TITLE, **fields: Any) -> Post:
    data = {"title": title, "category": "jijin", "content": "## 快讯\n\n今日市场平稳。", **fields}
    return post_service.create_post(ctx, PostCreate(**data))


# -- slugs -----------------------------------------------------------------------------------


def test_a_create_costs_the_same_statements_with_0_and_50_namesakes(
    ctx: Any, factory: Factory
) -> None:
    factory.category("jijin")
    create(ctx, "热身", tags=["财经"])  # the tag exists from here on, as on a running site
    with statements(ctx) as alone:
        first = create(ctx, tags=["财经"])
    for _ in range(49):
        create(ctx, tags=["财经"])
    with statements(ctx) as after_50:
        last = create(ctx, tags=["财经"])
    assert (first.slug, last.slug) == (BASE, f"{BASE}-51")
    assert len(after_50) == len(alone), (alone, after_50)
    assert not any("slugs" in s.lower() or "LIKE" in s for s in after_50)


def test_every_namesake_gets_its_own_readable_slug_that_never_changes(
    ctx: Any, factory: Factory, client: Any, auth: dict[str, str]
) -> None:
    factory.category("jijin")
    slugs = [create(ctx).slug for _ in range(3)]
    assert slugs == [BASE, f"{BASE}-2", f"{BASE}-3"]
    edited = client.patch(f"/api/v1/posts/{1}", json={"title": "另一个标题"}, headers=auth)
    assert edited.json["slug"] == BASE
    # A deleted post's slug is not handed out again to a new namesake.
    assert client.delete("/api/v1/posts/3", headers=auth).status_code == 204
    assert create(ctx).slug == f"{BASE}-4"


def test_posts_stored_around_the_counter_are_found_once(ctx: Any, factory: Factory) -> None:
    """An older database, a restore, a given slug: the counter is behind; the unique index
    finds it, the counter catches up once, and the next creates cost one statement again."""
    factory.category("jijin")
    create(ctx, "其他")
    create(ctx, slug=f"{BASE}-7")  # given: bypasses the counter
    with ctx.db.write() as session:
        category_id = session.scalar(text("SELECT id FROM categories WHERE slug = 'jijin'"))
        template = session.get(Post, 1)
        assert template is not None
        row = {c.name: getattr(template, c.key) for c in Post.__table__.columns if c.name != "id"}
        session.execute(
            insert(Post.__table__),
            [
                {**row, "slug": slug, "guid": f"tag:x,2026:{slug}", "category_id": category_id}
                for slug in (BASE, f"{BASE}-2", f"{BASE}-12", f"{BASE}-x")
            ],
        )
    assert create(ctx).slug == f"{BASE}-13"
    with statements(ctx) as seen:
        assert create(ctx).slug == f"{BASE}-14"
    assert not any("LIKE" in s for s in seen)


def test_a_generated_slug_equal_to_another_base_is_skipped(ctx: Any, factory: Factory) -> None:
    factory.category("jijin")
    create(ctx, "理财")
    create(ctx, "理财 2")  # its own base is li-cai-2
    assert create(ctx, "理财").slug == "li-cai-3"
    with ctx.db.read() as session:
        slugs = sorted(session.scalars(select(Post.slug)))
    assert slugs == ["li-cai", "li-cai-2", "li-cai-3"]


@pytest.mark.parametrize("behind", [False, True], ids=["counter", "counter-behind"])
def test_concurrent_creates_of_one_title_get_distinct_slugs(
    ctx: Any, factory: Factory, backend: str, behind: bool
) -> None:
    factory.category("jijin")
    if behind:  # the counter has to catch up while writers race
        for _ in range(3):
            create(ctx)
        with ctx.db.write() as session:
            session.execute(delete(SlugCounter))
    threads, per_thread = 6, 5
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer() -> None:
        start.wait()
        for _ in range(per_thread):
            try:
                create(ctx)
            except BaseException as exc:
                errors.append(exc)

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    with ctx.db.read() as session:
        slugs = list(session.scalars(select(Post.slug)))
    total = threads * per_thread + (3 if behind else 0)
    assert len(slugs) == len(set(slugs)) == total
    assert set(slugs) == {BASE, *(f"{BASE}-{n}" for n in range(2, total + 1))}


def test_tags_that_exist_cost_one_statement(ctx: Any, factory: Factory) -> None:
    from feedsvc.repo.tags import get_or_create_tags

    factory.category("jijin")
    create(ctx, tags=["财经", "快讯", "市场"])
    with ctx.db.write() as session:
        session.execute(text("SELECT 1"))  # the transaction has begun
        with statements(ctx) as seen:
            tags = get_or_create_tags(session, ["市场", "财经", "快讯"])
    assert [t.name for t in tags] == ["市场", "财经", "快讯"]
    assert len(seen) == 1


# -- single flight ---------------------------------------------------------------------------


def rendered(size: int = 100) -> RenderedFeed:
    return RenderedFeed.of(
        b"x" * size, last_modified=NOW, media_type="application/rss+xml", valid_until=None
    )


def test_threads_that_miss_one_key_wait_for_one_build() -> None:
    cache = FeedCache(max_entries=10)
    key = FeedKey("jijin", "rss", None, 7)
    builds: list[int] = []
    release = threading.Event()
    feed = rendered()

    def build() -> RenderedFeed:
        builds.append(1)
        release.wait(10)
        return feed

    results: list[tuple[RenderedFeed | None, bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_build(key, NOW, build)))
        for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # every thread has missed by now: one builds, the others wait
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(builds) == 1
    assert len(results) == 12 and all(found is feed for found, _ in results)
    assert cache.get_or_build(key, NOW, build) == (feed, True)
    assert len(builds) == 1


def test_a_failed_build_is_not_shared() -> None:
    cache = FeedCache(max_entries=10)
    key = FeedKey("jijin", "rss", None, 1)
    started, release = threading.Event(), threading.Event()

    def failing() -> RenderedFeed:
        started.set()
        release.wait(10)
        raise RuntimeError("database went away")

    failures: list[BaseException] = []

    def leader() -> None:
        try:
            cache.get_or_build(key, NOW, failing)
        except RuntimeError as exc:
            failures.append(exc)

    first = threading.Thread(target=leader)
    first.start()
    started.wait(10)
    feed = rendered()
    follower: list[tuple[RenderedFeed | None, bool]] = []
    second = threading.Thread(
        target=lambda: follower.append(cache.get_or_build(key, NOW, lambda: feed))
    )
    second.start()
    time.sleep(0.1)
    release.set()
    first.join(10)
    second.join(10)
    assert len(failures) == 1 and follower == [(feed, False)]


def test_concurrent_requests_after_a_write_build_the_feed_once(
    ctx: Any, factory: Factory, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory.post("jijin")
    real = feed_service._render
    builds: list[str] = []

    def slow_render(*args: Any, **kwargs: Any) -> Any:
        builds.append(args[2])
        time.sleep(0.2)  # long enough for every reader to miss meanwhile
        return real(*args, **kwargs)

    assert client.get("/feeds/jijin.rss").status_code == 200
    factory.post("jijin")  # a new version
    monkeypatch.setattr(feed_service, "_render", slow_render)
    app = client.application
    statuses: list[int] = []

    def read() -> None:
        with app.test_client() as own:
            statuses.append(own.get("/feeds/jijin.rss").status_code)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200] * 8
    assert builds == ["jijin"]
    # Another category's feed was not touched by the write: still cached, no build.
    factory.category("gupiao")
    assert client.get("/feeds/gupiao.rss").status_code == 200
    builds.clear()
    factory.post("jijin")
    assert client.get("/feeds/gupiao.rss").status_code == 200
    assert builds == []


# -- the byte budget -------------------------------------------------------------------------


def test_the_cache_is_bounded_by_bytes_least_recently_used_first() -> None:
    feed = rendered(10_000)
    size = entry_size(feed)
    assert size >= 10_000 + ENTRY_OVERHEAD
    cache = FeedCache(max_entries=1000, max_bytes=3 * size)
    keys = [FeedKey("jijin", "rss", limit, 1) for limit in range(1, 6)]
    for key in keys[:3]:
        cache.put(key, feed)
    assert len(cache) == 3 and cache.size == 3 * size
    assert cache.get(keys[0], NOW) is feed  # now the most recently used
    cache.put(keys[3], feed)
    assert cache.get(keys[1], NOW) is None  # evicted
    assert cache.get(keys[0], NOW) is feed and cache.get(keys[3], NOW) is feed
    assert cache.size <= 3 * size
    huge = rendered(4 * size)
    cache.put(keys[4], huge)  # alone above the budget: served by its caller, never kept
    assert cache.get(keys[4], NOW) is None and cache.size <= 3 * size
    cache.put(FeedKey("jijin", "rss", 1, 2), feed)  # a new version drops the older ones
    assert len(cache) == 1 and cache.size == size
    cache.clear()
    assert (len(cache), cache.size) == (0, 0)


def test_the_byte_budget_is_a_setting(tmp_path: Path) -> None:
    database = {"url": f"sqlite:///{tmp_path}/feedsvc.db"}
    defaults = load_settings({"database": database}, environ={})
    assert defaults.feeds.cache_max_bytes == 64 * 1024 * 1024
    chosen = {"database": database, "feeds": {"cache_max_bytes": 8 * 1024 * 1024}}
    assert load_settings(chosen, environ={}).feeds.cache_max_bytes == 8 * 1024 * 1024
    with pytest.raises(ConfigError, match="cache_max_bytes"):
        load_settings({"database": database, "feeds": {"cache_max_bytes": 1000}}, environ={})


def test_the_app_cache_uses_the_budget(ctx: Any, factory: Factory, client: Any) -> None:
    factory.post("jijin")
    cache: FeedCache = client.application.extensions["feedsvc.feed_cache"]
    for limit in range(1, 30):
        assert client.get(f"/feeds/jijin.rss?limit={limit}").status_code == 200
    assert 0 < cache.size <= ctx.settings.feeds.cache_max_bytes
    assert len(cache) == 29


# -- statistics and bulk paths ---------------------------------------------------------------


def has_statistics(ctx: Any) -> bool:
    with ctx.db.engine.connect() as connection:
        if ctx.db.dialect == "sqlite":
            found = connection.execute(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).scalar()
            if not found:
                return False
            rows = connection.execute(
                text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'posts'")
            ).scalar()
            return bool(rows)
        analysed = connection.execute(
            text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'posts'")
        ).scalar()
        return analysed is not None


def rss(count: int) -> bytes:
    items = "".join(
        f"<item><title>导入的第{n}篇</title><link>https://old.example.cn/p/{n}</link>"
        f"<guid>https://old.example.cn/p/{n}</guid>"
        f"<pubDate>Sun, 01 Mar 2026 0{n % 10}:00:00 +0000</pubDate>"
        f"<description>&lt;p&gt;第{n}篇正文。&lt;/p&gt;</description></item>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>旧站</title>'
        f"<link>https://old.example.cn/</link><description>d</description>{items}"
        "</channel></rss>"
    ).encode()


def test_a_feed_import_is_batched_and_analysed(ctx: Any, factory: Factory, tmp_path: Path) -> None:
    from feedsvc.sources.importer import import_feed
    from feedsvc.sources.store import CREATE_BATCH

    factory.category("jijin")
    path = tmp_path / "feed.xml"
    count = 2 * CREATE_BATCH + 10
    path.write_bytes(rss(count))
    with statements(ctx) as seen:
        report = import_feed(ctx, str(path), "jijin")
    assert report.new == count
    # One multi-row insert per batch (issue 9: bulk paths batch their writes).
    inserts = [s for s in seen if s.startswith("INSERT INTO posts")]
    assert len(inserts) == 3
    # Writes of the posts: one transaction per batch (plus the import's source row).
    transactions = [s for s in seen if s.startswith("BEGIN IMMEDIATE")]
    if ctx.db.dialect == "sqlite":
        assert len(transactions) <= 3 + 1
    assert has_statistics(ctx)
    with ctx.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Post)) == count
    again = import_feed(ctx, str(path), "jijin")
    assert (again.new, again.skipped) == (0, count)


def test_an_entry_the_database_refuses_skips_only_itself(
    ctx: Any, factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.errors import Conflict
    from feedsvc.sources.importer import import_feed

    factory.category("jijin")
    path = tmp_path / "feed.xml"
    path.write_bytes(rss(5))
    real = post_service.insert_posts

    def refusing(ctx: Any, session: Any, posts: Any) -> list[int]:
        if any(post.prepared.data.title == "导入的第3篇" for post in posts):
            raise Conflict("refused")
        return real(ctx, session, posts)

    monkeypatch.setattr(post_service, "insert_posts", refusing)
    report = import_feed(ctx, str(path), "jijin")
    assert (report.new, report.skipped) == (4, 1)
    assert report.errors == ["https://old.example.cn/p/3: refused"]
    with ctx.db.read() as session:
        titles = set(session.scalars(select(Post.title)))
    assert "导入的第3篇" not in titles and len(titles) == 4


def test_a_wordpress_import_is_batched_and_analysed(ctx: Any, factory: Factory) -> None:
    from feedsvc.wordpress.parse import parse_wxr
    from feedsvc.wordpress.plan import plan
    from feedsvc.wordpress.store import BATCH, store

    for slug in ("licai", "jijin", "suibi"):
        factory.category(slug)
    fixture = Path(__file__).parent / "fixtures" / "wordpress-zh.xml"
    site = parse_wxr(fixture.read_bytes(), str(fixture))
    mapping = {"jizhang": "licai", "jijin": "jijin"}
    planned = plan(site, mapping, "suibi", ctx.settings.site.tz, NOW)
    with statements(ctx) as seen:
        report = store(ctx, planned)
    assert report.created == len(planned.posts) <= BATCH
    if ctx.db.dialect == "sqlite":
        assert len([s for s in seen if s.startswith("BEGIN IMMEDIATE")]) == 1
    assert has_statistics(ctx)


def test_the_samples_load_in_one_transaction_and_are_analysed(ctx: Any) -> None:
    from feedsvc.schemas import CategoryCreate
    from feedsvc.services import categories as category_service
    from feedsvc.services.samples import SAMPLE_POSTS, load_samples, read_post_file, sample_files

    samples = [read_post_file(p) for p in sample_files(SAMPLE_POSTS)]
    for slug in sorted({s.category for s in samples}):
        category_service.create_category(ctx, CategoryCreate(slug=slug, name=slug))
    with statements(ctx) as seen:
        assert load_samples(ctx, samples) == len(samples)
    if ctx.db.dialect == "sqlite":
        assert len([s for s in seen if s.startswith("BEGIN IMMEDIATE")]) == 1
    assert has_statistics(ctx)


def test_a_restore_is_analysed(ctx: Any, factory: Factory, tmp_path: Path) -> None:
    from feedsvc.transfer import export, restore

    factory.post("jijin")
    archive = tmp_path / "site.feedsvc.gz"
    export.export(ctx, archive, force=False)
    restore.restore(ctx, archive, replace=True)
    assert has_statistics(ctx)
    # The slug counters went with the old posts; a namesake of a restored post still works.
    with ctx.db.read() as session:
        title, slug = session.execute(select(Post.title, Post.slug)).one()
    assert create(ctx, title).slug == f"{slug}-2"


def test_statistics_are_kept_by_pragma_optimize(ctx: Any, factory: Factory) -> None:
    if ctx.db.dialect != "sqlite":
        pytest.skip("PostgreSQL's autovacuum analyses")
    for _ in range(5):
        factory.post("jijin")
    with ctx.db.read() as session:  # queries that an index serves: optimize looks at those
        session.scalars(select(Post).where(Post.slug == "x")).all()
    ctx.db.optimize()
    assert has_statistics(ctx)


def test_an_html_post_edited_without_a_format_stays_html(
    factory: Factory, client: Any, auth: dict[str, str]
) -> None:
    """The edit renders its content before the transaction, as Markdown unless a format is
    given; a post stored as HTML is rendered again inside, in its own format."""
    factory.category("jijin")
    body = {"title": "网页格式", "category": "jijin", "content": "<p>一</p>", "format": "html"}
    created = client.post("/api/v1/posts", json=body, headers=auth).json
    content = "<p>一</p>\n\n    <b>二</b>"  # Markdown would make the indented line code
    edited = client.patch(f"/api/v1/posts/{created['id']}", json={"content": content}, headers=auth)
    assert edited.status_code == 200
    assert edited.json["format"] == "html" and "<b>二</b>" in edited.json["content_html"]
    as_markdown = client.patch(
        f"/api/v1/posts/{created['id']}",
        json={"content": content, "format": "markdown"},
        headers=auth,
    ).json
    assert "<pre><code>" in as_markdown["content_html"]
