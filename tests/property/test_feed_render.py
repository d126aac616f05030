"""Any text in a feed document renders to RSS and Atom that lxml and feedparser read back.

For every title, summary, author, tag, category name and body: both formats parse with
lxml and with feedparser (bozo == 0), and each text comes back as the documented cleaning
of the input (tests/property/oracle.py) - exactly through lxml, and as feedparser shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from html import escape, unescape
from zoneinfo import ZoneInfo

import feedparser
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from feedsvc.feeds.document import EntryDocument, FeedDocument
from feedsvc.feeds.render import (
    EntryCache,
    render_atom,
    render_cached,
    render_json,
    render_rss,
)
from tests.feedcheck import NS
from tests.property import oracle
from tests.property.strategies import hostile_text

ATOM = "{http://www.w3.org/2005/Atom}"
BASE = "http://feeds.example.test"

zones = st.sampled_from(
    [UTC, ZoneInfo("Asia/Shanghai"), timezone(timedelta(hours=-12)), timezone(timedelta(hours=14))]
)
# Whole seconds, as document.py makes them (HTTP dates have no fractions).
moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=zones
).map(lambda moment: moment.replace(microsecond=0))


@st.composite
def entries(draw: st.DrawFn, n: int) -> EntryDocument:
    published = draw(moments)
    return EntryDocument(
        guid=f"tag:feeds.example.test,2026-01-01:post/{n}",
        title=draw(hostile_text()),
        link=f"{BASE}/posts/p-{n}",
        author=draw(hostile_text()),
        summary=draw(hostile_text()),
        content_html=draw(hostile_text()),
        published=published,
        updated=published,
        category_name=draw(hostile_text()),
        category_url=f"{BASE}/categories/c",
        tags=tuple(draw(st.lists(hostile_text(max_pieces=3), max_size=4))),
    )


@st.composite
def documents(draw: st.DrawFn) -> FeedDocument:
    items = tuple(draw(entries(n)) for n in range(draw(st.integers(1, 3))))
    return FeedDocument(
        feed_id="tag:feeds.example.test,2026-01-01:feeds/c",
        title=draw(hostile_text()),
        subtitle=draw(hostile_text()),
        link=f"{BASE}/categories/c",
        self_url=f"{BASE}/feeds/c.rss",
        language="zh-CN",
        author=draw(hostile_text()) or "测试编辑部",
        updated=draw(moments),
        entries=items,
    )


def _doc(
    title: str = "标题", summary: str = "摘要", author: str = "作者", tag: str = "标签"
) -> FeedDocument:
    entry = EntryDocument(
        guid="tag:feeds.example.test,2026-01-01:post/0",
        title=title,
        link=f"{BASE}/posts/p",
        author=author,
        summary=summary,
        content_html=f"<p>{escape(title)}</p>",
        published=datetime(2026, 3, 15, 9, 30, tzinfo=UTC),
        updated=datetime(2026, 3, 15, 9, 30, tzinfo=UTC),
        category_name="基金",
        category_url=f"{BASE}/categories/c",
        tags=(tag,),
    )
    return FeedDocument(
        feed_id="tag:feeds.example.test,2026-01-01:feeds/c",
        title=title,
        subtitle=summary,
        link=f"{BASE}/categories/c",
        self_url=f"{BASE}/feeds/c.rss",
        language="zh-CN",
        author=author,
        updated=datetime(2026, 3, 15, 9, 30, tzinfo=UTC),
        entries=(entry,),
    )


# Inputs that broke a property once, each kept as an explicit example.
REGRESSIONS = (
    # XML-illegal only: feedgen raised (empty title), lxml raised (NUL, lone surrogate).
    _doc(title="\x00\ud800\ufffe", summary="\x00", author="\uffff", tag="\x01"),
    # C1 controls and DEL: feedparser read them as cp1252 ("\x80" -> "€").
    _doc(title="控制\x80字符\x9f", summary="摘要\x85", author="作者\x7f", tag="标签\x81"),
    _doc(title="\u202e右到左\u200f" * 1000, summary="长" * 10_000),
    _doc(title="换行\r\n回车\r", summary="a\rb", tag="t\r"),
    # A tag equal to the category name was written twice.
    _doc(tag="基金"),
    # Looks like HTML to feedparser in RSS; exact in Atom.
    _doc(title="<I&amp;。", summary="<I&amp;。"),
    # feedparser "repairs" Latin-1 text that decodes as UTF-8, except in Atom names.
    _doc(title="Ã©", summary=" Ã© ", author=" Ã© ", tag=" Ã© "),
)


def _regressions(test: Callable[[FeedDocument], None]) -> Callable[[FeedDocument], None]:
    for doc in REGRESSIONS:
        test = example(doc)(test)
    return test


def _tags(entry: EntryDocument) -> list[str]:
    """The entry's <category> elements, in order: its category, then its tags, each once."""
    terms = [oracle.cleaned(entry.category_name), *map(oracle.cleaned, entry.tags)]
    return [term for term in dict.fromkeys(terms) if term.strip()]


def _feedparser(body: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def _assert_rss_title(seen: feedparser.FeedParserDict, title: str) -> None:
    if oracle.guessed_html_by_feedparser(title):
        assert seen.title_detail.type == "text/html"  # the reader's guess, not our bytes
    else:
        assert seen.title_detail.type == "text/plain"
        assert seen.title == oracle.seen_by_feedparser(title)


def _seen_once(terms: list[str]) -> list[str]:
    # feedparser drops a tag equal to one it has (after stripping) and a blank one.
    return [term for term in dict.fromkeys(map(oracle.seen_by_feedparser, terms)) if term]


@given(documents())
@_regressions
def test_rss_reads_back_the_cleaned_text(doc: FeedDocument) -> None:
    body = render_rss(doc)
    channel = etree.fromstring(body).find("channel")
    assert channel.findtext("title") == oracle.title(doc.title)
    assert channel.findtext("description") == oracle.or_fallback(
        doc.subtitle, oracle.title(doc.title)
    )
    items = channel.findall("item")
    assert len(items) == len(doc.entries)
    for item, entry in zip(items, doc.entries, strict=True):
        title = oracle.title(entry.title)
        summary = oracle.or_fallback(entry.summary, title)
        author = oracle.cleaned(entry.author)
        assert item.findtext("title") == title
        # The summary is plain text and RSS <description> is read as HTML: escaped once.
        assert item.findtext("description") == escape(summary, quote=False)
        assert item.findtext("dc:creator", namespaces=NS) == (author if author.strip() else None)
        assert [c.text or "" for c in item.findall("category")] == _tags(entry)
        assert item.findtext("content:encoded", namespaces=NS) == oracle.cleaned(entry.content_html)

    parsed = _feedparser(body)
    _assert_rss_title(parsed.feed, oracle.title(doc.title))
    for seen, entry in zip(parsed.entries, doc.entries, strict=True):
        title = oracle.title(entry.title)
        _assert_rss_title(seen, title)
        summary = oracle.or_fallback(entry.summary, title)
        assert unescape(seen.summary) == oracle.seen_by_feedparser_as_html(summary)
        author = oracle.cleaned(entry.author)
        assert seen.get("author") == (oracle.seen_by_feedparser(author) if author.strip() else None)
        assert [tag.term for tag in seen.get("tags", [])] == _seen_once(_tags(entry))


@given(documents())
@_regressions
def test_atom_reads_back_the_cleaned_text(doc: FeedDocument) -> None:
    body = render_atom(doc)
    feed = etree.fromstring(body)
    assert feed.findtext(f"{ATOM}title") == oracle.title(doc.title)
    assert feed.findtext(f"{ATOM}subtitle") == oracle.or_fallback(
        doc.subtitle, oracle.title(doc.title)
    )
    items = feed.findall(f"{ATOM}entry")
    assert len(items) == len(doc.entries)
    for item, entry in zip(items, doc.entries, strict=True):
        title = oracle.title(entry.title)
        author = oracle.cleaned(entry.author)
        assert item.findtext(f"{ATOM}title") == title
        assert item.findtext(f"{ATOM}summary") == oracle.or_fallback(entry.summary, title)
        assert item.findtext(f"{ATOM}author/{ATOM}name") == (author if author.strip() else None)
        assert [c.get("term") for c in item.findall(f"{ATOM}category")] == _tags(entry)
        assert (item.findtext(f"{ATOM}content") or "") == oracle.cleaned(entry.content_html)

    parsed = _feedparser(body)
    assert parsed.feed.title == oracle.seen_by_feedparser(oracle.title(doc.title))
    for seen, entry in zip(parsed.entries, doc.entries, strict=True):
        title = oracle.title(entry.title)
        # Atom says type="text" (the default): feedparser takes it as text, no guessing.
        assert seen.title == oracle.seen_by_feedparser(title)
        assert seen.summary == oracle.seen_by_feedparser(oracle.or_fallback(entry.summary, title))
        author = oracle.cleaned(entry.author)
        assert seen.get("author") == (
            oracle.seen_by_feedparser_as_name(author) if author.strip() else None
        )
        # Attributes are not stripped or repaired by feedparser: terms come back exactly.
        terms = list(dict.fromkeys(_tags(entry)))
        assert [tag.term for tag in seen.get("tags", [])] == terms


# One cache across every example: entries of earlier documents are hits when they recur.
_SHARED = EntryCache(4 * 1024 * 1024)


def _regressions_pair(
    test: Callable[[FeedDocument, bool], None],
) -> Callable[[FeedDocument, bool], None]:
    for doc in REGRESSIONS:
        test = example(doc, True)(test)
    return test


@given(documents(), st.booleans())
@_regressions_pair
def test_entries_rendered_once_give_the_same_bytes(doc: FeedDocument, shared: bool) -> None:
    """render_cached is render_rss/render_atom/render_json byte for byte, cold, warm, and with
    a document whose entries another document rendered (the same entry in another feed, or
    reordered)."""
    cache = _SHARED if shared else EntryCache(4 * 1024 * 1024)
    for fmt, render in (("rss", render_rss), ("atom", render_atom), ("json", render_json)):
        expected = render(doc)
        assert render_cached(doc, fmt, cache) == expected  # cold (or as warm as it happens)
        assert render_cached(doc, fmt, cache) == expected  # every entry a hit
        reordered = replace(doc, entries=doc.entries[::-1])
        assert render_cached(reordered, fmt, cache) == render(reordered)
        assert render_cached(replace(doc, entries=()), fmt, cache) == render(
            replace(doc, entries=())
        )
