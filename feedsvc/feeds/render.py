"""How a feed is written: FeedDocument → RSS 2.0 or Atom 1.0 bytes, via feedgen.

The only module that imports feedgen; its quirks (shared/LIBRARIES.md) stay here:
- add_entry() prepends by default, so entries are added with order="append";
- the RSS <link> is the last link added, so rel="self" goes first and "alternate" last;
- description() without isSummary overwrites Atom content, so summary() and content() are
  used, and Atom content is type="html" (never the invalid type="CDATA");
- updated/lastBuildDate default to now(): always set from the document, so the same data
  gives the same bytes and the same ETag;
- RSS <author> must be an e-mail address, so names go in dc:creator (as WordPress does);
- one XML-illegal character anywhere (a lone surrogate included) makes lxml refuse the whole
  feed, so every text is cleaned again here, whatever the document holds (clean_xml_text);
- a feed or entry without a title, or an RSS channel without a description, makes feedgen
  raise: a text that cleaning leaves empty falls back to UNTITLED (or the title).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import lxml.etree  # noqa: F401  (feedgen.util uses lxml.etree without importing it)
from feedgen.feed import FeedGenerator

from feedsvc import __version__
from feedsvc.content import clean_xml_text
from feedsvc.feeds.document import EntryDocument, FeedDocument

GENERATOR = ("feedsvc", __version__)
RSS_MEDIA_TYPE = "application/rss+xml; charset=utf-8"
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"
# RFC 4287 §4.2.14 requires a title; feedgen refuses an empty one. Shown only when a title is
# nothing but white space and characters XML cannot carry (never one written through the API).
UNTITLED = "（无标题）"


def _text(value: str) -> str:
    return clean_xml_text(value)


def _text_or(value: str, fallback: str) -> str:
    """``value`` cleaned, or ``fallback`` if nothing but white space would be left."""
    cleaned = _text(value)
    return cleaned if cleaned.strip() else fallback


def _generator(doc: FeedDocument, *, rss: bool) -> FeedGenerator:
    fg = FeedGenerator()
    if rss:
        fg.load_extension("dc", atom=False, rss=True)
    title = _text_or(doc.title, UNTITLED)
    fg.id(_text(doc.feed_id))
    fg.title(title)
    # RSS <description>, Atom <subtitle>; RSS 2.0 requires a channel description.
    fg.subtitle(_text_or(doc.subtitle, title))
    fg.link(href=_text(doc.self_url), rel="self")
    fg.link(href=_text(doc.link), rel="alternate", type="text/html")
    fg.language(_text(doc.language))  # RSS <language>, Atom xml:lang
    fg.author(name=_text(doc.author))  # RFC 4287 §4.1.1: an author at feed level covers entries
    fg.generator(*GENERATOR)
    fg.updated(doc.updated)
    fg.lastBuildDate(doc.updated)
    for entry in doc.entries:
        _add_entry(fg, entry, rss=rss)
    return fg


def _add_entry(fg: FeedGenerator, entry: EntryDocument, *, rss: bool) -> None:
    fe = fg.add_entry(order="append")
    title = _text_or(entry.title, UNTITLED)
    author = _text(entry.author)
    fe.id(_text(entry.guid))
    fe.guid(_text(entry.guid), permalink=False)
    fe.title(title)
    fe.link(href=_text(entry.link), rel="alternate", type="text/html")
    if author.strip():  # an empty name is no author (feedgen skips it in Atom)
        if rss:
            fe.dc.dc_creator(author)
        else:
            fe.author(name=author)
    fe.published(entry.published)
    fe.pubDate(entry.published)
    fe.updated(entry.updated)
    category = _text(entry.category_name)
    if category.strip():
        fe.category(term=category, scheme=_text(entry.category_url), label=category)
    # Tags follow the category, each term once: RSS 2.0 <category> without a domain, Atom
    # category with a term only.
    for tag in dict.fromkeys(_text(tag) for tag in entry.tags):
        if tag.strip() and tag != category:
            fe.category(term=tag)
    summary = _text_or(entry.summary, title)
    # RSS <description> is read as HTML by readers; the summary is plain text, so escape it.
    # Atom <summary> without a type is text already (RFC 4287 §3.1.1).
    fe.summary(escape(summary, quote=False) if rss else summary)
    fe.content(_text(entry.content_html), type="html")


def render_rss(doc: FeedDocument) -> bytes:
    return _serialize(_generator(doc, rss=True).rss_str)


def render_atom(doc: FeedDocument) -> bytes:
    return _serialize(_generator(doc, rss=False).atom_str)


def _serialize(write: Callable[..., Any]) -> bytes:
    return bytes(write(pretty=False, encoding="UTF-8", xml_declaration=True))


RENDERERS: dict[str, tuple[Callable[[FeedDocument], bytes], str]] = {
    "rss": (render_rss, RSS_MEDIA_TYPE),
    "atom": (render_atom, ATOM_MEDIA_TYPE),
}
