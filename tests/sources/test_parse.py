"""parse_feed: formats, encodings, Chinese dates, links, sanitizing, bad input."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feedsvc.content import clean_xml_text
from feedsvc.sources.parse import FeedParseError, ParsedFeed, parse_feed

FIXTURES = Path(__file__).parent / "fixtures"
SHANGHAI = ZoneInfo("Asia/Shanghai")
CST = timezone(timedelta(hours=8))
NOW = datetime(2025, 1, 1, tzinfo=UTC)
FEED_URL = "https://blog.example.cn/feeds/main.xml"
XML = {"content-type": "application/xml"}


def parse(
    content: bytes,
    *,
    headers: dict[str, str] | None = None,
    url: str = FEED_URL,
    site_tz: ZoneInfo = SHANGHAI,
    now: datetime = NOW,
) -> ParsedFeed:
    return parse_feed(
        content, headers=XML if headers is None else headers, url=url, site_tz=site_tz, now=now
    )


def rss(*items: str, channel: str = "") -> bytes:
    """A small RSS 2.0 document around ``items`` (each an <item> body)."""
    body = "".join(f"<item>{item}</item>" for item in items)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>理财</title><link>https://blog.example.cn/</link>{channel}{body}"
        "</channel></rss>"
    ).encode()


def item(pub_date: str = "", html: str = "", guid: str = "g1") -> str:
    date = f"<pubDate>{pub_date}</pubDate>" if pub_date else ""
    content = f"<content:encoded><![CDATA[{html}]]></content:encoded>" if html else ""
    return f"<title>标题</title><link>/p/1</link><guid>{guid}</guid>{date}{content}"


# -- formats -----------------------------------------------------------------

FORMATS = {
    "rss091.xml": dict(
        entry_id="https://blog.example.cn/2024/03/dingtou.html",
        link="https://blog.example.cn/2024/03/dingtou.html",
        title="定投指数基金的第一年",
        author=None,
        content_html="<p>每月<b>定投</b>一千元。</p>",
        published=None,
        updated=None,
        tags=(),
    ),
    "rss10.rdf": dict(
        entry_id="https://blog.example.cn/2024/03/zhaiquan.html",
        link="https://blog.example.cn/2024/03/zhaiquan.html",
        title="债券基金怎么选",
        author="王小钱",
        content_html="<p>看<strong>久期</strong>，看信用。</p>",
        published=None,  # RSS 1.0 has only dc:date, which is "updated"
        updated=datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST),
        tags=("债券",),
    ),
    "rss20.xml": dict(
        entry_id="post-1024",
        link="https://blog.example.cn/2024/03/yingji.html",
        title="我的应急基金放在哪里",
        author="王小钱",
        content_html=(
            '<p>六个月的<a href="https://blog.example.cn/glossary/huobi.html" title="货币基金"'
            ' rel="noopener noreferrer">生活费</a>。</p>'
            '<img alt="收益图" src="https://blog.example.cn/feeds/images/chart.png">'
        ),
        published=datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST),
        updated=None,
        tags=("货币基金", "应急"),
    ),
    "atom03.xml": dict(
        entry_id="tag:blog.example.cn,2024:jizhang",
        link="https://blog.example.cn/2024/03/jizhang.html",
        title="记账三个月的收获",
        author="王小钱",  # inherited from the feed
        content_html="<p>每一笔都<em>记下来</em>。</p>",
        published=datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST),  # <issued> without offset
        updated=datetime(2024, 3, 15, 10, 0, tzinfo=CST),
        tags=(),
    ),
    "atom10.xml": dict(
        entry_id="tag:blog.example.cn,2024:bili",
        link="https://blog.example.cn/feeds/posts/bili.html",
        title="股票与基金的比例",
        author="王小钱",
        content_html=(
            '<h2>股债比例</h2><p>用<a href="https://blog.example.cn/tools/calc.html"'
            ' rel="noopener noreferrer">计算器</a>。</p>'
        ),
        published=datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST),
        updated=datetime(2024, 3, 16, 8, 0, tzinfo=UTC),
        tags=("资产配置",),
    ),
}


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_gives_the_same_typed_entry(name: str) -> None:
    feed = parse((FIXTURES / name).read_bytes())

    assert feed.title == "小钱袋 理财笔记"
    assert feed.link == "https://blog.example.cn/"
    first = feed.entries[0]
    for field, expected in FORMATS[name].items():
        assert getattr(first, field) == expected, field


def test_rss20_entry_without_content_uses_its_summary() -> None:
    second = parse((FIXTURES / "rss20.xml").read_bytes()).entries[1]

    assert second.summary_html == "只有摘要。"
    assert second.content_html == "只有摘要。"
    assert second.published == datetime(2024, 3, 14, 20, 0, tzinfo=CST)


# -- Chinese encodings ---------------------------------------------------------


def test_gbk_declared_in_the_xml_declaration() -> None:
    feed = parse((FIXTURES / "gbk.xml").read_bytes())

    assert feed.entries[0].title == "银行理财产品的风险等级"
    assert feed.entries[0].summary_html == "R1 到 R5，看清再买。"
    assert feed.entries[0].published == datetime(2024, 3, 15, 9, 4, tzinfo=CST)


def test_gbk_named_only_by_the_content_type_header() -> None:
    body = rss(item()).decode().replace(' encoding="UTF-8"', "").replace("标题", "基金净值")

    feed = parse(body.encode("gbk"), headers={"content-type": "text/xml; charset=gbk"})

    assert feed.entries[0].title == "基金净值"


def test_feed_labelled_gb2312_keeps_gbk_only_characters() -> None:
    # 镕 is in GBK but not in GB2312: mislabelled Chinese feeds are common.
    body = rss(item()).decode().replace("UTF-8", "gb2312").replace("标题", "朱镕基谈理财")

    feed = parse(body.encode("gbk"), headers={"content-type": "application/xml; charset=GB2312"})

    assert feed.entries[0].title == "朱镕基谈理财"


# -- dates -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024/03/15 09:04:05", datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST)),
        ("2024-03-15 09:04:05", datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST)),
        ("2024年3月15日", datetime(2024, 3, 15, 0, 0, tzinfo=CST)),
        ("2024年3月15日 09:04", datetime(2024, 3, 15, 9, 4, tzinfo=CST)),
        ("2024年03月15日 09:04:05", datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST)),
        ("Fri, 15 Mar 2024 09:04:05 CST", datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST)),
        ("Fri, 15 Mar 2024 09:04:05", datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST)),
        ("Fri, 15 Mar 2024 09:04:05 GMT", datetime(2024, 3, 15, 9, 4, 5, tzinfo=UTC)),
        ("Fri, 15 Mar 2024 09:04:05 +0000", datetime(2024, 3, 15, 9, 4, 5, tzinfo=UTC)),
        ("Fri, 15 Mar 2024 09:04:05 +0800 (CST)", datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST)),
        ("2024-03-15T09:04:05", datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST)),
        ("2024-03-15T09:04:05Z", datetime(2024, 3, 15, 9, 4, 5, tzinfo=UTC)),
        ("2024-03-15T09:04:05+08:00", datetime(2024, 3, 15, 9, 4, 5, tzinfo=CST)),
        ("2024-03-15T09:04:05.250-05:00", datetime(2024, 3, 15, 14, 4, 5, 250000, tzinfo=UTC)),
    ],
)
def test_chinese_date_forms_are_read_as_site_local_time(raw: str, expected: datetime) -> None:
    entry = parse(rss(item(pub_date=raw))).entries[0]

    assert entry.published == expected
    assert entry.published is not None and entry.published.utcoffset() is not None


def test_dates_without_offset_use_the_site_timezone_given() -> None:
    berlin = ZoneInfo("Europe/Berlin")

    entry = parse(rss(item(pub_date="2024/07/01 12:00:00")), site_tz=berlin).entries[0]

    assert entry.published == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)  # CEST, +02:00


def test_site_timezones_do_not_leak_between_threads() -> None:
    # The feedparser date handler is global; parse_feed's timezone is not.
    body = rss(item(pub_date="2024/03/15 12:00:00"))
    zones = [SHANGHAI, ZoneInfo("America/New_York"), ZoneInfo("Europe/London")] * 20

    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda tz: parse(body, site_tz=tz).entries[0].published, zones))

    assert got == [datetime(2024, 3, 15, 12, 0, tzinfo=tz) for tz in zones]


def test_future_dates_are_clamped_to_now() -> None:
    entry = parse(rss(item(pub_date="2031-01-01 00:00:00"))).entries[0]

    assert entry.published == NOW


@pytest.mark.parametrize("raw", ["2024/13/45 09:04:05", "2024年2月30日", "not a date"])
def test_unreadable_dates_are_none_not_a_guess(raw: str) -> None:
    # feedparser alone would turn "2024/13/45" into day 1 of the current month.
    assert parse(rss(item(pub_date=raw))).entries[0].published is None


def test_forms_only_feedparser_knows_still_come_through() -> None:
    # Perforce style: not ours, so feedparser's own parse (in UTC) is used.
    entry = parse(rss(item(pub_date="Fri, 2024/03/15 09:04:05 -0000"))).entries[0]

    assert entry.published == datetime(2024, 3, 15, 9, 4, 5, tzinfo=UTC)


# -- links and ids -----------------------------------------------------------


def test_relative_links_resolve_against_the_feed_url() -> None:
    html = '<a href="../about.html">关于</a><img src="/img/a.png" alt="图">'
    feed = parse(rss(item(html=html), channel=""), url="https://blog.example.cn/feeds/main.xml")

    entry = feed.entries[0]
    assert entry.link == "https://blog.example.cn/p/1"
    assert 'href="https://blog.example.cn/about.html"' in entry.content_html
    assert 'src="https://blog.example.cn/img/a.png"' in entry.content_html


def test_javascript_links_are_dropped() -> None:
    body = rss("<title>x</title><link>javascript:alert(1)</link><guid>g</guid>")

    assert parse(body).entries[0].link is None


def test_entry_id_falls_back_to_link_then_to_a_stable_hash() -> None:
    with_link = parse(rss("<title>甲</title><link>/p/9</link>")).entries[0]
    bare = parse(rss("<title>乙</title><description>无链接</description>")).entries[0]

    assert with_link.entry_id == "https://blog.example.cn/p/9"
    assert bare.entry_id.startswith("sha256:")
    again = parse(rss("<title>乙</title><description>改过</description>")).entries[0]
    assert again.entry_id == bare.entry_id


# -- sanitizing --------------------------------------------------------------


def test_html_is_sanitized_with_our_allow_list() -> None:
    html = (
        '<p style="color:red" onclick="steal()">正文<script>alert(1)</script></p>'
        "<style>p{display:none}</style>"
        '<form action="https://evil.example/"><input name="pw">登录</form>'
        "<svg><text>svg text</text></svg>"
        '<iframe src="https://evil.example/"></iframe>'
        '<a href="javascript:alert(1)">坏链接</a>'
        '<a href="https://ok.example/" title="好" target="_blank">好链接</a>'
        "<table><tr><td>1</td></tr></table><h2>小标题</h2><pre><code>x = 1</code></pre>"
    )

    out = parse(rss(item(html=html))).entries[0].content_html

    for banned in (
        "<script", "alert(1)", "<style", "display:none", "<form", "<input", "登录",
        "<svg", "svg text", "<iframe", "onclick", "style=", "javascript:", "target=",
    ):  # fmt: skip
        assert banned not in out, banned
    assert "<p>正文</p>" in out
    assert '<a href="https://ok.example/" title="好" rel="noopener noreferrer">好链接</a>' in out
    assert "<td>1</td>" in out
    assert "<h2>小标题</h2>" in out
    assert "<pre><code>x = 1</code></pre>" in out


def test_html_titles_become_plain_text() -> None:
    body = rss("<title>&lt;b&gt;加粗&lt;/b&gt; &amp; 收益</title><guid>g</guid>")

    assert parse(body).entries[0].title == "加粗 & 收益"


def test_xml_illegal_characters_are_stripped_from_every_field() -> None:
    html = "<p>正\x0b文\x1f</p>"
    body = rss(
        "<title>标\x01题</title><link>/p/1</link><guid isPermaLink='false'>g\x02</guid>"
        "<author>作\x08者</author><category>基\x0c金</category>"
        f"<description><![CDATA[{html}]]></description>"
    )

    entry = parse(body).entries[0]

    assert (entry.title, entry.entry_id, entry.author) == ("标题", "g", "作者")
    assert entry.tags == ("基金",)
    assert entry.content_html == "<p>正文</p>"


def test_clean_text_keeps_tab_newline_and_astral_characters() -> None:
    assert clean_xml_text("a\tb\nc\r\x00\x7f\x85\ufffe\uffff\ud800😀") == "a\tb\nc\r😀"


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<rss><channel><title>broken</titl",
        b"not xml at all",
        b"",
        b"<html><body><p>404 not found</p></body></html>",
    ],
)
def test_unusable_bodies_raise_a_clear_error(body: bytes) -> None:
    with pytest.raises(FeedParseError, match=r"^parse: "):
        parse(body)


def test_a_valid_empty_feed_is_not_an_error() -> None:
    feed = parse(rss())

    assert feed.entries == []
    assert feed.title == "理财"


def test_bozo_with_entries_is_only_a_warning() -> None:
    # Unescaped & is an XML error; the entries are still there.
    body = rss("<title>股 & 债</title><guid>g</guid>")

    feed = parse(body, headers={"content-type": "text/html"})

    assert feed.warning is not None
    assert feed.entries[0].title == "股 & 债"


def test_billion_laughs_does_not_expand() -> None:
    lol = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol0 "lol">{lol}]>'
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>&lol9;</title><guid>g</guid><description>&lol9;</description></item>"
        "</channel></rss>"
    ).encode()

    started = time.monotonic()
    try:
        feed = parse(body)
    except FeedParseError:
        feed = None
    assert time.monotonic() - started < 5
    if feed is not None:
        for entry in feed.entries:
            assert "lollol" not in entry.title + entry.content_html + entry.summary_html


def test_external_entities_are_not_read() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>&xxe;</title><guid>g</guid></item></channel></rss>"
    )

    try:
        feed = parse(body)
    except FeedParseError:
        return
    assert all("root:" not in e.title + e.content_html for e in feed.entries)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse(rss("<title>标题</title>"), now=datetime(2025, 1, 1))


def test_a_feedparser_crash_is_a_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """feedparser promises never to raise; if a hostile feed finds a bug, the job goes on."""
    import feedparser

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(feedparser, "parse", crash)
    with pytest.raises(FeedParseError, match="parse: feedparser failed: RecursionError"):
        parse(rss("<title>嵌套太深</title>"))


def test_entry_html_is_cleaned_and_resolved_in_one_pass_as_feedparser_left_it() -> None:
    """feedparser's own sanitizing and link resolution are off (issue 9: they re-parsed every
    entry's HTML); ours give the HTML they gave, so stored content hashes do not move."""
    html = (
        '<p>见<a title="说明" href="../about.html">关于</a>'
        '<img src="i.png" alt="图" onerror="x()"><a href="javascript:alert(1)">j</a></p>'
        "<iframe>备用文字</iframe><applet>小程序</applet><script>alert(1)</script>"
    )
    feed = (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        'xml:base="https://blog.example.cn/2024/"><title>t</title><id>f</id>'
        '<entry xml:base="03/"><id>e1</id><title>e</title>'
        f'<content type="html">{html.replace("&", "&amp;").replace("<", "&lt;")}</content>'
        "</entry></feed>"
    ).encode()
    entry = parse(feed).entries[0]
    assert entry.content_html == (
        '<p>见<a href="https://blog.example.cn/2024/about.html" title="说明" '
        'rel="noopener noreferrer">关于</a>'
        '<img alt="图" src="https://blog.example.cn/2024/03/i.png">'
        '<a rel="noopener noreferrer">j</a></p>备用文字'
    )
