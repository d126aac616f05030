"""Query plans that stay the same size at any corpus: lists read one page from an index.

Issue 9: every list (the API's, with each filter, 90% deep by cursor; feeds; the related
block) must cost the same at 100,000 posts as at 1,000, on a fresh database (no ANALYZE
statistics). These tests read the plans the databases choose for the statements feedsvc
sends, on a small database:

- SQLite plans for a table of any size alike without statistics: the plan must SEARCH an
  index of posts (a range bound, not a SCAN) and need no temporary B-tree for the order;
- PostgreSQL prefers a sequential scan of a tiny table whatever the indexes, and once earlier
  tests have analysed the tables it may sort one row rather than walk an index, so the plan
  is read with ``enable_seqscan`` and ``enable_sort`` off (a sort no index can avoid still
  shows): an index must then serve the order (no Sort node) and
  the row-value cursor must be an index bound (``Index Cond``), not a filter run on every
  row read (issue 9 measured "Rows Removed by Filter: 90001").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from feedsvc.models import Category, Post, Tag
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from tests.factories import Factory


@contextmanager
def statements(ctx: Any) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def remember(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(ctx.db.engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", remember)


def plan_of(ctx: Any, statement: str, parameters: Any) -> str:
    raw = ctx.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if ctx.db.dialect == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(row[3] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + statement, parameters)
        return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        raw.rollback()
        raw.close()


def plans(ctx: Any, run: Callable[[Session], object], table: str) -> list[str]:
    """Plans of the statements ``run`` sends that read ``table`` first (FROM table)."""
    with statements(ctx) as seen, ctx.db.read() as session:
        run(session)
    return [plan_of(ctx, sql, params) for sql, params in seen if f"FROM {table}" in sql]


def assert_page_from_index(ctx: Any, plan: str, *, cursor: bool) -> None:
    if ctx.db.dialect == "sqlite":
        assert "SEARCH posts USING INDEX ix_posts_" in plan or (
            not cursor and "SCAN posts USING INDEX ix_posts_" in plan
        ), plan
        assert "TEMP B-TREE" not in plan, plan
        if cursor:
            assert "published_at<?" in plan, plan  # the row value is the index's range bound
        return
    assert "Index Scan Backward using ix_posts_" in plan, plan
    assert "Sort" not in plan, plan
    if cursor:
        bounds = [line for line in plan.splitlines() if "Index Cond" in line]
        assert any("ROW(published_at, id) <" in line for line in bounds), plan
        assert not any("Filter" in line and "published_at" in line for line in plan.splitlines())


@pytest.fixture
def corpus(ctx: Any, factory: Factory) -> dict[str, Any]:
    """Two categories of posts, a draft and a scheduled post, tags, stored related lists."""
    made = [factory.post("licai-fangfa" if n % 2 else "jijin-dingtou") for n in range(12)]
    draft = factory.post(status="draft", tags=["储蓄"])
    scheduled = factory.post(published_at=ctx.clock.now() + timedelta(days=2), tags=["储蓄"])
    now = ctx.clock.now()
    with ctx.db.write() as session:
        related_repo.replace_lists(
            session,
            {
                made[0].id: [
                    (related_repo.post_key(made[1].id), 0.9),
                    (related_repo.post_key(draft.id), 0.8),  # not shown: a draft
                    (related_repo.post_key(scheduled.id), 0.7),  # not shown: not due yet
                    (related_repo.post_key(made[3].id), 0.6),
                ],
                made[2].id: [(related_repo.post_key(made[0].id), 0.5)],
            },
            now,
        )
    with ctx.db.read() as session:
        category = session.scalar(select(Category.id).where(Category.slug == "jijin-dingtou"))
        tag = session.scalar(select(Tag.id).where(Tag.name == "储蓄"))
    middle = made[6]
    return {
        "posts": made,
        "category": category,
        "tag": tag,
        "cursor": post_repo.SortKey(middle.published_at, middle.id),
        "draft": draft,
        "scheduled": scheduled,
    }


FILTERS = {
    "none": lambda c: post_repo.PostFilter(),
    "status": lambda c: post_repo.PostFilter(status="published"),
    "category": lambda c: post_repo.PostFilter(category_id=c["category"]),
    "category+status": lambda c: post_repo.PostFilter(category_id=c["category"], status="draft"),
    "visible": lambda c: post_repo.PostFilter(visible_at=c["now"]),
    "category+visible": lambda c: post_repo.PostFilter(
        category_id=c["category"], visible_at=c["now"]
    ),
    "tag": lambda c: post_repo.PostFilter(tag_id=c["tag"]),
    "tag+visible": lambda c: post_repo.PostFilter(tag_id=c["tag"], visible_at=c["now"]),
}


@pytest.mark.parametrize("deep", [False, True], ids=["first-page", "deep-cursor"])
@pytest.mark.parametrize("name", list(FILTERS))
def test_post_lists_read_one_page_of_an_index(
    ctx: Any, corpus: dict[str, Any], name: str, deep: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(post_repo, "FEW_TAGGED", 0)  # the tag is common: the list is walked
    where = FILTERS[name]({**corpus, "now": ctx.clock.now()})
    after = corpus["cursor"] if deep else None
    found = plans(
        ctx, lambda s: post_repo.list_posts(s, where, limit=5, after=after), "posts LEFT OUTER"
    )
    assert len(found) == 1
    assert_page_from_index(ctx, found[0], cursor=deep)


@pytest.mark.parametrize("deep", [False, True], ids=["first-page", "deep-cursor"])
def test_a_rare_tag_is_listed_from_its_own_rows(
    ctx: Any, corpus: dict[str, Any], deep: bool
) -> None:
    where = post_repo.PostFilter(tag_id=corpus["tag"])
    after = corpus["cursor"] if deep else None
    found = plans(
        ctx, lambda s: post_repo.list_posts(s, where, limit=5, after=after), "posts LEFT OUTER"
    )
    assert len(found) == 1
    plan = found[0]
    # At most FEW_TAGGED rows of the tag, read by its index, their posts by primary key.
    if ctx.db.dialect == "sqlite":
        assert "SEARCH post_tags USING INDEX ix_post_tags_tag_id (tag_id=?)" in plan, plan
        assert "SEARCH posts USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
        assert "SCAN" not in plan, plan
    else:
        assert "ix_post_tags_tag_id" in plan or "pk_post_tags" in plan, plan
        assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("category", [True, False], ids=["category-feed", "site-feed"])
def test_feed_posts_read_one_page_of_an_index(
    ctx: Any, corpus: dict[str, Any], category: bool
) -> None:
    category_id = corpus["category"] if category else None
    found = plans(
        ctx,
        lambda s: post_repo.feed_posts(s, category_id, ctx.clock.now(), 5),
        "posts LEFT OUTER",
    )
    assert len(found) == 1
    assert_page_from_index(ctx, found[0], cursor=False)


def test_related_block_starts_from_the_ids(ctx: Any, corpus: dict[str, Any]) -> None:
    made = corpus["posts"]
    ids = [made[0].id, made[2].id, made[5].id]
    now = ctx.clock.now()
    with statements(ctx) as seen, ctx.db.read() as session:
        views = related_repo.related_views(session, ids, now)
    # What readers see: visible posts only, in rank order; posts without a list have none.
    assert {owner: [v.post_id for v in items] for owner, items in views.items()} == {
        made[0].id: [made[1].id, made[3].id],
        made[2].id: [made[0].id],
    }
    assert [v.rank for v in views[made[0].id]] == [1, 4]
    assert views[made[2].id][0].slug == made[0].slug
    found = [plan_of(ctx, sql, params) for sql, params in seen]
    assert len(found) == 2, found  # the lists, then their posts; no upstream item named
    lists, posts = found
    if ctx.db.dialect == "sqlite":
        assert "SEARCH related_items USING INDEX sqlite_autoindex_related_items_1 (post_id=?)" in (
            lists
        ), lists
        assert "SEARCH posts USING INTEGER PRIMARY KEY (rowid=?)" in posts, posts
        assert "SCAN" not in lists + posts
    else:
        assert "on pk_related_items" in lists and "Index Cond: (post_id = ANY" in lists, lists
        assert "pk_posts" in posts and "Index Cond: (id = ANY" in posts, posts
        assert "Seq Scan" not in lists + posts


def test_tag_filter_pages_return_every_tagged_post_once(ctx: Any, corpus: dict[str, Any]) -> None:
    where = post_repo.PostFilter(tag_id=corpus["tag"])
    with ctx.db.read() as session:
        expected = [
            post.id
            for post in sorted(
                session.scalars(select(Post)), key=lambda p: (p.published_at, p.id), reverse=True
            )
            if any(tag.id == corpus["tag"] for tag in post.tags)
        ]
        seen: list[int] = []
        after = None
        while True:
            page = post_repo.list_posts(session, where, limit=3, after=after)
            seen += [post.id for post in page]
            if len(page) < 3:
                break
            after = post_repo.SortKey(page[-1].published_at, page[-1].id)
    assert seen == expected
    assert corpus["draft"].id in seen and corpus["scheduled"].id in seen


@pytest.mark.parametrize("name", ["visible", "category+visible", "tag+visible"])
def test_a_cursor_page_of_visible_posts_has_one_upper_bound(
    ctx: Any, corpus: dict[str, Any], name: str
) -> None:
    """ "Due by now" is implied by "older than the cursor": with both, SQLite took now as its
    index bound and walked every newer post down to the cursor (2x a feed page's cost 90%
    down 100,000 posts). Only the cursor's bound is sent, and the page is the same."""
    where = FILTERS[name]({**corpus, "now": ctx.clock.now()})
    with statements(ctx) as seen, ctx.db.read() as session:
        page = post_repo.list_posts(session, where, limit=5, after=corpus["cursor"])
    (sql,) = [sql for sql, _ in seen if "FROM posts LEFT OUTER" in sql]
    assert "published_at <=" not in sql, sql
    assert page and all(p.status == "published" and p.published_at <= ctx.clock.now() for p in page)
    assert all((p.published_at, p.id) < (corpus["cursor"].published_at, p.id + 1) for p in page)
    # A cursor from the future (forged) keeps both bounds: no post that is not yet due.
    future = post_repo.SortKey(corpus["scheduled"].published_at + timedelta(days=1), 1 << 30)
    with ctx.db.read() as session:
        ahead = post_repo.list_posts(session, where, limit=50, after=future)
    assert corpus["scheduled"].id not in {p.id for p in ahead}


def test_the_dashboard_reads_indexes(ctx: Any, corpus: dict[str, Any]) -> None:
    """The admin's dashboard (bench/admin.py): the posts written last walk ix_posts_updated
    (no sort of every post), and each count is a range of ix_posts_status_published read in
    the index alone (no pass over the table)."""
    now = ctx.clock.now()
    with ctx.db.read() as session:
        assert post_repo.count_by_state(session, now) == (12, 1, 1)
    latest = plans(ctx, lambda s: post_repo.recently_changed(s, 10), "posts LEFT OUTER")
    assert len(latest) == 1
    counts = plans(ctx, lambda s: post_repo.count_by_state(s, now), "posts")
    assert len(counts) == 3
    if ctx.db.dialect == "sqlite":
        assert "SCAN posts USING INDEX ix_posts_updated" in latest[0], latest[0]
        assert "TEMP B-TREE" not in latest[0], latest[0]
        for plan in counts:
            assert "USING COVERING INDEX ix_posts_status_published" in plan, plan
    else:
        assert "ix_posts_updated" in latest[0] and "Sort" not in latest[0], latest[0]
        for plan in counts:
            assert "ix_posts_status_published" in plan and "Seq Scan" not in plan, plan


def test_scheduled_posts_read_one_page_of_an_index(ctx: Any, corpus: dict[str, Any]) -> None:
    where = post_repo.PostFilter(scheduled_after=ctx.clock.now())
    found = plans(ctx, lambda s: post_repo.list_posts(s, where, limit=5), "posts LEFT OUTER")
    assert len(found) == 1
    assert_page_from_index(ctx, found[0], cursor=False)
