"""How a feed is written: FeedDocument → RSS 2.0 or Atom 1.0 bytes via feedgen, and JSON
Feed 1.1 bytes via the standard library's json; the subscription list (OutlineDocument) →
OPML 2.0 via lxml.

The only module that imports feedgen; its quirks (shared/LIBRARIES.md) stay here:
- add_entry() prepends by default, so entries are added with order="append";
- the RSS <link> is the last link added, so rel="self" goes first and "alternate" last;
- description() without isSummary overwrites Atom content, so summary() and content() are
  used, and Atom content is type="html" (never the invalid type="CDATA");
- updated/lastBuildDate default to now(): always set from the document, so the same data
  gives the same bytes and the same ETag;
- the RSS writer emits only the rel="self" atom:link, so the channel's other atom:links (the
  WebSub hub, RFC 5005 page links first, next, previous) reach RSS through a small extension
  (ChannelLinksExtension), and Atom through link();
- RSS <author> must be an e-mail address, so names go in dc:creator (as WordPress does);
- one XML-illegal character anywhere (a lone surrogate included) makes lxml refuse the whole
  feed, so every text is cleaned again here, whatever the document holds (clean_xml_text);
- a feed or entry without a title, or an RSS channel without a description, makes feedgen
  raise: a text that cleaning leaves empty falls back to UNTITLED (or the title).

Entries rendered once (``render_cached``). A feed's bytes are its frame (the channel or feed
element, rendered by feedgen without entries) with its entries' bytes inside, which feedgen
appends last. So each entry's bytes are cut from a one-entry feed once and kept in an
``EntryCache`` keyed by the entry document itself: after a write, a new version of a feed of
20 posts renders its frame and the one new entry, and joins the 19 others. The bytes are
exactly ``render_rss``/``render_atom``'s (tests/property/test_feed_render.py asserts it).
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from typing import Any

import lxml.etree  # (feedgen.util also uses lxml.etree without importing it)
from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator

from feedsvc import __version__
from feedsvc.content import clean_xml_text
from feedsvc.feeds.document import EntryDocument, FeedDocument, OutlineDocument

GENERATOR = ("feedsvc", __version__)
RSS_MEDIA_TYPE = "application/rss+xml; charset=utf-8"
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"
# JSON Feed 1.1 §"Suggestions for Publishers": served as application/feed+json; JSON is UTF-8
# by definition (RFC 8259 §8.1), so no charset parameter.
JSON_MEDIA_TYPE = "application/feed+json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# RFC 4287 §4.2.14 requires a title; feedgen refuses an empty one. Shown only when a title is
# nothing but white space and characters XML cannot carry (never one written through the API).
UNTITLED = "（无标题）"


def _text(value: str) -> str:
    return clean_xml_text(value)


def _text_or(value: str, fallback: str) -> str:
    """``value`` cleaned, or ``fallback`` if nothing but white space would be left."""
    cleaned = _text(value)
    return cleaned if cleaned.strip() else fallback


ATOM_NS = "http://www.w3.org/2005/Atom"


class ChannelLinksExtension(BaseExtension):  # type: ignore[misc]  # feedgen has no type hints
    """The channel's atom:links besides rel="self" (feedgen's RSS writer drops every other
    link): the WebSub hub (W3C WebSub §4) and RFC 5005 §3 page links. Written before the
    items, as feedgen runs extensions first."""

    def __init__(self) -> None:
        self._links: list[tuple[str, str]] = []

    def links(self, links: list[tuple[str, str]]) -> None:
        self._links = links

    def extend_ns(self) -> dict[str, str]:
        return {"atom": ATOM_NS}

    def extend_rss(self, rss_feed: Any) -> Any:
        channel = rss_feed[0]
        for rel, href in self._links:
            lxml.etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=href, rel=rel)
        return rss_feed


def _other_links(doc: FeedDocument) -> list[tuple[str, str]]:
    """(rel, href) of the feed's links besides self and alternate: its hub, its pages."""
    pages = doc.pages
    found = (
        ("hub", doc.hub),
        ("first", pages.first),
        ("next", pages.next),
        ("previous", pages.previous),
    )
    return [(rel, _text(href)) for rel, href in found if href is not None]


def _generator(doc: FeedDocument, *, rss: bool, entries: bool = True) -> FeedGenerator:
    fg = FeedGenerator()
    if rss:
        fg.load_extension("dc", atom=False, rss=True)
    title = _text_or(doc.title, UNTITLED)
    fg.id(_text(doc.feed_id))
    fg.title(title)
    # RSS <description>, Atom <subtitle>; RSS 2.0 requires a channel description.
    fg.subtitle(_text_or(doc.subtitle, title))
    fg.link(href=_text(doc.self_url), rel="self")
    other_links = _other_links(doc)
    if other_links and rss:
        fg.register_extension("channel_links", ChannelLinksExtension, atom=False, rss=True)
        fg.channel_links.links(other_links)
    elif other_links:
        for rel, href in other_links:
            fg.link(href=href, rel=rel)
    fg.link(href=_text(doc.link), rel="alternate", type="text/html")
    fg.language(_text(doc.language))  # RSS <language>, Atom xml:lang
    fg.author(name=_text(doc.author))  # RFC 4287 §4.1.1: an author at feed level covers entries
    fg.generator(*GENERATOR)
    fg.updated(doc.updated)
    fg.lastBuildDate(doc.updated)
    if entries:
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


# -- JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) -----------------------------------
# The same texts as the XML formats, cleaned the same way (clean_xml_text also drops the lone
# surrogates UTF-8 cannot encode), so an entry reads the same in every format.


def _json_feed(doc: FeedDocument) -> dict[str, Any]:
    """The top-level object, with ``items`` empty and last (render_cached fills it)."""
    title = _text_or(doc.title, UNTITLED)
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": title,
        "home_page_url": _text(doc.link),
        "feed_url": _text(doc.self_url),
        "description": _text_or(doc.subtitle, title),
        "language": _text(doc.language),
    }
    author = _text(doc.author)
    if author.strip():  # an author object needs at least one member: no empty name
        feed["authors"] = [{"name": author}]
    if doc.pages.next is not None:  # JSON Feed's paging: older items are at next_url
        feed["next_url"] = _text(doc.pages.next)
    if doc.hub is not None:  # JSON Feed 1.1 "hubs": where to subscribe for real-time updates
        feed["hubs"] = [{"type": "WebSub", "url": _text(doc.hub)}]
    feed["items"] = []
    return feed


def _json_item(entry: EntryDocument) -> dict[str, Any]:
    title = _text_or(entry.title, UNTITLED)
    item: dict[str, Any] = {
        "id": _text(entry.guid),  # the permanent guid, as RSS guid and atom:id
        "url": _text(entry.link),
        "title": title,
        "content_html": _text(entry.content_html),
        "summary": _text_or(entry.summary, title),  # plain text, as Atom <summary>
        "date_published": entry.published.isoformat(),  # RFC 3339, with the site's offset
        "date_modified": entry.updated.isoformat(),
    }
    author = _text(entry.author)
    if author.strip():  # without one, the feed's authors are the item's (spec: authors)
        item["authors"] = [{"name": author}]
    # The category first, then the tags, each once: what RSS and Atom carry as categories.
    category = _text(entry.category_name)
    tags = [category] if category.strip() else []
    tags += [tag for tag in (_text(tag) for tag in entry.tags) if tag.strip()]
    if tags:
        item["tags"] = list(dict.fromkeys(tags))
    if entry.language:
        item["language"] = _text(entry.language)
    return item


def _json_bytes(value: Any) -> bytes:
    # Compact, and Chinese as UTF-8 rather than \u escapes (a third of the bytes).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render_json(doc: FeedDocument) -> bytes:
    feed = _json_feed(doc)
    feed["items"] = [_json_item(entry) for entry in doc.entries]
    return _json_bytes(feed)


RENDERERS: dict[str, tuple[Callable[[FeedDocument], bytes], str]] = {
    "rss": (render_rss, RSS_MEDIA_TYPE),
    "atom": (render_atom, ATOM_MEDIA_TYPE),
    "json": (render_json, JSON_MEDIA_TYPE),
}
MEDIA_TYPES = {fmt: media_type for fmt, (_, media_type) in RENDERERS.items()}
# What closes a frame: the entries go just before it (feedgen appends them last).
_CLOSING = {"rss": b"</channel></rss>", "atom": b"</feed>", "json": b"]}"}
# A constant feed that carries one entry while its bytes are cut out (entry bytes depend on
# the entry and the format alone: the namespaces are declared on the root, the same in both).
_CARRIER = FeedDocument(
    feed_id="urn:feedsvc:carrier",
    title="carrier",
    subtitle="carrier",
    link="http://carrier.invalid/",
    self_url="http://carrier.invalid/feed",
    language="zh-CN",
    author="carrier",
    updated=datetime(2000, 1, 1, tzinfo=UTC),
    entries=(),
)


class EntryCache:
    """Rendered entries by (format, entry document): a thread-safe LRU bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, EntryDocument], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return self._bytes

    def get(self, fmt: str, entry: EntryDocument) -> bytes | None:
        with self._lock:
            found = self._items.get((fmt, entry))
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end((fmt, entry))
            self.hits += 1
            return found

    def put(self, fmt: str, entry: EntryDocument, body: bytes) -> None:
        size = len(body) + len(entry.content_html) + ENTRY_OVERHEAD
        with self._lock:
            key = (fmt, entry)
            if key in self._items or size > self._max_bytes:
                return
            self._items[key] = body
            self._bytes += size
            while self._bytes > self._max_bytes:
                old, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped) + len(old[1].content_html) + ENTRY_OVERHEAD


# Per cached entry besides its bytes and the key's content: the key, the other texts (measured
# on sample posts: well under 1 KiB).
ENTRY_OVERHEAD = 1024


def render_cached(doc: FeedDocument, fmt: str, cache: EntryCache) -> bytes:
    """``RENDERERS[fmt]``'s bytes, with every entry rendered at most once per cache life."""
    if fmt == "json":
        return _render_json_cached(doc, cache)
    rss = fmt == "rss"
    closing = _CLOSING[fmt]
    frame = _render_frame(doc, rss=rss)
    if not frame.endswith(closing):  # pragma: no cover
        raise RuntimeError("feedgen no longer closes the feed as expected")
    parts = [frame[: -len(closing)]]
    for entry in doc.entries:
        body = cache.get(fmt, entry)
        if body is None:
            body = _entry_bytes(entry, rss=rss, closing=closing)
            cache.put(fmt, entry, body)
        parts.append(body)
    parts.append(closing)
    return b"".join(parts)


def _render_frame(doc: FeedDocument, *, rss: bool) -> bytes:
    fg = _generator(doc, rss=rss, entries=False)
    return _serialize(fg.rss_str if rss else fg.atom_str)


@functools.cache
def _carrier_prefix(rss: bool) -> bytes:
    return _render_frame(_CARRIER, rss=rss)[: -len(_CLOSING["rss" if rss else "atom"])]


def _entry_bytes(entry: EntryDocument, *, rss: bool, closing: bytes) -> bytes:
    fg = _generator(_CARRIER, rss=rss, entries=False)
    _add_entry(fg, entry, rss=rss)
    full = _serialize(fg.rss_str if rss else fg.atom_str)
    prefix = _carrier_prefix(rss)
    # feedgen appends entries last, after everything of the frame (its _create_rss/_atom).
    if not (full.startswith(prefix) and full.endswith(closing)):  # pragma: no cover
        raise RuntimeError("feedgen no longer writes entries last in the feed")
    return full[len(prefix) : -len(closing)]


def _render_json_cached(doc: FeedDocument, cache: EntryCache) -> bytes:
    """render_json's bytes: the top-level object with its empty items array opened, then
    each item's bytes (cached) joined by commas, then the closing ``]}``."""
    closing = _CLOSING["json"]
    frame = _json_bytes(_json_feed(doc))
    if not frame.endswith(b"[" + closing):  # pragma: no cover
        raise RuntimeError("the JSON Feed frame no longer ends with its items")
    items = []
    for entry in doc.entries:
        body = cache.get("json", entry)
        if body is None:
            body = _json_bytes(_json_item(entry))
            cache.put("json", entry, body)
        items.append(body)
    return frame[: -len(closing)] + b",".join(items) + closing


# -- OPML 2.0 (http://opml.org/spec2.opml) ----------------------------------------------------
OPML_MEDIA_TYPE = "text/x-opml; charset=utf-8"
OPML_DOCS = "http://opml.org/spec2.opml"


def render_opml(doc: OutlineDocument) -> bytes:
    """The subscription list: lxml writes and escapes every attribute and text."""
    root = lxml.etree.Element("opml", version="2.0")
    head = lxml.etree.SubElement(root, "head")
    lxml.etree.SubElement(head, "title").text = _text_or(doc.title, UNTITLED)
    # OPML 2.0 §<head>: dates are RFC 822 date-times.
    lxml.etree.SubElement(head, "dateModified").text = format_datetime(doc.modified)
    if doc.owner_name.strip():
        lxml.etree.SubElement(head, "ownerName").text = _text(doc.owner_name)
    lxml.etree.SubElement(head, "docs").text = OPML_DOCS
    body = lxml.etree.SubElement(root, "body")
    for outline in doc.outlines:
        text = _text_or(outline.text, UNTITLED)
        attributes = {
            "type": "rss",  # §Subscription lists: type="rss" whatever the feed's format
            "text": text,
            "title": _text_or(outline.title, text),
            "xmlUrl": _text(outline.xml_url),
            "htmlUrl": _text(outline.html_url),
            "version": "RSS2",
            "language": _text(outline.language),
        }
        if outline.description.strip():
            attributes["description"] = _text(outline.description)
        lxml.etree.SubElement(body, "outline", attributes)
    return bytes(lxml.etree.tostring(root, encoding="UTF-8", xml_declaration=True))
