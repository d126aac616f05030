"""Content rules: sanitizing, pages, summaries, slugs, XML-illegal characters (pure)."""

from __future__ import annotations

import pytest

from feedsvc.content import (
    MAX_NESTING,
    TooDeep,
    absolutize_links,
    clean_xml_text,
    derive_summary,
    html_to_text,
    render_pages,
    slug_from_title,
)


def test_markdown_pages_split_on_wordpress_marker() -> None:
    pages = render_pages(
        "第一页 **重点**\n\n<!--nextpage-->\n\n第二页\n<!-- NextPage -->\n第三页", "markdown"
    )
    assert pages == ["<p>第一页 <strong>重点</strong></p>", "<p>第二页</p>", "<p>第三页</p>"]


def test_html_is_sanitized() -> None:
    html = (
        '<p onclick="x()">正文</p><script>alert(1)</script><style>p{}</style>'
        '<form><input name="a"></form><a href="javascript:alert(1)">坏链接</a>'
        '<iframe src="https://evil.example"></iframe><img src="/a.png" onerror="x()">'
    )
    (page,) = render_pages(html, "html")
    assert "script" not in page and "alert" not in page and "onclick" not in page
    assert "<form" not in page and "<input" not in page and "iframe" not in page
    assert "javascript:" not in page and "onerror" not in page
    assert "<p>正文</p>" in page and '<img src="/a.png">' in page


def test_empty_pages_are_dropped() -> None:
    assert render_pages("<!--nextpage-->\n\n<script>x</script>", "html") == []


def test_xml_illegal_characters_removed_but_whitespace_kept() -> None:
    assert clean_xml_text("a\x00b\x08c\x0bd\x0ce\x1ff\ufffeg\uffffh\t\n\r") == "abcdefgh\t\n\r"
    assert clean_xml_text("x\ud800y") == "xy"


def test_links_made_absolute_against_the_post_url() -> None:
    html = '<p><a href="/posts/other">另一篇</a> <a href="#top">顶部</a><img src="img/c.png"></p>'
    out = absolutize_links(html, "http://site.test/posts/this")
    assert 'href="http://site.test/posts/other"' in out
    assert 'href="http://site.test/posts/this#top"' in out
    assert 'src="http://site.test/posts/img/c.png"' in out


def test_summary_cut_at_a_sentence_end() -> None:
    pages = ["<p>" + "储蓄是理财的第一步。" * 30 + "</p>"]
    summary = derive_summary(pages)
    assert summary.endswith("。") and len(summary) <= 120
    assert derive_summary(["<p>短文。</p>"]) == "短文。"


def test_text_of_html_unescapes_entities() -> None:
    assert (
        html_to_text("<p>A &amp; B &lt;C&gt;</p><p>下一段&nbsp;文字</p>") == "A & B <C> 下一段 文字"
    )


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("理财方法入门", "li-cai-fang-fa-ru-men"),
        ("ETF 定投 2025", "etf-ding-tou-2025"),
        ("！！！", "post"),
    ],
)
def test_slug_from_chinese_title(title: str, slug: str) -> None:
    assert slug_from_title(title) == slug


def test_markdown_is_commonmark_with_tables_and_raw_html_sanitized() -> None:
    markdown = (
        "## 收益对比\n\n| 产品 | 年化 |\n|:--|--:|\n| 货币基金 | 1.8% |\n\n"
        '<span onclick="x()">行内</span> [坏链接](javascript:alert(1)) '
        "[好链接](https://example.cn/理财)\n\n\u3000\u3000首行缩进的段落。"
    )
    (page,) = render_pages(markdown, "markdown")
    assert "<h2>收益对比</h2>" in page
    # Alignment is presentation: the sanitizer keeps no style or align attribute.
    assert "<th>产品</th>" in page and "<td>1.8%</td>" in page and "align" not in page
    assert "onclick" not in page and "javascript" not in page and "行内" in page
    assert 'href="https://example.cn/%E7%90%86%E8%B4%A2"' in page
    # Full-width spaces are text, not Markdown whitespace: a Chinese paragraph keeps its indent.
    assert "<p>\u3000\u3000首行缩进的段落。</p>" in page


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        ("> " * (MAX_NESTING + 1) + "引用", "markdown"),
        ("<blockquote>" * (MAX_NESTING + 1) + "正文", "html"),
        ("<div><ul>" * 60 + "正文", "html"),
        ("第一页<!--nextpage-->" + "<div>" * 50_000, "html"),
    ],
)
def test_pages_nested_too_deep_are_refused(body: str, fmt: str) -> None:
    with pytest.raises(TooDeep, match=f"more than {MAX_NESTING} deep"):
        render_pages(body, fmt)


def test_nesting_counts_only_what_a_parser_nests() -> None:
    deepest = "<div>" * MAX_NESTING + "正文" + "</div>" * MAX_NESTING
    assert render_pages(deepest * 3, "html")  # closed again: the depth does not add up
    # Void elements and those a parser closes itself (<p>, <li>, <td> …) build no depth.
    flat = "<p>段落" * 500 + "<br>" * 500 + "<ul>" + "<li>项" * 500 + "</ul>"
    assert render_pages(flat, "html")
    assert render_pages("> " * MAX_NESTING + "引用", "markdown")
