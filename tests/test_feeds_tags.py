"""Tag feeds at /feeds/tags/{slug}.rss|.atom|.json: the tag's published posts, newest first,
each tag with its own validators (a write to a post tagged A changes A's ETag, not B's)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select
from werkzeug.http import parse_date

from feedsvc import create_app, migrate
from feedsvc.models import SiteState, Tag
from feedsvc.related import refresh
from feedsvc.schemas import PostCreate
from feedsvc.services import posts as post_service
from tests.conftest import BASE_URL, NOW
from tests.factories import Factory
from tests.feedcheck import NS, check_json_feed, parse

pytestmark = pytest.mark.usefixtures("backend")

DINGTOU = "/feeds/tags/ding-tou"  # 定投
ZHAIQUAN = "/feeds/tags/zhai-quan"  # 债券


def _titles(client: Any, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    if url.split("?")[0].endswith(".json"):
        return [item["title"] for item in check_json_feed(response.data)["items"]]
    parsed, _ = parse(response.data)
    return [entry.title for entry in parsed.entries]


def _validators(client: Any, url: str) -> tuple[str, str]:
    response = client.get(url)
    assert response.status_code == 200
    return response.headers["ETag"], response.headers["Last-Modified"]


def test_tag_feed_lists_the_tags_published_posts_newest_first(client, factory: Factory) -> None:
    factory.post("jijin", title="指数基金定投", tags=["定投"], published_at=NOW - timedelta(days=3))
    factory.post(
        "gupiao",
        title="股票定投也行吗",
        tags=["定投", "股票"],
        published_at=NOW - timedelta(days=1),
    )
    factory.post("jijin", title="债券基金", tags=["债券"])
    factory.post("jijin", title="草稿定投", tags=["定投"], status="draft")
    factory.post("jijin", title="明天的定投", tags=["定投"], published_at=NOW + timedelta(hours=1))
    expected = ["股票定投也行吗", "指数基金定投"]
    for fmt in ("rss", "atom", "json"):
        assert _titles(client, f"{DINGTOU}.{fmt}") == expected, fmt
    parsed, root = parse(client.get(f"{DINGTOU}.atom").data)
    assert parsed.feed.title == "定投 - 测试理财站"
    assert parsed.feed.subtitle == "测试理财站中标记为「定投」的文章"
    links = {link.get("rel"): link.get("href") for link in root.findall("atom:link", NS)}
    assert links == {"self": f"{BASE_URL}{DINGTOU}.atom", "alternate": f"{BASE_URL}/tags/ding-tou"}
    assert parsed.feed.id.endswith(":feeds/tags/ding-tou")
    _, rss = parse(client.get(f"{DINGTOU}.rss").data)
    self_link = rss.find("channel/atom:link[@rel='self']", NS).get("href")
    assert self_link == f"{BASE_URL}{DINGTOU}.rss"
    feed = check_json_feed(client.get(f"{DINGTOU}.json").data)
    assert feed["feed_url"] == f"{BASE_URL}{DINGTOU}.json"
    assert feed["items"][0]["tags"] == ["股票", "定投"]


def test_limit_and_the_default_length(client, factory: Factory, ctx) -> None:
    for _ in range(ctx.settings.feeds.default_length + 2):
        factory.post(tags=["定投"])
    assert len(_titles(client, f"{DINGTOU}.rss")) == ctx.settings.feeds.default_length
    assert len(_titles(client, f"{DINGTOU}.json?limit=3")) == 3
    cap = ctx.settings.feeds.max_length
    response = client.get(f"{DINGTOU}.rss?limit={cap + 1}")
    assert response.status_code == 400 and f"from 1 to {cap}" in response.get_data(as_text=True)


def test_a_write_changes_only_its_tags_validators(client, factory: Factory, clock, auth) -> None:
    first = factory.post(title="定投一", tags=["定投"])
    factory.post(title="债券一", tags=["债券"])
    dingtou, zhaiquan = (
        _validators(client, f"{DINGTOU}.rss"),
        _validators(client, f"{ZHAIQUAN}.rss"),
    )

    clock.advance(minutes=5)
    factory.post(title="定投二", tags=["定投"])  # a new post tagged 定投
    assert _validators(client, f"{ZHAIQUAN}.rss") == zhaiquan
    changed = _validators(client, f"{DINGTOU}.rss")
    assert changed[0] != dingtou[0]
    assert parse_date(changed[1]) == NOW + timedelta(minutes=5)
    assert _titles(client, f"{DINGTOU}.rss") == ["定投二", "定投一"]

    clock.advance(minutes=5)  # an edit of a post tagged 定投
    dingtou = changed
    edit = client.patch(f"/api/v1/posts/{first.id}", json={"title": "定投一（修订）"}, headers=auth)
    assert edit.status_code == 200
    assert _validators(client, f"{ZHAIQUAN}.rss") == zhaiquan
    assert _validators(client, f"{DINGTOU}.rss")[0] != dingtou[0]

    clock.advance(minutes=5)  # its tags change: both feeds change, a third tag's does not
    factory.post(title="股票一", tags=["股票"])
    gupiao = _validators(client, "/feeds/tags/gu-piao.atom")
    dingtou = _validators(client, f"{DINGTOU}.rss")
    moved = client.patch(f"/api/v1/posts/{first.id}", json={"tags": ["债券"]}, headers=auth)
    assert moved.status_code == 200
    assert _validators(client, f"{DINGTOU}.rss")[0] != dingtou[0]
    assert _validators(client, f"{ZHAIQUAN}.rss")[0] != zhaiquan[0]
    assert _validators(client, "/feeds/tags/gu-piao.atom") == gupiao
    assert _titles(client, f"{DINGTOU}.rss") == ["定投二"]
    assert _titles(client, f"{ZHAIQUAN}.json") == ["债券一", "定投一（修订）"]

    clock.advance(minutes=5)  # a draft tagged 定投 changes nothing
    dingtou = _validators(client, f"{DINGTOU}.rss")
    factory.post(title="草稿", tags=["定投"], status="draft")
    assert _validators(client, f"{DINGTOU}.rss") == dingtou

    clock.advance(minutes=5)  # deleting a post tagged 债券
    zhaiquan = _validators(client, f"{ZHAIQUAN}.rss")
    assert client.delete(f"/api/v1/posts/{first.id}", headers=auth).status_code == 204
    assert _validators(client, f"{ZHAIQUAN}.rss")[0] != zhaiquan[0]
    assert _validators(client, f"{DINGTOU}.rss") == dingtou
    assert _titles(client, f"{ZHAIQUAN}.rss") == ["债券一"]


def test_another_process_never_serves_older_bytes(client, factory: Factory, settings, clock):
    factory.post(title="定投一", tags=["定投"])
    other = create_app(settings=settings, clock=clock)
    try:
        reader = other.test_client()
        assert _titles(reader, f"{DINGTOU}.rss") == ["定投一"]
        factory.post(title="定投二", tags=["定投"])  # written through the first app
        assert _titles(reader, f"{DINGTOU}.rss") == ["定投二", "定投一"]
        assert reader.get(f"{DINGTOU}.rss").data == client.get(f"{DINGTOU}.rss").data
    finally:
        other.extensions["feedsvc"].db.dispose()


def test_category_rename_and_related_lists_reach_tag_feeds(client, factory, auth, ctx, clock):
    factory.post(title="基金定投入门", tags=["定投"])
    factory.post(title="债券基金怎么选", tags=["债券"])
    dingtou = _validators(client, f"{DINGTOU}.atom")
    clock.advance(minutes=1)
    renamed = client.patch(
        "/api/v1/categories/licai-fangfa", json={"name": "理财之道"}, headers=auth
    )
    assert renamed.status_code == 200
    assert _validators(client, f"{DINGTOU}.atom")[0] != dingtou[0]
    assert "理财之道" in client.get(f"{DINGTOU}.atom").get_data(as_text=True)
    refresh.rebuild(ctx, None)  # the related job: the two posts are alike
    body = client.get(f"{DINGTOU}.atom").get_data(as_text=True)
    assert "相关内容" in body and "债券基金怎么选" in body


def test_a_batch_bumps_its_tags(client, factory: Factory, ctx, clock) -> None:
    """The bulk path (imports, samples) keeps tag validators as one-by-one creates do."""
    factory.post(title="债券一", tags=["债券"])
    factory.post(title="定投一", tags=["定投"])
    dingtou, zhaiquan = (
        _validators(client, f"{DINGTOU}.rss"),
        _validators(client, f"{ZHAIQUAN}.rss"),
    )
    clock.advance(minutes=1)
    batch = [
        post_service.NewPost(
            post_service.prepare_post(
                PostCreate(
                    title=f"导入{n}",
                    category="licai-fangfa",
                    content="导入的正文。",
                    tags=["定投", "新标签"],
                    status="published",
                    published_at=NOW - timedelta(hours=n),
                )
            )
        )
        for n in range(3)
    ]
    with ctx.db.write() as session:
        post_service.insert_posts(ctx, session, batch)
    assert _validators(client, f"{ZHAIQUAN}.rss") == zhaiquan
    assert _validators(client, f"{DINGTOU}.rss")[0] != dingtou[0]
    assert _titles(client, f"{DINGTOU}.rss") == ["导入0", "导入1", "导入2", "定投一"]
    assert _titles(client, "/feeds/tags/xin-biao-qian.json") == ["导入0", "导入1", "导入2"]


def test_a_tag_named_in_chinese_redirects_to_its_slug(client, factory: Factory) -> None:
    factory.post(title="定投一", tags=["定投"])
    for fmt in ("rss", "atom", "json"):
        response = client.get(f"/feeds/tags/%E5%AE%9A%E6%8A%95.{fmt}")  # /feeds/tags/定投
        assert response.status_code == 301
        assert response.headers["Location"] == f"{DINGTOU}.{fmt}"
    limited = client.get("/feeds/tags/%E5%AE%9A%E6%8A%95.rss?limit=2")
    assert limited.headers["Location"] == f"{DINGTOU}.rss?limit=2"
    followed = client.get("/feeds/tags/%E5%AE%9A%E6%8A%95.json", follow_redirects=True)
    assert followed.status_code == 200
    assert [i["title"] for i in check_json_feed(followed.data)["items"]] == ["定投一"]
    # A name that is also another tag's slug is that tag: slugs win.
    bad = client.get("/feeds/tags/%E5%AE%9A%E6%8A%95.rss?limit=0")
    assert bad.status_code == 400


def test_a_tag_only_drafts_have_is_an_empty_valid_feed(client, factory: Factory, ctx) -> None:
    factory.post(title="草稿", tags=["定投"], status="draft")
    with ctx.db.read() as session:
        tag = session.scalar(select(Tag).where(Tag.slug == "ding-tou"))
        assert tag is not None and tag.feed_changed_at is None
    for fmt in ("rss", "atom", "json"):
        assert _titles(client, f"{DINGTOU}.{fmt}") == []
    response = client.get(f"{DINGTOU}.rss")
    assert response.headers["Last-Modified"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    again = client.get(f"{DINGTOU}.rss", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_http_caching_and_the_fast_path(app, client, factory: Factory) -> None:
    factory.post(tags=["定投"])
    for fmt in ("rss", "atom", "json"):
        url = f"{DINGTOU}.{fmt}"
        first = client.get(url)  # the view builds it
        hits = app.extensions["feedsvc.feed_cache"].hits
        warm = client.get(url)  # the fast path answers it
        assert app.extensions["feedsvc.feed_cache"].hits == hits + 1
        assert warm.data == first.data and warm.headers["ETag"] == first.headers["ETag"]
        assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
        head = client.head(url)
        assert head.status_code == 200 and head.data == b""
        zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip"


def test_unknown_tag_is_the_same_404_as_an_unknown_category(client, factory: Factory) -> None:
    factory.post(tags=["定投"])
    category = client.get("/feeds/no-such.rss")
    for url in ("/feeds/tags/no-such.rss", "/feeds/tags/%E6%B2%A1%E6%9C%89.json"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.mimetype == category.mimetype
        assert "There is no tag" in response.get_data(as_text=True)
    assert "no-such" in client.get("/feeds/tags/no-such.atom").get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/tags/a%00b.rss",  # NUL
        "/feeds/tags/..rss",
        "/feeds/tags/...rss",
        "/feeds/tags/%2E%2E.atom",
        "/feeds/tags/..%2F..%2Fetc.rss",
        "/feeds/tags/" + "长" * 5000 + ".rss",
        "/feeds/tags/" + "a" * 121 + ".json",
        "/feeds/tags/%D9%A3.rss",  # ٣
        "/feeds/tags/%F0%9F%92%B0.rss",  # 💰
        "/feeds/tags/ding-tou.xml",
        "/feeds/tags/.rss",
        "/feeds/tags/ding-tou",
        "/feeds/tags/%ED%A0%80.rss",  # an encoded lone surrogate
    ],
)
def test_hostile_tag_paths_are_404s(client, factory: Factory, path: str) -> None:
    factory.post(tags=["定投"])
    response = client.get(path)
    assert response.status_code == 404, path


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=abc", "limit=%D9%A3", "limit=99999999999999999999", "limit=1%00"]
)
def test_bad_limit_on_a_tag_feed_is_a_400(client, factory: Factory, query: str) -> None:
    factory.post(tags=["定投"])
    for url in (f"{DINGTOU}.rss", "/feeds/tags/%E5%AE%9A%E6%8A%95.rss", "/feeds/tags/x.rss"):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 400, (url, query)


def test_migration_0009_gives_existing_tags_validators(ctx, factory: Factory) -> None:
    """Tags stored before 0009 start at version 1, changed when the site feed last changed."""
    factory.post(tags=["定投"])
    config = migrate._config()
    try:
        with ctx.db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")
        migrate.upgrade(ctx.db)
        with ctx.db.read() as session:
            tag = session.scalar(select(Tag).where(Tag.slug == "ding-tou"))
            site = session.get(SiteState, 1)
            assert tag is not None and site is not None
            assert tag.content_version == 1 and tag.feed_changed_at == site.feed_changed_at
    finally:
        migrate.upgrade(ctx.db)  # the PostgreSQL schema is shared by the session


def test_fast_path_label_is_the_tag_rule_label(app) -> None:
    """Warm tag polls answered before Flask count under the same label as the view's."""
    from feedsvc.web.feeds import TAG_FEED_ROUTE
    from feedsvc.web.metrics import route_label

    rules = [r.rule for r in app.url_map.iter_rules() if r.endpoint == "feeds.tag_feed"]
    assert [route_label(rule) for rule in rules] == [TAG_FEED_ROUTE]


def test_a_scheduled_tagged_post_appears_when_due_without_a_write(client, factory, clock) -> None:
    factory.post(title="已发布", tags=["定投"])
    factory.post(title="定时发布", tags=["定投"], published_at=NOW + timedelta(hours=2))
    factory.post(title="别的标签定时", tags=["债券"], published_at=NOW + timedelta(hours=1))
    before = client.get(f"{DINGTOU}.rss")
    assert _titles(client, f"{DINGTOU}.rss") == ["已发布"]
    clock.advance(hours=1)  # another tag's post is due: this feed's bytes stay
    assert client.get(f"{DINGTOU}.rss").headers["ETag"] == before.headers["ETag"]
    assert _titles(client, f"{ZHAIQUAN}.rss") == ["别的标签定时"]
    clock.advance(hours=1)
    after = client.get(f"{DINGTOU}.rss")
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["Last-Modified"] == "Sat, 28 Nov 2026 06:00:00 GMT"
    assert _titles(client, f"{DINGTOU}.json") == ["定时发布", "已发布"]
