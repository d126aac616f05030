"""Post content: Markdown/HTML → sanitized pages, summaries, slugs, XML-safe text.

Pure functions: no database, no Flask. Libraries, not hand-written parsers:
cmarkgfm renders Markdown (cmark-gfm, GitHub's fork of the CommonMark reference
implementation, in C), nh3 (Ammonia) sanitizes HTML against our allow-list, pypinyin +
python-slugify make readable ASCII slugs from Chinese titles.
"""

from __future__ import annotations

import re
from functools import lru_cache, partial
from html import unescape
from urllib.parse import urljoin, urlsplit

import cmarkgfm
import nh3
from cmarkgfm.cmark import Options
from pypinyin import Style, lazy_pinyin
from slugify import slugify

# WordPress's page-break marker (共N页 on the site); split before sanitizing strips comments.
NEXTPAGE = re.compile(r"<!--\s*nextpage\s*-->", re.IGNORECASE)

# Dropped from every text we store or write into a feed:
# - what XML 1.0 §2.2 (Char) forbids: C0 controls but TAB/LF/CR, U+FFFE/U+FFFF, lone
#   surrogates. One of them makes lxml, and so feedgen, refuse the whole document (and a lone
#   surrogate cannot even be encoded to UTF-8);
# - DEL and the C1 controls U+007F-U+009F, which §2.2 discourages: readers take them for
#   mojibake (feedparser maps U+0080-U+009F to cp1252's €‚ƒ„…), so a title holding one would
#   read differently in every reader than on the site.
# What is left is every character but the Unicode controls (category Cc) other than TAB, LF
# and CR, U+FFFE/U+FFFF and the surrogates.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "del", "em", "figcaption",
    "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "abbr": {"title"},
}
_URL_ATTRIBUTES = {("a", "href"), ("img", "src")}

# CommonMark with GFM tables. Raw HTML is passed on (UNSAFE) to the sanitizer below, as an
# HTML post's is; without it cmark would replace it with a comment. cmark-gfm renders a 3 KB
# post in about 0.04 ms, 13x faster than markdown-it-py (bench/writes.py, README).
_MARKDOWN_OPTIONS = Options.CMARK_OPT_UNSAFE
_MARKDOWN_EXTENSIONS = ["table"]

# How deep a page's elements may nest. html5ever (under nh3) takes time quadratic in the
# depth of elements that nothing closes implicitly: 20,000 nested <div> or <blockquote>
# (120 KB, or 40 KB of Markdown "> ") cost it 0.7 s, 50,000 about 6 s. No article nests
# a hundred deep; a page that does is refused, not cut.
MAX_NESTING = 100
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)")
# Void elements and those an HTML parser closes by itself (a <p> or <li> ends the one
# before it): they cannot build depth, so they are not counted.
_FLAT_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr",
    "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "optgroup",
    "rp", "rt", "colgroup", "caption",
})  # fmt: skip
_cleaner = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    clean_content_tags={"script", "style"},
    url_schemes={"http", "https", "mailto"},
)
_WHITESPACE = re.compile(r"\s+")


def clean_xml_text(text: str) -> str:
    """Drop characters that XML 1.0 forbids or readers garble (above); keeps TAB, LF and CR."""
    return _XML_ILLEGAL.sub("", text)


class TooDeep(ValueError):
    """A page whose elements nest more than MAX_NESTING deep."""

    def __init__(self) -> None:
        super().__init__(f"nests elements more than {MAX_NESTING} deep")


def check_nesting(html: str) -> None:
    """Raise TooDeep when ``html`` may nest deeper than MAX_NESTING.

    A linear scan of its tags, an upper bound of what a parser would build: every start tag
    opens, every end tag closes, void and self-closing-by-parser elements do neither."""
    depth = 0
    for match in _TAG.finditer(html):
        if match[2].lower() in _FLAT_TAGS:
            continue
        if match[1]:
            depth = max(depth - 1, 0)
            continue
        depth += 1
        if depth > MAX_NESTING:
            raise TooDeep


def sanitize_html(html: str) -> str:
    return _cleaner.clean(clean_xml_text(html))


def render_markdown(text: str) -> str:
    html: str = cmarkgfm.markdown_to_html_with_extensions(
        text, options=_MARKDOWN_OPTIONS, extensions=_MARKDOWN_EXTENSIONS
    )
    return html


def render_pages(body: str, fmt: str) -> list[str]:
    """Split on <!--nextpage-->, render each page, sanitize it; empty pages are dropped.

    Raises TooDeep (a ValueError) for a page nesting deeper than MAX_NESTING."""
    pages = []
    for raw in NEXTPAGE.split(clean_xml_text(body)):
        if not raw.strip():
            continue
        html = render_markdown(raw) if fmt == "markdown" else raw
        check_nesting(html)
        cleaned = sanitize_html(html).strip()
        if cleaned:
            pages.append(cleaned)
    return pages


def html_to_text(html: str) -> str:
    # Block ends become spaces so words of adjacent paragraphs do not run together.
    spaced = re.sub(r"(</(?:p|li|h[1-6]|td|th|blockquote|pre)>|<br\s*/?>)", r"\1 ", html)
    text = nh3.clean(spaced, tags=set(), clean_content_tags={"script", "style"})
    return _WHITESPACE.sub(" ", unescape(text)).strip()


def derive_summary(pages: list[str], limit: int = 120) -> str:
    """The first ``limit`` characters of the text, cut at a sentence end when one is near."""
    text = html_to_text(" ".join(pages))
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for mark in ("。", "！", "？", "；", ". "):
        at = cut.rfind(mark)
        if at >= limit // 2:
            return cut[: at + len(mark)].strip()
    return cut.rstrip() + "…"


def _absolute(base: str, tag: str, attribute: str, value: str) -> str | None:
    if (tag, attribute) in _URL_ATTRIBUTES:
        return urljoin(base, value)
    return value


@lru_cache(maxsize=1024)
def absolutize_links(html: str, base: str) -> str:
    """Make href/src absolute against ``base`` (feeds must carry no relative URLs).

    Memoized (pure, and called for every page of every entry of every feed build): after a
    write, a category's feed is built again with the same pages but one; 1,024 pages of a
    few KB bound it to a few MiB per process.
    """
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        attribute_filter=partial(_absolute, base),
        link_rel=None,
    )


@lru_cache(maxsize=1024)
def slug_from_title(title: str, max_length: int = 80) -> str:
    """Readable ASCII slug: Chinese as pinyin words, Latin kept (理财 ETF → li-cai-etf).

    Memoized (pure; pinyin costs about 0.1 ms a title): titles repeat (daily briefs such as
    每日财经快讯, tags); 1,024 titles of up to 300 characters hold about 1 MiB at most."""
    words = lazy_pinyin(title, style=Style.NORMAL, errors="default")
    slug = slugify(" ".join(words), max_length=max_length, word_boundary=True)
    return slug or "post"


def is_url_safe_slug(value: str) -> bool:
    return bool(re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", value))


def is_absolute_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
