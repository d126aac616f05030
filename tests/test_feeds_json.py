"""JSON Feed 1.1 at /feeds/{category}.json and /feeds/all.json: every member checked against
the spec (tests/feedcheck.py), the same items as RSS and Atom, and the same HTTP caching."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta
from typing import Any

import pytest

from feedsvc import create_app
from feedsvc.related import refresh
from tests.conftest import BASE_URL, NOW
from tests.factories import Factory
from tests.feedcheck import JSON_FEED_VERSION, check_json_feed, parse

pytestmark = pytest.mark.usefixtures("backend")

FEED = "/feeds/jijin.json"


def _json(client: Any, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/feed+json"
    return check_json_feed(response.data)


def test_category_json_feed_members(client, factory: Factory) -> None:
    old, new = factory.two_fund_posts()
    feed = _json(client, FEED)
    assert feed["version"] == JSON_FEED_VERSION
    assert feed["title"] == "基金 - 测试理财站"
    assert feed["description"] == "指数基金、债券基金与定投。"
    assert feed["home_page_url"] == f"{BASE_URL}/categories/jijin"
    assert feed["feed_url"] == f"{BASE_URL}/feeds/jijin.json"
    assert feed["language"] == "zh-CN"
    assert feed["authors"] == [{"name": "测试编辑部"}]

    assert [item["id"] for item in feed["items"]] == [new.guid, old.guid]
    first, second = feed["items"]
    assert first["url"] == f"{BASE_URL}/posts/{new.slug}"
    assert first["title"] == "债券基金为什么也会亏"
    assert first["summary"] == "利率上行时债券价格下跌。"
    assert first["date_published"] == "2026-04-01T08:00:00+08:00"
    assert first["date_modified"] == "2026-04-01T08:00:00+08:00"
    assert first["authors"] == [{"name": "周明远"}]
    assert first["language"] == "zh-CN"
    # Every page, in order, links absolute.
    content = first["content_html"]
    assert content.index("第一页") < content.index("第二页")
    assert f'href="{BASE_URL}/posts/guozhai"' in content
    assert f'src="{BASE_URL}/static/c.png"' in content
    # The category first, then the tags (stored by name), as RSS and Atom carry them.
    assert second["tags"] == ["基金", "ETF", "定投"]
    assert first["tags"] == ["基金", "储蓄", "预算"]


def test_same_items_as_rss_and_atom(client, factory: Factory) -> None:
    factory.post("licai-fangfa", published_at=NOW - timedelta(days=3))
    factory.post("jijin", published_at=NOW - timedelta(days=1), author="")
    factory.post("gupiao", published_at=NOW - timedelta(days=2))
    for slug in ("all", "jijin", "licai-fangfa"):
        feed = _json(client, f"/feeds/{slug}.json")
        rss, _ = parse(client.get(f"/feeds/{slug}.rss").data)
        atom, _ = parse(client.get(f"/feeds/{slug}.atom").data)
        assert [i["id"] for i in feed["items"]] == [e.id for e in rss.entries]
        assert [i["id"] for i in feed["items"]] == [e.id for e in atom.entries]
        for item, entry in zip(feed["items"], atom.entries, strict=True):
            assert item["title"] == entry.title
            assert item["url"] == entry.link
            assert item["summary"] == entry.summary
            assert item["content_html"] == entry.content[0].value
            assert datetime.fromisoformat(item["date_published"]) == datetime.fromisoformat(
                entry.published
            )
    site = _json(client, "/feeds/all.json")
    assert site["title"] == "测试理财站" and site["home_page_url"] == f"{BASE_URL}/"
    # No author given: the site's, as in Atom.
    assert [i["authors"] for i in site["items"]] == [
        [{"name": "测试编辑部"}],
        [{"name": "林晓"}],
        [{"name": "林晓"}],
    ]


def test_hostile_title_round_trips(client, factory: Factory) -> None:
    title = "基金\"定投\"</script><script>alert('x')</script> & 「收益」\\n"
    post = factory.post("jijin", title=title, summary='摘要 "引号" <b>粗体</b>\u2028换行')
    response = client.get(FEED)
    feed = check_json_feed(response.data)
    (item,) = feed["items"]
    assert item["title"] == post.title == title
    assert item["summary"] == '摘要 "引号" <b>粗体</b>\u2028换行'
    # Chinese is sent as UTF-8, not \u escapes.
    assert "「收益」".encode() in response.data


def test_related_block_is_in_content_html(client, factory: Factory, ctx) -> None:
    factory.post("jijin", title="基金定投入门", tags=["定投"])
    factory.post("jijin", title="债券基金怎么选", tags=["定投"])
    assert all("相关内容" not in i["content_html"] for i in _json(client, FEED)["items"])
    refresh.rebuild(ctx, None)  # the related job: the two posts are alike
    items = _json(client, FEED)["items"]
    atom, _ = parse(client.get("/feeds/jijin.atom").data)
    assert "相关内容" in items[0]["content_html"] and "基金定投入门" in items[0]["content_html"]
    assert [i["content_html"] for i in items] == [e.content[0].value for e in atom.entries]


def test_empty_feed_and_illegal_characters(client, factory: Factory, auth) -> None:
    factory.category("jijin")
    assert _json(client, FEED)["items"] == []
    body = {
        "title": "控制\x00字符\x08测试\ufffe",
        "category": "jijin",
        "content": "正文\x0b含有\x1f非法字符\uffff。",
        "tags": ["标签\x01"],
    }
    assert client.post("/api/v1/posts", json=body, headers=auth).status_code == 201
    (item,) = _json(client, FEED)["items"]
    assert item["title"] == "控制字符测试" and "正文含有非法字符。" in item["content_html"]


def test_validators_304_head_gzip(client, factory: Factory, ctx, clock) -> None:
    factory.post("jijin", title="第一篇")
    first = client.get(FEED)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == f"public, max-age={ctx.settings.feeds.cache_max_age}"
    assert first.headers["Vary"] == "Accept-Encoding"
    assert first.headers["Content-Length"] == str(len(first.data))
    assert first.headers["Last-Modified"] == "Sat, 28 Nov 2026 04:00:00 GMT"
    # The feed cache is keyed by format: the RSS of the same version is other bytes.
    assert client.get("/feeds/jijin.rss").headers["ETag"] != etag
    assert client.get(FEED, headers={"If-None-Match": etag}).status_code == 304
    since = client.get(FEED, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304 and since.data == b""
    assert "Content-Type" not in since.headers and since.headers["ETag"] == etag
    head = client.head(FEED)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(first.data))
    zipped = client.get(FEED, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == first.data
    assert zipped.headers["ETag"] != etag
    assert client.get(FEED, headers={"If-None-Match": zipped.headers["ETag"]}).status_code == 304
    clock.advance(minutes=5)
    factory.post("jijin", title="第二篇")
    after = client.get(FEED, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    assert [i["title"] for i in check_json_feed(after.data)["items"]] == ["第二篇", "第一篇"]


def test_fast_path_serves_json_like_the_view(app, client, factory: Factory) -> None:
    factory.post("jijin")
    view = client.get(FEED)  # a miss: the Flask view builds and caches it
    hits = app.extensions["feedsvc.feed_cache"].hits
    warm = client.get(FEED)  # the WSGI fast path answers from the cache entry
    assert app.extensions["feedsvc.feed_cache"].hits == hits + 1
    assert warm.data == view.data and warm.headers["ETag"] == view.headers["ETag"]
    assert warm.headers["Content-Type"] == "application/feed+json"
    assert client.head(FEED, headers={"If-None-Match": view.headers["ETag"]}).status_code == 304


def test_limit_and_errors(client, factory: Factory, settings, clock) -> None:
    for _ in range(3):
        factory.post("jijin")
    feed = _json(client, f"{FEED}?limit=2")
    assert len(feed["items"]) == 2 and feed["feed_url"] == f"{BASE_URL}{FEED}?limit=2"
    for bad in ("0", "abc", "%D9%A3", "99999999999999999999", "1%00"):
        response = client.get(f"{FEED}?limit={bad}")
        assert response.status_code == 400, bad
    missing = client.get("/feeds/no-such.json")
    assert missing.status_code == 404 and "no-such" in missing.get_data(as_text=True)
    # Another process (its own caches) serves the same bytes.
    other = create_app(settings=settings, clock=clock)
    try:
        assert other.test_client().get(FEED).data == client.get(FEED).data
    finally:
        other.extensions["feedsvc"].db.dispose()


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"version": "https://jsonfeed.org/version/1"}, "version"),
        ({"title": ""}, "title"),
        ({"items": {}}, "items"),
        ({"feed_url": "/feeds/x.json"}, "not a URL"),
        ({"authors": [{}]}, "author needs"),
        ({"extra": 1}, "does not define"),
        ({"items": [{"id": 1, "content_html": "x"}]}, "id"),
        ({"items": [{"id": "a"}]}, "no content"),
        ({"items": [{"id": "a", "content_text": "x", "date_published": "2026-01-01"}]}, "3339"),
        ({"items": [{"id": "a", "content_text": "x", "tags": [1]}]}, "tags"),
        ({"items": [{"id": "a", "content_text": "x"}, {"id": "a", "content_text": "y"}]}, "twice"),
    ],
)
def test_the_validator_refuses_what_the_spec_forbids(broken: dict[str, Any], message: str) -> None:
    import json

    feed = {"version": JSON_FEED_VERSION, "title": "理财", "items": [], **broken}
    with pytest.raises(AssertionError, match=message):
        check_json_feed(json.dumps(feed).encode())
