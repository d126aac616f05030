"""/api/v1/posts: create, read, list with filters and cursor, edit, delete."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from feedsvc.models import Post
from tests.conftest import BASE_URL, BEIJING, NOW
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

BODY = {
    "title": "如何用定投平滑基金波动",
    "category": "jijin",
    "content": "## 为什么定投\n\n每月固定买入。\n\n<!--nextpage-->\n\n## 何时止盈\n\n目标收益率。",
    "format": "markdown",
    "author": "林晓",
    "tags": ["定投", "指数基金"],
    "status": "published",
    "published_at": "2026-03-15T09:30:00+08:00",
}


@pytest.fixture
def jijin(factory: Factory):  # type: ignore[no-untyped-def]
    return factory.category("jijin")


def test_create_returns_every_field(client, auth, jijin, ctx) -> None:
    response = client.post("/api/v1/posts", json=BODY, headers=auth)
    assert response.status_code == 201
    post = response.json
    assert response.headers["Location"] == f"/api/v1/posts/{post['id']}"
    assert post["slug"] == "ru-he-yong-ding-tou-ping-hua-ji-jin-bo-dong"
    assert post["guid"].startswith("tag:feeds.example.test,2026-11-28:post/")
    assert post["url"] == f"{BASE_URL}/posts/{post['slug']}"
    assert post["feeds"] == {
        "rss": f"{BASE_URL}/feeds/jijin.rss",
        "atom": f"{BASE_URL}/feeds/jijin.atom",
    }
    assert post["title"] == BODY["title"] and post["category"] == "jijin"
    assert post["author"] == "林晓" and post["tags"] == ["定投", "指数基金"]
    assert post["status"] == "published" and post["format"] == "markdown"
    assert post["content"] == BODY["content"]
    assert post["page_count"] == 2
    assert post["pages"][0] == "<h2>为什么定投</h2>\n<p>每月固定买入。</p>"
    assert post["summary"] == "为什么定投 每月固定买入。 何时止盈 目标收益率。"
    assert post["published_at"] == "2026-03-15T09:30:00+08:00"
    assert post["created_at"] == NOW.isoformat()
    with ctx.db.read() as session:
        stored = session.scalar(select(Post))
        assert stored.published_at == datetime(
            2026, 3, 15, 1, 30, tzinfo=stored.published_at.tzinfo
        )
        assert stored.published_at.utcoffset() == timedelta(0)  # stored as UTC, read back aware


def test_naive_time_is_read_in_site_timezone(client, auth, jijin) -> None:
    body = {**BODY, "published_at": "2026-03-15 09:30"}
    response = client.post("/api/v1/posts", json=body, headers=auth)
    assert response.json["published_at"] == "2026-03-15T09:30:00+08:00"
    utc = {**BODY, "title": "UTC", "published_at": "2026-03-15T01:30:00Z"}
    assert client.post("/api/v1/posts", json=utc, headers=auth).json["published_at"] == (
        "2026-03-15T09:30:00+08:00"
    )


def test_auto_slugs_are_unique_and_stable(client, auth, jijin) -> None:
    first = client.post("/api/v1/posts", json=BODY, headers=auth).json
    second = client.post("/api/v1/posts", json=BODY, headers=auth).json
    assert second["slug"] == first["slug"] + "-2"
    edited = client.patch(
        f"/api/v1/posts/{first['id']}", json={"title": "完全不同的标题"}, headers=auth
    ).json
    assert edited["slug"] == first["slug"] and edited["guid"] == first["guid"]


def test_defaults_published_now_and_summary_derived(client, auth, jijin) -> None:
    body = {"title": "简短", "category": "jijin", "content": "只有一句话。"}
    post = client.post("/api/v1/posts", json=body, headers=auth).json
    assert post["status"] == "published"
    assert post["published_at"] == NOW.isoformat()
    assert post["summary"] == "只有一句话。"
    assert post["author"] == ""


def test_html_format_is_sanitized(client, auth, jijin) -> None:
    body = {
        **BODY,
        "format": "html",
        "content": "<p>段落</p><script>alert(1)</script><img src=x onerror=alert(1)>",
    }
    post = client.post("/api/v1/posts", json=body, headers=auth).json
    assert post["content_html"] == '<p>段落</p><img src="x">'


def test_get_one_and_404(client, factory: Factory) -> None:
    post = factory.post()
    response = client.get(f"/api/v1/posts/{post.id}")
    assert response.status_code == 200 and response.json["guid"] == post.guid
    missing = client.get("/api/v1/posts/99999")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"


def test_list_filters(client, factory: Factory, auth) -> None:
    factory.category("jijin")
    a = factory.post("jijin", tags=["定投"])
    b = factory.post("licai-fangfa", tags=["预算"])
    draft = factory.post("jijin", status="draft", tags=["定投"])
    by_category = client.get("/api/v1/posts?category=jijin").json
    assert [p["id"] for p in by_category["items"]] == [a.id]  # anonymous: no drafts
    assert by_category["next_cursor"] is None
    authed = client.get("/api/v1/posts?category=jijin", headers=auth).json
    assert [p["id"] for p in authed["items"]] == [draft.id, a.id]
    assert [p["id"] for p in client.get("/api/v1/posts?tag=预算").json["items"]] == [b.id]
    drafts = client.get("/api/v1/posts?status=draft", headers=auth).json
    assert [p["id"] for p in drafts["items"]] == [draft.id]
    assert client.get("/api/v1/posts?tag=没有这个标签").json == {"items": [], "next_cursor": None}


def test_cursor_pagination_walks_everything_once(client, factory: Factory) -> None:
    ids = [factory.post().id for _ in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/v1/posts?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).json
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids)) and pages == 3


def test_patch_changes_only_given_fields(client, factory: Factory, auth, clock) -> None:
    post = factory.post(summary="手写摘要")
    clock.advance(minutes=5)
    response = client.patch(
        f"/api/v1/posts/{post.id}", json={"content": "新的正文。", "tags": ["新标签"]}, headers=auth
    )
    assert response.status_code == 200
    body = response.json
    assert body["content_html"] == "<p>新的正文。</p>"
    assert body["summary"] == "手写摘要"  # given, so kept
    assert body["tags"] == ["新标签"] and body["title"] == post.title
    assert body["updated_at"] == (NOW + timedelta(minutes=5)).isoformat()
    rederived = client.patch(f"/api/v1/posts/{post.id}", json={"summary": ""}, headers=auth)
    assert rederived.json["summary"] == "新的正文。"


def test_patch_with_no_change_keeps_updated_at(client, factory: Factory, auth, clock) -> None:
    post = factory.post()
    before = client.get(f"/api/v1/posts/{post.id}").json
    clock.advance(minutes=5)
    same = client.patch(f"/api/v1/posts/{post.id}", json={"title": post.title}, headers=auth)
    assert same.json["updated_at"] == before["updated_at"]


def test_unpublish_removes_from_feed(client, factory: Factory, auth) -> None:
    post = factory.post()
    client.patch(f"/api/v1/posts/{post.id}", json={"status": "draft"}, headers=auth)
    assert b"<item>" not in client.get("/feeds/licai-fangfa.rss").data
    assert client.get(f"/api/v1/posts/{post.id}").status_code == 401


def test_delete(client, factory: Factory, auth, ctx) -> None:
    post = factory.post()
    response = client.delete(f"/api/v1/posts/{post.id}", headers=auth)
    assert response.status_code == 204 and response.data == b""
    assert client.get(f"/api/v1/posts/{post.id}").status_code == 404
    assert client.delete(f"/api/v1/posts/{post.id}", headers=auth).status_code == 404
    assert factory.counts()["posts"] == 0


def test_post_page_serves_its_pages_one_at_a_time(client, factory: Factory) -> None:
    post = factory.post(
        content="第一页内容\n\n<!--nextpage-->\n\n第二页内容",
        title="两页的文章",
        published_at=datetime(2026, 3, 1, 8, 0, tzinfo=BEIJING),
    )
    page = client.get(f"/posts/{post.slug}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    # One page at a time (tests/test_pages.py follows the links).
    assert "两页的文章" in text and "第一页内容" in text and "第二页内容" not in text
    assert "共2页" in text and 'type="application/atom+xml"' in text
    second = client.get(f"/posts/{post.slug}?page=2").get_data(as_text=True)
    assert "第二页内容" in second and "第一页内容" not in second
    assert client.get("/posts/no-such-post").status_code == 404
    draft = factory.post(status="draft")
    assert client.get(f"/posts/{draft.slug}").status_code == 404
    assert client.get("/categories/licai-fangfa").status_code == 200
    assert client.get("/").status_code == 200


# -- a concurrent writer between our check and our write --------------------------------------
# The check (slug_taken) is made to miss the other writer's row, as it does when that row is
# committed just after the check: the unique index is then what catches it.


def lagging_check(monkeypatch, misses: int | None) -> None:  # type: ignore[no-untyped-def]
    """slug_taken misses the first ``misses`` rows (every row when None)."""
    from feedsvc.repo import posts as post_repo

    real = post_repo.slug_taken
    calls = iter(range(10**6))

    def lagging(session, slug: str, **kwargs) -> bool:  # type: ignore[no-untyped-def]
        if misses is None or next(calls) < misses:
            return False
        return real(session, slug, **kwargs)

    monkeypatch.setattr(post_repo, "slug_taken", lagging)


def test_a_generated_slug_taken_behind_the_counter_gets_the_next_one(
    client, auth, jijin, factory: Factory, ctx
) -> None:
    """Rows stored around the slug counter (a restore, an older database) are found by the
    unique index; the counter catches up and the create still succeeds."""
    from sqlalchemy import delete

    from feedsvc.models import SlugCounter

    first = client.post("/api/v1/posts", json=BODY, headers=auth).json
    with ctx.db.write() as session:
        session.execute(delete(SlugCounter))
    second = client.post("/api/v1/posts", json=BODY, headers=auth)
    assert second.status_code == 201, second.json
    assert second.json["slug"] == first["slug"] + "-2"
    assert factory.counts()["posts"] == 2


def test_a_slug_taken_meanwhile_is_a_conflict(
    client, auth, jijin, factory: Factory, monkeypatch
) -> None:
    first = client.post("/api/v1/posts", json=BODY, headers=auth).json
    other = client.post("/api/v1/posts", json={**BODY, "slug": "ling-yi-pian"}, headers=auth).json
    before = factory.snapshot()
    lagging_check(monkeypatch, misses=None)
    given = client.post("/api/v1/posts", json={**BODY, "slug": first["slug"]}, headers=auth)
    assert given.status_code == 409
    assert given.json["error"]["fields"] == {"slug": "is already taken"}
    edited = client.patch(
        f"/api/v1/posts/{other['id']}", json={"slug": first["slug"]}, headers=auth
    )
    assert edited.status_code == 409
    assert edited.json["error"]["fields"] == {"slug": "is already taken"}
    assert factory.snapshot() == before


def test_patch_tags_links_what_was_added_and_unlinks_what_was_removed(
    client, factory: Factory, auth, ctx, clock
) -> None:
    from feedsvc.models import Tag, post_tags

    factory.category("jijin")
    post_id = client.post(
        "/api/v1/posts", json={**BODY, "tags": ["定投", "指数基金"]}, headers=auth
    ).json["id"]

    def stored() -> list[str]:
        with ctx.db.read() as session:
            return sorted(
                session.scalars(
                    select(Tag.name)
                    .join(post_tags, post_tags.c.tag_id == Tag.id)
                    .where(post_tags.c.post_id == post_id)
                )
            )

    def patch_tags(tags: list[str]) -> dict:
        clock.advance(minutes=1)
        response = client.patch(f"/api/v1/posts/{post_id}", json={"tags": tags}, headers=auth)
        assert response.status_code == 200, response.json
        return response.json

    added = patch_tags(["定投", "指数基金", "长期主义"])
    assert added["tags"] == ["定投", "指数基金", "长期主义"] and stored() == sorted(added["tags"])
    swapped = patch_tags(["债券", "定投"])  # one kept, two removed, one new
    assert swapped["tags"] == ["债券", "定投"] and stored() == ["债券", "定投"]
    feed = client.get("/feeds/jijin.rss").get_data(as_text=True)
    assert "<category>债券</category>" in feed and "长期主义</category>" not in feed
    # The same tags in another order change nothing: updated_at stays.
    same = patch_tags(["定投", "债券"])
    assert same["updated_at"] == swapped["updated_at"] and stored() == ["债券", "定投"]
    cleared = patch_tags([])
    assert cleared["tags"] == [] and stored() == []
