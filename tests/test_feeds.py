"""Feed content: every field a reader sees, parsed with feedparser and lxml, on each backend."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import BASE_URL, BEIJING, NOW
from tests.factories import Factory
from tests.feedcheck import NS, parse

pytestmark = pytest.mark.usefixtures("backend")


def test_category_rss_channel_and_items(client, factory: Factory) -> None:
    old, new = factory.two_fund_posts()
    response = client.get("/feeds/jijin.rss")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    parsed, root = parse(response.data)

    feed = parsed.feed
    assert feed.title == "基金 - 测试理财站"
    assert feed.subtitle == "指数基金、债券基金与定投。"
    assert feed.link == f"{BASE_URL}/categories/jijin"
    assert feed.language == "zh-CN"
    assert feed.generator.startswith("feedsvc")
    self_links = root.findall("channel/atom:link[@rel='self']", NS)
    assert [link.get("href") for link in self_links] == [f"{BASE_URL}/feeds/jijin.rss"]
    assert root.findtext("channel/lastBuildDate").endswith("+0800")

    assert [entry.title for entry in parsed.entries] == [new.title, old.title]
    first = parsed.entries[0]
    assert first.link == f"{BASE_URL}/posts/{new.slug}"
    assert first.id == new.guid
    item = root.find("channel/item")
    assert item.find("guid").get("isPermaLink") == "false"
    assert item.findtext("guid") == new.guid
    assert item.findtext("pubDate") == "Wed, 01 Apr 2026 08:00:00 +0800"
    assert item.findtext("dc:creator", namespaces=NS) == "周明远"
    category = item.find("category")
    assert category.text == "基金" and category.get("domain") == f"{BASE_URL}/categories/jijin"
    assert item.findtext("description") == "利率上行时债券价格下跌。"
    content = item.findtext("content:encoded", namespaces=NS)
    # Both pages, in order, with absolute links only.
    assert content.index("第一页") < content.index("第二页")
    assert f'href="{BASE_URL}/posts/guozhai"' in content
    assert f'src="{BASE_URL}/static/c.png"' in content
    assert 'href="/' not in content and 'src="/' not in content


def test_category_atom_feed_and_entries(client, factory: Factory) -> None:
    post = factory.post(
        title="年末家庭财务复盘",
        author="",
        published_at=datetime(2026, 11, 20, 19, 0, tzinfo=BEIJING),
    )
    response = client.get("/feeds/licai-fangfa.atom")
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    parsed, root = parse(response.data)
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    assert parsed.feed.title == "理财方法 - 测试理财站"
    assert parsed.feed.author == "测试编辑部"  # RFC 4287: an author at feed level
    assert parsed.feed.id.startswith("tag:feeds.example.test,")
    links = {link.get("rel"): link.get("href") for link in root.findall("atom:link", NS)}
    assert links == {
        "self": f"{BASE_URL}/feeds/licai-fangfa.atom",
        "alternate": f"{BASE_URL}/categories/licai-fangfa",
    }
    (entry,) = parsed.entries
    assert entry.id == post.guid
    assert entry.title == "年末家庭财务复盘"
    assert entry.published == "2026-11-20T19:00:00+08:00"
    assert entry.updated == "2026-11-20T19:00:00+08:00"
    assert entry.author == "测试编辑部"  # no author given: the site's
    assert entry.content[0].type == "text/html"
    assert "理财有风险，投资需谨慎。" in entry.content[0].value
    assert entry.summary.startswith("小标题")
    assert entry.tags[0].term == "理财方法"
    assert entry.tags[0].scheme == f"{BASE_URL}/categories/licai-fangfa"
    assert root.find("atom:entry/atom:content", NS).get("type") == "html"
    assert root.findtext("atom:updated", namespaces=NS) == "2026-11-28T12:00:00+08:00"


def test_site_feed_has_every_category_newest_first(client, factory: Factory) -> None:
    a = factory.post("licai-fangfa", published_at=NOW - timedelta(days=3))
    b = factory.post("jijin", published_at=NOW - timedelta(days=1))
    c = factory.post("gupiao", published_at=NOW - timedelta(days=2))
    for fmt in ("rss", "atom"):
        parsed, _ = parse(client.get(f"/feeds/all.{fmt}").data)
        assert [e.id for e in parsed.entries] == [b.guid, c.guid, a.guid]
        assert parsed.feed.title == "测试理财站"
        assert parsed.feed.link == f"{BASE_URL}/"


def test_drafts_and_scheduled_posts_are_absent(client, factory: Factory) -> None:
    visible = factory.post(title="已发布")
    factory.post(title="草稿", status="draft")
    factory.post(title="定时发布", published_at=NOW + timedelta(hours=2))
    for url in ("/feeds/licai-fangfa.rss", "/feeds/all.atom"):
        parsed, _ = parse(client.get(url).data)
        assert [e.title for e in parsed.entries] == [visible.title]


def test_scheduled_post_appears_when_due_without_any_write(client, factory: Factory, clock) -> None:
    factory.post(title="已发布")
    factory.post(title="定时发布", published_at=NOW + timedelta(hours=2))
    before = client.get("/feeds/licai-fangfa.rss")
    assert client.get("/feeds/licai-fangfa.rss").headers["ETag"] == before.headers["ETag"]
    clock.advance(hours=2)
    after = client.get("/feeds/licai-fangfa.rss")
    parsed, _ = parse(after.data)
    assert [e.title for e in parsed.entries] == ["定时发布", "已发布"]
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["Last-Modified"] == "Sat, 28 Nov 2026 06:00:00 GMT"
    stale = client.get("/feeds/licai-fangfa.rss", headers={"If-None-Match": before.headers["ETag"]})
    assert stale.status_code == 200


def test_limit_parameter_and_cap(client, factory: Factory, app) -> None:
    for _ in range(5):
        factory.post()
    parsed, root = parse(client.get("/feeds/licai-fangfa.rss?limit=2").data)
    assert len(parsed.entries) == 2
    self_link = root.find("channel/atom:link[@rel='self']", NS).get("href")
    assert self_link == f"{BASE_URL}/feeds/licai-fangfa.rss?limit=2"
    assert len(parse(client.get("/feeds/licai-fangfa.atom").data)[0].entries) == 5


def test_category_feed_length_is_the_default_and_max_bounds_limit(client, factory: Factory, ctx):
    factory.category("jijin", feed_length=3)
    for _ in range(6):
        factory.post("jijin")
    assert len(parse(client.get("/feeds/jijin.rss").data)[0].entries) == 3
    cap = ctx.settings.feeds.max_length
    assert len(parse(client.get(f"/feeds/jijin.rss?limit={cap}").data)[0].entries) == 6
    # Beyond the maximum: a 400 that states the real bounds, not a silent clamp.
    response = client.get(f"/feeds/jijin.rss?limit={cap + 1}")
    assert response.status_code == 400
    assert f"from 1 to {cap}" in response.get_data(as_text=True)


def test_empty_category_feed_is_valid(client, factory: Factory) -> None:
    factory.category("gupiao")
    for fmt in ("rss", "atom"):
        response = client.get(f"/feeds/gupiao.{fmt}")
        parsed, _ = parse(response.data)
        assert response.status_code == 200 and parsed.entries == []


def test_xml_illegal_characters_never_reach_a_feed(client, factory: Factory, auth) -> None:
    factory.category()
    body = {
        "title": "控制\x00字符\x08测试\ufffe",
        "category": "licai-fangfa",
        "content": "正文\x0b含有\x1f非法字符\uffff。",
        "summary": "摘要\x0c",
        "tags": ["标签\x01"],
        "author": "作者\x02",
    }
    created = client.post("/api/v1/posts", json=body, headers=auth)
    assert created.status_code == 201
    assert created.json["title"] == "控制字符测试"
    for fmt in ("rss", "atom"):
        parsed, _ = parse(client.get(f"/feeds/licai-fangfa.{fmt}").data)
        assert parsed.entries[0].title == "控制字符测试"
        assert "正文含有非法字符。" in parsed.entries[0].content[0].value


def test_guid_survives_title_slug_and_category_changes(client, factory: Factory, auth) -> None:
    factory.category("jijin")
    post = factory.post(title="旧标题")
    response = client.patch(
        f"/api/v1/posts/{post.id}",
        json={"title": "新标题", "slug": "xin-biao-ti", "category": "jijin"},
        headers=auth,
    )
    assert response.status_code == 200
    parsed, _ = parse(client.get("/feeds/jijin.atom").data)
    assert parsed.entries[0].id == post.guid
    assert parsed.entries[0].link == f"{BASE_URL}/posts/xin-biao-ti"
    assert parse(client.get("/feeds/licai-fangfa.atom").data)[0].entries == []


def test_sanitized_html_in_feed(client, factory: Factory) -> None:
    factory.post(
        format="html", content='<p>安全</p><script>alert("x")</script><a href="javascript:x">链</a>'
    )
    parsed, _ = parse(client.get("/feeds/licai-fangfa.rss").data)
    content = parsed.entries[0].content[0].value
    assert "安全" in content and "alert" not in content and "javascript" not in content


def test_plain_text_summary_is_escaped_for_rss(client, factory: Factory) -> None:
    factory.post(summary="收益 < 3% & 风险 > 0 的<b>产品</b>")
    _, root = parse(client.get("/feeds/licai-fangfa.rss").data)
    assert root.findtext("channel/item/description") == (
        "收益 &lt; 3% &amp; 风险 &gt; 0 的&lt;b&gt;产品&lt;/b&gt;"
    )
    atom, _ = parse(client.get("/feeds/licai-fangfa.atom").data)
    assert atom.entries[0].summary == "收益 < 3% & 风险 > 0 的<b>产品</b>"


def test_feed_cache_keeps_at_most_its_entries_and_clears() -> None:
    """The cache is bounded (feeds.cache_entries): the least recently used feed goes first."""
    from feedsvc.feeds.cache import FeedCache, FeedKey, RenderedFeed

    cache = FeedCache(max_entries=2)
    feed = RenderedFeed.of(
        "<rss>理财</rss>".encode(),
        last_modified=NOW,
        media_type="application/rss+xml",
        valid_until=None,
    )
    keys = [FeedKey(slug, "rss", None, 1) for slug in ("jijin", "baoxian", "licai-fangfa")]
    cache.put(keys[0], feed)
    cache.put(keys[1], feed)
    assert cache.get(keys[0], NOW) is feed  # jijin is now the most recently used
    cache.put(keys[2], feed)
    assert cache.get(keys[1], NOW) is None  # baoxian was evicted
    assert cache.get(keys[0], NOW) is feed and cache.get(keys[2], NOW) is feed
    cache.clear()
    assert all(cache.get(key, NOW) is None for key in keys)
