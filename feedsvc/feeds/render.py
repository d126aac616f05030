"""How a feed is written: FeedDocument → RSS 2.0 or Atom 1.0 bytes, via feedgen.

The only module that imports feedgen; its quirks (shared/LIBRARIES.md) stay here:
- add_entry() prepends by default, so entries are added with order="append";
- the RSS <link> is the last link added, so rel="self" goes first and "alternate" last;
- description() without isSummary overwrites Atom content, so summary() and content() are
  used, and Atom content is type="html" (never the invalid type="CDATA");
- updated/lastBuildDate default to now(): always set from the document, so the same data
  gives the same bytes and the same ETag;
- RSS <author> must be an e-mail address, so names go in dc:creator (as WordPress does).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import lxml.etree  # noqa: F401  (feedgen.util uses lxml.etree without importing it)
from feedgen.feed import FeedGenerator

from feedsvc import __version__
from feedsvc.feeds.document import EntryDocument, FeedDocument

GENERATOR = ("feedsvc", __version__)
RSS_MEDIA_TYPE = "application/rss+xml; charset=utf-8"
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"


def _generator(doc: FeedDocument, *, rss: bool) -> FeedGenerator:
    fg = FeedGenerator()
    if rss:
        fg.load_extension("dc", atom=False, rss=True)
    fg.id(doc.feed_id)
    fg.title(doc.title)
    fg.subtitle(doc.subtitle)  # RSS <description>, Atom <subtitle>
    fg.link(href=doc.self_url, rel="self")
    fg.link(href=doc.link, rel="alternate", type="text/html")
    fg.language(doc.language)  # RSS <language>, Atom xml:lang
    fg.author(name=doc.author)  # RFC 4287 §4.1.1: an author at feed level covers entries
    fg.generator(*GENERATOR)
    fg.updated(doc.updated)
    fg.lastBuildDate(doc.updated)
    for entry in doc.entries:
        _add_entry(fg, entry, rss=rss)
    return fg


def _add_entry(fg: FeedGenerator, entry: EntryDocument, *, rss: bool) -> None:
    fe = fg.add_entry(order="append")
    fe.id(entry.guid)
    fe.guid(entry.guid, permalink=False)
    fe.title(entry.title)
    fe.link(href=entry.link, rel="alternate", type="text/html")
    if rss:
        fe.dc.dc_creator(entry.author)
    else:
        fe.author(name=entry.author)
    fe.published(entry.published)
    fe.pubDate(entry.published)
    fe.updated(entry.updated)
    fe.category(term=entry.category_name, scheme=entry.category_url, label=entry.category_name)
    summary = entry.summary or entry.title
    # RSS <description> is read as HTML by readers; the summary is plain text, so escape it.
    # Atom <summary> without a type is text already (RFC 4287 §3.1.1).
    fe.summary(escape(summary, quote=False) if rss else summary)
    fe.content(entry.content_html, type="html")


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
