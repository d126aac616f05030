"""The batch create path (services/posts.py insert_posts, issue 9): what imports, WordPress
imports and the samples use. It stores what one insert_post per post stores, in statements
that do not grow with the batch, with one feed-version bump per batch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.models import Category, Post, PostChange, SiteState, Tag
from feedsvc.schemas import PostCreate
from feedsvc.services import posts as post_service
from tests.conftest import NOW
from tests.factories import Factory
from tests.test_writes import BASE, TITLE, create, statements


class _Undo(Exception):
    """Raised to roll a write transaction back once its result is read."""


def snapshot(session: Session) -> dict[str, Any]:
    """What a reader can see of the posts: rows, tags, the change log, the feed states."""
    guids = {post.id: post.guid for post in session.scalars(select(Post))}
    return {
        "posts": {
            post.guid: (
                post.slug,
                post.title,
                post.category.slug,
                post.status,
                post.published_at,
                post.summary,
                post.pages,
                post.origin_link,
                post.author,
                sorted(tag.name for tag in post.tags),
            )
            for post in session.scalars(select(Post))
        },
        "tags": sorted((tag.name, tag.slug) for tag in session.scalars(select(Tag))),
        "logged": [
            guids[c.post_id] for c in session.scalars(select(PostChange).order_by(PostChange.seq))
        ],
        "versions": {
            c.slug: (c.content_version, c.feed_changed_at)
            for c in session.scalars(select(Category))
        },
        "site": session.execute(
            select(SiteState.content_version, SiteState.feed_changed_at, SiteState.had_posts)
        ).one(),
    }


def stored_then_undone(ctx: Any, store: Callable[[Session], object]) -> dict[str, Any]:
    """The snapshot after ``store`` ran in a write transaction, which is then rolled back."""
    seen: dict[str, Any] = {}
    try:
        with ctx.db.write() as session:
            store(session)
            session.flush()
            seen = snapshot(session)
            raise _Undo
    except _Undo:
        pass
    return seen


def batch_input() -> list[tuple[PostCreate, str]]:
    """Namesakes of a stored post and of each other, new and old tags, a draft, a post
    scheduled for later, two categories; each with the guid it had elsewhere."""
    fields: list[dict[str, Any]] = [
        {"title": TITLE, "tags": ["财经", "快讯"]},
        {"title": TITLE, "tags": ["快讯"], "category": "licai"},
        {"title": "基金定投的三个误区", "tags": ["基金", "定投", "基金"]},
        {"title": TITLE, "status": "draft"},
        {"title": "基金定投的三个误区", "published_at": NOW + timedelta(days=2)},
        {"title": "Given slug", "slug": "given-slug", "tags": ["新标签"]},
        {"title": "每日财经快讯!", "tags": []},
    ]
    posts = []
    for n, extra in enumerate(fields):
        data = {
            "category": "jijin",
            "content": f"## 第{n}篇\n\n正文。",
            "status": "published",
            "published_at": NOW - timedelta(hours=n),
            **extra,
        }
        posts.append((PostCreate(**data), f"tag:old.example.cn,2026:{n}"))
    return posts


def one_by_one(ctx: Any) -> Callable[[Session], object]:
    def store(session: Session) -> object:
        return [
            post_service.insert_post(
                ctx, session, post_service.prepare_post(data), origin_link=f"x:{guid}", guid=guid
            )
            for data, guid in batch_input()
        ]

    return store


def in_one_batch(ctx: Any) -> Callable[[Session], object]:
    def store(session: Session) -> object:
        new = [
            post_service.NewPost(post_service.prepare_post(data), f"x:{guid}", guid)
            for data, guid in batch_input()
        ]
        return post_service.insert_posts(ctx, session, new)

    return store


@pytest.fixture
def site(ctx: Any, factory: Factory) -> Any:
    factory.category("jijin")
    factory.category("licai")
    create(ctx, TITLE, tags=["财经"])  # a namesake stored before, and a tag that exists
    return ctx


def test_a_batch_stores_what_one_by_one_creates_store(site: Any) -> None:
    before = stored_then_undone(site, lambda session: None)
    single = stored_then_undone(site, one_by_one(site))
    batch = stored_then_undone(site, in_one_batch(site))
    assert batch["posts"] == single["posts"]
    slugs = sorted(post[0] for post in batch["posts"].values())
    assert [slug for slug in slugs if slug.startswith(BASE)] == [
        BASE,  # stored before
        f"{BASE}-2",
        f"{BASE}-3",
        f"{BASE}-4",
        f"{BASE}-5",
    ]
    assert batch["tags"] == single["tags"]
    assert batch["logged"] == single["logged"]  # every published post logged, in order
    assert len(batch["logged"]) == len(before["logged"]) + 6  # not the draft
    # The same feeds changed, with the same Last-Modified; one version bump each, not six.
    for slug in ("jijin", "licai"):
        assert batch["versions"][slug][1] == single["versions"][slug][1]
    assert batch["versions"]["jijin"][0] == before["versions"]["jijin"][0] + 1
    assert batch["versions"]["licai"][0] == before["versions"]["licai"][0] + 1
    assert batch["site"][0] == before["site"][0] + 1
    assert single["versions"]["jijin"][0] == before["versions"]["jijin"][0] + 5


def test_a_batch_with_a_slug_stored_around_its_counter_matches_one_by_one_too(
    site: Any,
) -> None:
    create(site, "占位", slug=f"{BASE}-3")  # a given slug the counter does not know of
    single = stored_then_undone(site, one_by_one(site))
    batch = stored_then_undone(site, in_one_batch(site))
    assert batch["posts"] == single["posts"]
    assert batch["tags"] == single["tags"]
    assert batch["logged"] == single["logged"]


def test_a_batch_refused_by_a_taken_given_slug_raises_and_stores_nothing(site: Any) -> None:
    from feedsvc.errors import Conflict

    create(site, "占位", slug="given-slug")
    before = stored_then_undone(site, lambda session: None)
    with pytest.raises(Conflict, match="given-slug"), site.db.write() as session:
        in_one_batch(site)(session)
    assert stored_then_undone(site, lambda session: None) == before


def new_posts(count: int, offset: int) -> list[post_service.NewPost]:
    return [
        post_service.NewPost(
            post_service.prepare_post(
                PostCreate(
                    title=f"第{n}篇导入",
                    category="jijin" if n % 2 else "licai",
                    content=f"第{n}篇正文。",
                    status="published",
                    tags=[f"标签{n}", "共同"],
                )
            ),
            origin_link=f"https://old.example.cn/p/{n}",
        )
        for n in range(offset, offset + count)
    ]


def test_a_batch_costs_the_same_statements_whatever_its_size(site: Any) -> None:
    counts = []
    for size, offset in ((5, 0), (60, 100)):
        posts = new_posts(size, offset)
        with statements(site) as seen, site.db.write() as session:
            ids = post_service.insert_posts(site, session, posts)
        assert len(ids) == len(set(ids)) == size
        counts.append(len(seen))
    assert counts[0] == counts[1]
    with site.db.read() as session:
        guids = list(session.scalars(select(Post.guid).where(Post.origin_link.is_not(None))))
    assert len(set(guids)) == 65 and all(guid.startswith("tag:") for guid in guids)


def test_an_import_into_an_empty_site_marks_it_as_having_had_posts(
    ctx: Any, factory: Factory
) -> None:
    factory.category("jijin")
    factory.category("licai")
    with ctx.db.write() as session:
        post_service.insert_posts(ctx, session, new_posts(3, 0))
    with ctx.db.read() as session:
        assert session.scalar(select(SiteState.had_posts)) is True


def test_a_wordpress_slug_equal_to_one_generated_earlier_in_its_batch_is_renamed(
    site: Any,
) -> None:
    from feedsvc.wordpress.plan import Plan, PlannedPost
    from feedsvc.wordpress.store import store

    def planned(n: int, title: str, slug: str | None) -> PlannedPost:
        data = PostCreate(
            title=title, category="jijin", content="正文。", status="published", slug=slug
        )
        return PlannedPost(guid=f"https://wp.example.cn/?p={n}", wp_post_id=str(n), data=data)

    # The first has no WordPress slug: its generated one is what the second one asks for.
    posts = (planned(1, "基金定投", None), planned(2, "另一篇", "ji-jin-ding-tou"))
    report = store(site, Plan(posts=posts, skipped={}))
    assert (report.created, report.slugs_changed) == (2, 1)
    with site.db.read() as session:
        slugs = {title: slug for title, slug in session.execute(select(Post.title, Post.slug))}
    assert slugs["基金定投"] == "ji-jin-ding-tou"
    assert slugs["另一篇"] != "ji-jin-ding-tou"
    again = store(site, Plan(posts=posts, skipped={}))
    assert (again.created, again.already_imported) == (0, 2)
