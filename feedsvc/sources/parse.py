"""Turn fetched feed bytes into typed entries.

The only module that imports feedparser: its loose dict-like results, aliases
and quirks stop here. Everything it returns is cleaned again: HTML through our
own nh3 allow-list, text stripped of XML-illegal characters, dates read as the
site's local time.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

import feedparser
import nh3

from feedsvc.content import clean_xml_text
from feedsvc.sources.dates import YEAR_FIRST, parse_date


class FeedParseError(Exception):
    """The body is not a feed we can read anything from."""


@dataclass(frozen=True)
class ParsedEntry:
    entry_id: str
    link: str | None  # absolute http(s) URL
    title: str  # plain text
    author: str | None
    summary_html: str  # sanitized
    content_html: str  # sanitized; the full content, else the summary
    published: datetime | None  # aware, never after `now`
    updated: datetime | None  # aware, never after `now`
    tags: tuple[str, ...]


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    link: str | None
    entries: list[ParsedEntry]
    warning: str | None = None  # feedparser's bozo message, if it had one


# Our allow-list: feedparser's own sanitizer keeps <form>, <input>, <svg> and
# style attributes (LIBRARIES.md). nh3 also strips javascript:/data: URLs and
# adds rel="noopener noreferrer" to links, so `rel` is not allowed here.
# fmt: off
_ALLOWED_TAGS = {
    "p", "br", "a", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote",
    "h2", "h3", "h4", "h5", "h6", "img", "pre", "code", "table", "thead",
    "tbody", "tr", "th", "td", "figure", "figcaption", "hr",
}
# Dropped with their content: the text inside is code or widget chrome.
# (An <iframe>'s fallback text stays, an <applet>'s goes: as with feedparser's sanitizer,
# which ran first until issue 9, so stored entries keep their content hashes.)
_DROPPED_WITH_CONTENT = {
    "script", "style", "form", "svg", "math", "applet", "object", "template",
    "textarea", "select", "button",
}
# fmt: on
_URL_SCHEMES = {"http", "https", "mailto"}
_URL_ATTRIBUTES = {("a", "href"), ("img", "src")}
# The URL relative links of the HTML being cleaned resolve against (its element's xml:base,
# else where the document came from): read by _absolute_url while _CLEANER runs.
_HTML_BASE: ContextVar[str] = ContextVar("feedsvc_html_base", default="")


def _absolute_url(element: str, attribute: str, value: str) -> str | None:
    """Relative links made absolute (feedparser's resolve_relative_uris, done here: its own
    pass re-parses every entry's HTML in Python, most of an import's CPU). nh3 has dropped
    other schemes before this runs; one a relative link resolves into (file:) goes too."""
    if (element, attribute) not in _URL_ATTRIBUTES:
        return value
    absolute = urljoin(_HTML_BASE.get(), value.strip())
    return absolute if urlsplit(absolute).scheme.lower() in _URL_SCHEMES else None


_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    clean_content_tags=_DROPPED_WITH_CONTENT,
    attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}},
    url_schemes=_URL_SCHEMES,
    attribute_filter=_absolute_url,
)
# A start tag as nh3 writes it (values double-quoted, `"` escaped) and its attributes.
_START_TAG = re.compile(r'<(a|img)((?: [a-z]+="[^"]*")+)>')
_ATTRIBUTE = re.compile(r' ([a-z]+)="([^"]*)"')


def _sorted_attributes(cleaned: str) -> str:
    """Attributes in name order, nh3's rel last: the HTML feedparser's own passes (which
    sort them) used to hand nh3, so stored entries' content hashes stay the same and an
    upgrade does not make every aggregated post look edited upstream."""

    def tag(match: re.Match[str]) -> str:
        attributes = _ATTRIBUTE.findall(match[2])
        rel = [item for item in attributes if item[0] == "rel"]
        ordered = sorted(item for item in attributes if item[0] != "rel") + rel
        return f"<{match[1]}" + "".join(f' {k}="{v}"' for k, v in ordered) + ">"

    return _START_TAG.sub(tag, cleaned)


_NO_TAGS = nh3.Cleaner(tags=set(), clean_content_tags={"script", "style"})

# XML 1.0 §2.2 Char: one of these anywhere makes lxml (and so feedgen) refuse
# the whole document we later render. TAB, LF and CR are allowed. A `str`
# only holds a surrogate code point when it is a lone one.

# GB2312 lacks characters Chinese sites use every day (the 镕 of 朱镕基);
# GB18030 is a strict superset of GB2312 and GBK, so decoding with it never
# loses text that a mislabelled feed really contains.
_NARROW_CHINESE = r"(?:gb[_-]?2312(?:-80)?|x-gbk|gbk|cp936)"
_CHARSET_PARAM = re.compile(rf"""(?i)(charset\s*=\s*["']?){_NARROW_CHINESE}(?![\w-])""")
_XML_DECL_ENCODING = re.compile(
    rf"""(?i)^(\s*<\?xml[^>]*?encoding\s*=\s*["']){_NARROW_CHINESE}(?=["'])""".encode()
)

# The site timezone for the date handler below, while parse_feed runs.
# A ContextVar is per thread (and per asyncio task), so two parse_feed calls
# in different threads with different timezones cannot see each other's.
_SITE_TZ: ContextVar[tzinfo] = ContextVar("feedsvc_site_tz", default=UTC)


def _date_handler(raw: str) -> time.struct_time | None:
    parsed = parse_date(raw, _SITE_TZ.get())
    return None if parsed is None else parsed.astimezone(UTC).utctimetuple()


# Dates, the design: parse_feed reads each raw date string (entry.published /
# .updated) itself with dates.parse_date and the site timezone passed in as an
# argument: plain, thread-safe code that is the source of truth. feedparser's
# own `*_parsed` values are only a fallback for forms we do not know (not
# starting with a year), and this handler, registered once at import (handlers
# are global and tried newest first), makes those values agree with ours
# instead of turning "2024/03/15" into day 1 of the current month.
feedparser.registerDateHandler(_date_handler)


def parse_feed(
    content: bytes,
    *,
    headers: Mapping[str, str],
    url: str,
    site_tz: tzinfo,
    now: datetime,
) -> ParsedFeed:
    """Parse ``content`` fetched from ``url``; raise FeedParseError if unusable.

    ``url`` is where the bytes came from (FetchResult.final_url): relative
    links resolve against it. ``headers`` are the response headers that
    matter to feedparser (FetchResult.headers). Dates without an offset are
    in ``site_tz``; dates after ``now`` (aware) become ``now``.
    """
    if now.tzinfo is None:
        raise ValueError("parse_feed needs an aware `now`")
    response_headers = {key.lower(): value for key, value in headers.items()}
    # Relative links resolve against the URL the bytes came from.
    response_headers["content-location"] = url
    if "content-type" in response_headers:
        response_headers["content-type"] = _widen_charset(response_headers["content-type"])
    token = _SITE_TZ.set(site_tz)
    try:
        parsed = feedparser.parse(
            _without_doctype(_widen_declared_encoding(content)),
            response_headers=response_headers,
            # Both done by _html (nh3 with our allow-list; links resolved against each
            # element's base): feedparser's passes re-parse every entry's HTML in Python.
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser "never raises", but a hostile feed must not kill the job
        raise FeedParseError(f"parse: feedparser failed: {exc!r}") from exc
    finally:
        _SITE_TZ.reset(token)

    warning = _warning(parsed)
    feed = parsed.feed
    entries = [_entry(entry, feed, url, site_tz, now) for entry in parsed.entries]
    # A truncated document yields entries with nothing in them: they are not entries.
    entries = [e for e in entries if e.title or e.link or e.content_html or e.summary_html]
    if not entries and not _is_valid_empty_feed(parsed):
        raise FeedParseError(
            f"parse: no entries and not a valid feed ({warning or 'unknown format'})"
        )
    return ParsedFeed(
        title=_plain(feed.get("title", ""), feed.get("title_detail")),
        link=_absolute_link(feed.get("link"), url),
        entries=entries,
        warning=warning,
    )


def declared_link(content: bytes) -> str | None:
    """The site link a feed declares in its head (RSS ``channel/link``, Atom ``feed/link``
    rel="alternate"), read without parsing the entries (it stops at the first one): None
    when it has none or the document does not read as plain XML (an encoding expat lacks).
    What feedparser would call the feed's link, as a guess the caller checks afterwards."""
    stack: list[str] = []
    try:
        events = ElementTree.iterparse(io.BytesIO(_without_doctype(content)), ("start", "end"))
        for event, element in events:
            name = str(element.tag).rpartition("}")[2]
            if event == "start":
                if name in ("item", "entry"):
                    return None
                stack.append(name)
                if stack[:1] == ["feed"] and len(stack) == 2 and name == "link":
                    href: str | None = element.get("href")
                    if href and element.get("rel", "alternate") == "alternate":
                        return href.strip()
                continue
            stack.pop()
            if name == "link" and stack[-1:] == ["channel"] and (element.text or "").strip():
                return (element.text or "").strip()
    except (ElementTree.ParseError, ValueError, LookupError):
        return None
    return None


# A DOCTYPE can declare entities (billion laughs: expat expands up to ~8 MiB before its
# amplification limit trips) or point at external ones. Feeds need neither: the whole
# declaration goes before parsing, so no entity is ever expanded or resolved; references
# left undefined make expat fail and feedparser's loose parser keep them as text.
_DOCTYPE = re.compile(rb"<!DOCTYPE(?:[^\[>]*\[.*?\]\s*>|[^>]*>)", re.IGNORECASE | re.DOTALL)


def _without_doctype(content: bytes) -> bytes:
    head, tail = content[:65536], content[65536:]
    return _DOCTYPE.sub(b"", head, count=1) + tail


def _is_valid_empty_feed(parsed: Any) -> bool:
    # bozo is a warning: a wrong charset header or a text/html content type
    # sets it on feeds that parse fine. Only an XML error (or no recognisable
    # feed at all) makes an entry-less result a failure.
    if not parsed.get("version"):
        return False
    exc = parsed.get("bozo_exception")
    return not parsed.get("bozo") or isinstance(exc, feedparser.ThingsNobodyCaresAboutButMe)


def _warning(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    return f"{type(exc).__name__}: {exc}" if exc is not None else "bozo"


def _entry(entry: Any, feed: Any, url: str, site_tz: tzinfo, now: datetime) -> ParsedEntry:
    title = _plain(entry.get("title", ""), entry.get("title_detail"))
    link = _absolute_link(entry.get("link"), url)
    summary = _html(entry.get("summary", ""), entry.get("summary_detail"), url)
    content = _best_content(entry.get("content") or [], url)
    return ParsedEntry(
        entry_id=_entry_id(entry, title, link),
        link=link,
        title=title,
        # RFC 4287 §4.2.1: an entry without an author has the feed's.
        author=_plain(entry.get("author") or feed.get("author") or "", None) or None,
        summary_html=summary,
        content_html=content or summary,
        published=_date(entry, "published", site_tz, now) or _date(entry, "created", site_tz, now),
        updated=_date(entry, "updated", site_tz, now),
        tags=_tags(entry.get("tags") or []),
    )


def _entry_id(entry: Any, title: str, link: str | None) -> str:
    # RSS 2.0 guid / Atom id (RFC 4287 §4.2.6: must never change) first;
    # then the link; then a stable hash so the same item is not re-added.
    entry_id = clean_xml_text(entry.get("id") or "").strip()
    if entry_id:
        return entry_id
    if link:
        return link
    digest = hashlib.sha256(f"{title}\n{link or ''}".encode()).hexdigest()
    return f"sha256:{digest}"


def _best_content(contents: list[Any], url: str) -> str:
    # Atom allows several <content>s in the old 0.3 format; prefer HTML.
    for item in contents:
        if "html" in (item.get("type") or ""):
            return _html(item.get("value", ""), item, url)
    return _html(contents[0].get("value", ""), contents[0], url) if contents else ""


def _html(value: str | None, detail: Any, url: str) -> str:
    value = value or ""  # feedparser leaves None where an element was opened and never filled
    if detail is not None and (detail.get("type") or "").startswith("text/plain"):
        value = html.escape(value)
    token = _HTML_BASE.set((detail.get("base") if detail is not None else None) or url)
    try:
        cleaned = _CLEANER.clean(clean_xml_text(value))
    finally:
        _HTML_BASE.reset(token)
    return clean_xml_text(_sorted_attributes(cleaned)).strip()


def _plain(value: str | None, detail: Any) -> str:
    # Titles and names are text; a feed may still send them as HTML.
    value = value or ""
    if detail is not None and "html" in (detail.get("type") or ""):
        value = html.unescape(_NO_TAGS.clean(value))
    return " ".join(clean_xml_text(value).split())


def _absolute_link(link: str | None, base: str) -> str | None:
    if not link:
        return None
    absolute = urljoin(base, clean_xml_text(link).strip())
    # A javascript: or data: "link" is never something to point readers at.
    return absolute if urlsplit(absolute).scheme in ("http", "https") else None


def _date(entry: Any, key: str, site_tz: tzinfo, now: datetime) -> datetime | None:
    # dict.get: FeedParserDict.get("updated") falls back to "published".
    raw = dict.get(entry, key)
    if not raw:
        return None
    value = parse_date(raw, site_tz)
    if value is None and not YEAR_FIRST.match(raw):
        fallback = dict.get(entry, f"{key}_parsed")  # a UTC struct_time
        value = datetime(*fallback[:6]).replace(tzinfo=UTC) if fallback else None
    # A date in the future would pin the entry to the top of every feed.
    return min(value, now) if value is not None else None


def _tags(tags: list[Any]) -> tuple[str, ...]:
    names = (" ".join(clean_xml_text(t.get("label") or t.get("term") or "").split()) for t in tags)
    return tuple(dict.fromkeys(name for name in names if name))


def _widen_charset(content_type: str) -> str:
    return _CHARSET_PARAM.sub(r"\1gb18030", content_type)


def _widen_declared_encoding(content: bytes) -> bytes:
    # Only the XML declaration at the very start, which is ASCII in every
    # encoding this can match.
    head = _XML_DECL_ENCODING.sub(rb"\1gb18030", content[:256], count=1)
    return head + content[256:]
