"""The reader-facing site: pages, paging, multi-page posts, tags, static files, validators."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote, urljoin

import lxml.html
import pytest
from pytest_httpserver import HTTPServer

from feedsvc.related import refresh
from feedsvc.schemas import SourceCreate
from feedsvc.services import sources as source_service
from feedsvc.sources.poll import poll_sources
from feedsvc.web.pages import PAGE_CACHE, PAGE_SIZE
from feedsvc.web.static import FOLDER, content_hash
from tests.conftest import BASE_URL, NOW
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

MULTI_PAGE = (
    "## 第一部分\n\n先记账。\n\n<!--nextpage-->\n\n## 第二部分\n\n再预算。"
    "\n\n<!--nextpage-->\n\n## 第三部分\n\n最后配置资产。"
)


def html(response: Any) -> Any:
    assert response.mimetype == "text/html", response.status
    return lxml.html.fromstring(response.get_data(as_text=True))


def texts(tree: Any, xpath: str) -> list[str]:
    return [" ".join(node.text_content().split()) for node in tree.xpath(xpath)]


def path_of(url: str) -> str:
    assert url.startswith(BASE_URL), url
    return url.removeprefix(BASE_URL) or "/"


def pager_links(tree: Any) -> dict[str, str]:
    return {a.text_content(): a.get("href") for a in tree.xpath('//nav[@class="pager"]//a')}


def alternates(tree: Any) -> list[tuple[str, str, str]]:
    return [
        (link.get("type"), link.get("title"), link.get("href"))
        for link in tree.xpath('//head/link[@rel="alternate"]')
    ]


# -- lists ----------------------------------------------------------------------------------------


def test_home_lists_the_latest_posts_with_category_and_beijing_time(
    client, factory: Factory
) -> None:
    factory.category("jijin")
    post = factory.post("jijin", title="指数基金怎么选", summary="先看跟踪误差。")
    tree = html(client.get("/"))
    assert tree.xpath("//html/@lang") == ["zh-CN"]
    assert texts(tree, "//ul[@class='categories']//a") == ["基金"]
    (item,) = tree.xpath("//ul[@class='posts']/li")
    assert texts(item, ".//h2/a") == ["指数基金怎么选"]
    assert item.xpath(".//h2/a/@href") == [f"{BASE_URL}/posts/{post.slug}"]
    published = post.published_at.astimezone(NOW.tzinfo)
    meta = texts(item, ".//p[@class='meta']")[0]
    assert meta == f"基金 · 发布时间 {published.strftime('%Y-%m-%d %H:%M')}"
    assert texts(item, ".//p[@class='summary']") == ["先看跟踪误差。"]
    assert not tree.xpath("//nav[@class='pager']")  # one page: no pager


def test_lists_are_paged_with_previous_and_next(client, factory: Factory) -> None:
    titles = [factory.post(title=f"第{n}篇记账心得").title for n in range(PAGE_SIZE * 2 + 5)]
    newest_first = titles[::-1]
    seen, url, pages = [], "/categories/licai-fangfa", 0
    while url:
        tree = html(client.get(url))
        pages += 1
        seen += texts(tree, "//ul[@class='posts']//h2/a")
        links = pager_links(tree)
        assert ("上一页" in links) == (pages > 1)
        assert texts(tree, "//nav[@class='pager']/span[@class='current']") == [f"第{pages}页"]
        assert not tree.xpath("//nav[@class='pager']/span[@class='total']")  # lists: no count
        url = path_of(links["下一页"]) if "下一页" in links else ""
    assert pages == 3 and seen == newest_first
    last = html(client.get("/categories/licai-fangfa?page=3"))
    assert path_of(pager_links(last)["上一页"]) == "/categories/licai-fangfa?page=2"
    assert path_of(pager_links(html(client.get("/?page=2")))["上一页"]) == "/"
    # Page 1 has one address; ?page=1 is the same page (its canonical link says so).
    first, again = client.get("/"), client.get("/?page=1")
    assert first.headers["ETag"] == again.headers["ETag"]
    assert html(again).xpath("//link[@rel='canonical']/@href") == [f"{BASE_URL}/"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("page=4", 404),
        ("page=99999999999999999999999999", 404),
        ("page=107374183", 404),  # its OFFSET would pass 2**31 posts
        ("page=461168601842738791", 404),  # 20 × this passes SQLite's and PostgreSQL's bigint
        ("page=0", 400),
        ("page=-1", 400),
        ("page=abc", 400),
        ("page=%D9%A3", 400),  # ٣, an Arabic-Indic digit
        ("page=", 400),
        ("page=" + "9" * 5000, 400),
    ],
)
def test_a_page_number_out_of_range_is_404_and_a_bad_one_400(
    client, factory: Factory, query: str, status: int
) -> None:
    for _ in range(PAGE_SIZE * 2 + 1):
        factory.post()
    for path in ("/", "/categories/licai-fangfa", "/tags/%E5%82%A8%E8%93%84"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == status, (path, query)
        tree = html(response)  # the site's own error page
        assert tree.xpath("//link[@rel='stylesheet']") and tree.xpath("//h1")


def test_an_empty_site_has_its_first_page(client) -> None:
    tree = html(client.get("/"))
    assert texts(tree, "//main/p") == ["还没有文章。"]
    assert client.get("/?page=2").status_code == 404


def test_category_page_names_the_category_and_links_its_feeds(client, factory: Factory) -> None:
    factory.post("jijin")
    tree = html(client.get("/categories/jijin"))
    assert texts(tree, "//h1") == ["基金"] and texts(tree, "//p[@class='lead']") == [
        "指数基金、债券基金与定投。"
    ]
    assert tree.xpath("//title")[0].text == "基金 - 测试理财站"
    feeds = alternates(tree)
    for fmt, media, label in (
        ("rss", "application/rss+xml", "RSS"),
        ("atom", "application/atom+xml", "Atom"),
        ("json", "application/feed+json", "JSON Feed"),
    ):
        assert (media, f"基金 ({label})", f"{BASE_URL}/feeds/jijin.{fmt}") in feeds
        assert (media, f"测试理财站 ({label})", f"{BASE_URL}/feeds/all.{fmt}") in feeds
    assert f"{BASE_URL}/feeds/jijin.rss" in tree.xpath("//p[@class='feeds']/a/@href")
    assert client.get("/categories/meiyou").status_code == 404


def test_tag_pages_take_the_chinese_name_url_encoded_or_the_slug(client, factory: Factory) -> None:
    tagged = factory.post(title="先存后花", tags=["储蓄", "家庭账本"])
    factory.post(title="别的文章", tags=["预算"])
    post_page = html(client.get(f"/posts/{tagged.slug}"))
    hrefs = post_page.xpath("//p[@class='meta']/a[@rel='tag']/@href")
    assert hrefs == [f"{BASE_URL}/tags/{quote('储蓄')}", f"{BASE_URL}/tags/{quote('家庭账本')}"]
    tree = html(client.get(path_of(hrefs[1])))
    assert texts(tree, "//h1") == ["标签：家庭账本"]
    assert texts(tree, "//ul[@class='posts']//h2/a") == ["先存后花"]
    assert (
        "application/feed+json",
        "标签：家庭账本 (JSON Feed)",
        f"{BASE_URL}/feeds/tags/jia-ting-zhang-ben.json",
    ) in alternates(tree)
    by_slug = client.get("/tags/jia-ting-zhang-ben")
    assert texts(html(by_slug), "//ul[@class='posts']//h2/a") == ["先存后花"]
    assert client.get("/tags/%E6%B2%A1%E6%9C%89").status_code == 404  # 没有
    assert client.get("/tags/%00").status_code == 404
    slashed = factory.post(title="港股与A股", tags=["A/B股"])
    (href,) = html(client.get(f"/posts/{slashed.slug}")).xpath("//a[@rel='tag']/@href")
    assert href == f"{BASE_URL}/tags/A%2FB%E8%82%A1"
    assert texts(html(client.get(path_of(href))), "//ul[@class='posts']//h2/a") == ["港股与A股"]
    assert client.get("/tags/" + "长" * 500).status_code == 404


# -- posts ----------------------------------------------------------------------------------------


def test_a_post_page_has_breadcrumb_meta_tags_and_its_category_feeds(
    client, factory: Factory
) -> None:
    post = factory.post("jijin", title="定投的三个误区", author="王敏", tags=["定投", "误区"])
    tree = html(client.get(f"/posts/{post.slug}"))
    assert texts(tree, "//nav[@class='breadcrumb']") == ["首页 › 基金"]
    assert tree.xpath("//nav[@class='breadcrumb']/a/@href") == [
        f"{BASE_URL}/",
        f"{BASE_URL}/categories/jijin",
    ]
    assert texts(tree, "//article/h1") == ["定投的三个误区"]
    published = post.published_at.astimezone(NOW.tzinfo).strftime("%Y-%m-%d %H:%M")
    assert texts(tree, "//article/p[@class='meta']") == [
        f"王敏 · 发布时间 {published} · 基金 · 定投 误区"
    ]
    assert "<h2>小标题</h2>" in lxml.html.tostring(tree, encoding="unicode")
    assert (
        "application/atom+xml",
        "基金 (Atom)",
        f"{BASE_URL}/feeds/jijin.atom",
    ) in alternates(tree)
    assert not tree.xpath("//nav[@class='pager']")


def test_a_multi_page_post_shows_one_page_at_a_time(client, factory: Factory) -> None:
    post = factory.post(title="家庭资产配置三步走", content=MULTI_PAGE)
    url, seen, numbers = f"/posts/{post.slug}", [], []
    while url:
        tree = html(client.get(url))
        seen += texts(tree, "//div[@class='page']/h2")
        numbers.append(texts(tree, "//nav[@class='pager']/span[@class='current']")[0])
        assert texts(tree, "//nav[@class='pager']/span[@class='total']") == ["共3页"]
        links = pager_links(tree)
        assert ("上一页" in links) == (len(numbers) > 1)
        url = path_of(links["下一页"]) if "下一页" in links else ""
    assert seen == ["第一部分", "第二部分", "第三部分"] and numbers == ["1", "2", "3"]
    middle = html(client.get(f"/posts/{post.slug}?page=2"))
    assert pager_links(middle) == {
        "上一页": f"{BASE_URL}/posts/{post.slug}",
        "1": f"{BASE_URL}/posts/{post.slug}",
        "3": f"{BASE_URL}/posts/{post.slug}?page=3",
        "下一页": f"{BASE_URL}/posts/{post.slug}?page=3",
    }
    assert middle.xpath("//title")[0].text == "家庭资产配置三步走（第2页） - 测试理财站"
    assert client.get(f"/posts/{post.slug}?page=4").status_code == 404
    assert client.get(f"/posts/{post.slug}?page=0").status_code == 400


def test_titles_and_text_are_escaped_and_post_html_is_the_sanitized_html(
    client, factory: Factory
) -> None:
    post = factory.post(
        title='<script>alert("标题")</script>',
        summary="<b>摘要</b>",
        content='正文<script>alert(1)</script><img src=x onerror="alert(2)">',
        format="html",
        tags=["<i>标签</i>"],
    )
    for path in ("/", f"/posts/{post.slug}", "/tags/%3Ci%3E%E6%A0%87%E7%AD%BE%3C%2Fi%3E"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>" not in page and "onerror" not in page and "<b>摘要" not in page, path
        assert "<i>标签</i>" not in page
    page = client.get(f"/posts/{post.slug}").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;标题&#34;)&lt;/script&gt;" in page
    assert '<img src="x">' in page  # the stored, sanitized HTML as it is


def test_drafts_and_scheduled_posts_are_404_until_due(client, factory: Factory, clock) -> None:
    draft = factory.post(title="草稿", status="draft")
    later = factory.post(title="明早发布", published_at=NOW + timedelta(hours=2))
    assert client.get(f"/posts/{draft.slug}").status_code == 404
    assert client.get(f"/posts/{later.slug}").status_code == 404
    home = client.get("/")
    assert "明早发布" not in home.get_data(as_text=True)
    clock.advance(hours=3)  # no write: the cached home page expires when the post is due
    assert "明早发布" in client.get("/").get_data(as_text=True)
    assert client.get(f"/posts/{later.slug}").status_code == 200


def test_the_related_block_shows_posts_and_upstream_items(
    client, factory: Factory, ctx, httpserver: HTTPServer
) -> None:
    feed = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>财经通讯社</title>"
        "<link>http://partner.test/</link><description>d</description>"
        '<item><guid isPermaLink="false">x1</guid><title>国债收益率下行，储蓄国债更抢手</title>'
        "<link>http://partner.test/x1</link><pubDate>Fri, 20 Nov 2026 09:00:00 +0800</pubDate>"
        "<description><![CDATA[<p>国债 收益率 储蓄国债 期限 久期 利率。</p>]]></description>"
        "</item></channel></rss>"
    ).encode()
    httpserver.expect_request("/wire").respond_with_data(feed)
    factory.category("jijin")
    source_service.create_source(
        ctx, SourceCreate(url=httpserver.url_for("/wire"), category="jijin", mode="related")
    )
    poll_sources(ctx, None)
    words = "国债 收益率 储蓄国债 期限 久期 利率 凭证式"
    post = factory.post("jijin", title="怎么买储蓄国债", content=f"{words}。{words}。")
    factory.post("jijin", title="国债的久期与利率", content=f"{words}。久期 利率 上行。")
    refresh.rebuild(ctx, None)
    tree = html(client.get(f"/posts/{post.slug}"))
    (block,) = tree.xpath("//section[@class='related']")
    assert texts(block, "h2") == ["相关内容"]
    items = {texts(li, "a[1]")[0]: li for li in block.xpath(".//li")}
    ours, theirs = items["国债的久期与利率"], items["国债收益率下行，储蓄国债更抢手"]
    assert ours.xpath("a/@href")[0].startswith(f"{BASE_URL}/posts/")
    assert not ours.xpath(".//a[@rel]") and "继续阅读" in texts(ours, "p/a")
    assert theirs.xpath("a/@href") == ["http://partner.test/x1"]
    assert set(theirs.xpath(".//a/@rel")) == {"noopener"}
    assert texts(theirs, ".//span[@class='source']") == ["来源：财经通讯社"]


# -- caching --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/categories/licai-fangfa", "/tags/%E5%82%A8%E8%93%84"])
def test_pages_carry_validators_and_answer_304(client, factory: Factory, path: str) -> None:
    post = factory.post()
    for url in (path, f"/posts/{post.slug}"):
        first = client.get(url)
        assert first.status_code == 200
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert first.headers["Cache-Control"].startswith("public, max-age=")
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
        assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
        head = client.head(url)
        assert head.status_code == 200 and head.data == b"" and head.headers["ETag"] == etag
        zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip" and zipped.headers["ETag"] != etag


def test_a_write_is_on_the_next_view_and_a_page_is_built_once_per_version(
    client, factory: Factory, app, auth
) -> None:
    factory.post(title="旧文章")
    cache = app.extensions[PAGE_CACHE]
    first = client.get("/")
    builds = cache.builds
    for _ in range(3):
        assert client.get("/").headers["ETag"] == first.headers["ETag"]
    assert cache.builds == builds  # served from the cache (the fast path, or the view)
    created = client.post(
        "/api/v1/posts",
        json={"title": "新文章", "category": "licai-fangfa", "content": "正文。"},
        headers=auth,
    )
    assert created.status_code == 201
    fresh = client.get("/", headers={"If-None-Match": first.headers["ETag"]})
    assert fresh.status_code == 200 and "新文章" in fresh.get_data(as_text=True)
    assert cache.builds == builds + 1
    renamed = client.patch(
        "/api/v1/categories/licai-fangfa", json={"name": "理财方法论"}, headers=auth
    )
    assert renamed.status_code == 200
    assert "理财方法论" in client.get("/").get_data(as_text=True)


# -- static files ---------------------------------------------------------------------------------


def test_the_stylesheet_is_linked_by_its_hash_and_cached_for_a_year(client) -> None:
    tree = html(client.get("/"))
    (href,) = tree.xpath("//link[@rel='stylesheet']/@href")
    assert href == f"{BASE_URL}/static/site.css?v={content_hash('site.css')}"
    current = client.get(path_of(href))
    assert current.status_code == 200 and current.mimetype == "text/css"
    assert current.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert current.data == (FOLDER / "site.css").read_bytes()
    # Without the hash (or with an old one): the same file, revalidated after an hour.
    for path in ("/static/site.css", "/static/site.css?v=0123456789ab"):
        plain = client.get(path)
        assert plain.status_code == 200 and plain.headers["Cache-Control"] == "public, max-age=3600"
        again = client.get(path, headers={"If-None-Match": plain.headers["ETag"]})
        assert again.status_code == 304


def test_the_sample_posts_images_exist(client) -> None:
    from feedsvc.services.samples import SAMPLE_POSTS

    images = [
        line.split("](", 1)[1].rstrip(")")
        for sample in sorted(SAMPLE_POSTS.glob("*.md"))
        for line in sample.read_text(encoding="utf-8").splitlines()
        if line.startswith("![")
    ]
    assert images == ["/static/img/chart.png"]
    response = client.get(images[0])
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    "path",
    [
        "/static/nothing.css",
        "/static/../config.py",
        "/static/%2e%2e/config.py",
        "/static/..%2fconfig.py",
        "/static/img/",
        "/static/" + "x" * 5000,
        "/static/%E6%B2%A1%E6%9C%89.png",
    ],
)
def test_missing_or_escaping_static_paths_are_404(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_a_template_url_for_a_missing_static_file_fails_loudly() -> None:
    from feedsvc.web.static import static_url

    with pytest.raises(LookupError, match=r"no static file 'gone\.css'"):
        static_url("gone.css")
    assert urljoin(BASE_URL, static_url("img/chart.png")).endswith(
        f"/static/img/chart.png?v={content_hash('img/chart.png')}"
    )


def test_a_new_or_moved_category_is_on_the_next_view_of_the_home_page(
    client, factory: Factory, auth
) -> None:
    factory.post("jijin")
    before = client.get("/")
    assert texts(html(before), "//ul[@class='categories']//a") == ["基金"]
    body = {"slug": "gupiao", "name": "股票", "position": 0}
    assert client.post("/api/v1/categories", json=body, headers=auth).status_code == 201
    after = client.get("/", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert texts(html(after), "//ul[@class='categories']//a") == ["股票", "基金"]
    moved = client.patch("/api/v1/categories/gupiao", json={"position": 9}, headers=auth)
    assert moved.status_code == 200
    assert texts(html(client.get("/")), "//ul[@class='categories']//a") == ["基金", "股票"]
    # The site feed's bytes did not change: its validators stay.
    assert client.get("/feeds/all.atom").headers["Last-Modified"] == before.headers["Last-Modified"]
