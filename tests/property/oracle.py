"""What a feed reader should see of a text we render, spelled out apart from the code.

The cleaning (feedsvc.content.clean_xml_text) is restated here per code point, from its
definition rather than its regex: every Unicode control (category Cc) but TAB, LF and CR,
every lone surrogate (Cs) and U+FFFE/U+FFFF are dropped; everything else is kept.
"""

from __future__ import annotations

import unicodedata

from feedparser.mixin import _FeedParserMixin

from feedsvc.feeds.render import UNTITLED


def kept(char: str) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return char in "\t\n\r"
    return category != "Cs" and char not in "\ufffe\uffff"


def cleaned(text: str) -> str:
    return "".join(char for char in text if kept(char))


def or_fallback(text: str, fallback: str) -> str:
    """A text cleaning leaves blank is replaced (feedgen refuses empty titles)."""
    value = cleaned(text)
    return value if value.strip() else fallback


def title(text: str) -> str:
    return or_fallback(text, UNTITLED)


def seen_by_feedparser(text: str) -> str:
    """feedparser 6.0.14's view of an element's text (feedparser/mixin.py, ``pop``).

    It strips white space at both ends and, for UTF-8 documents, "repairs" a text made only
    of Latin-1 characters that also decodes as UTF-8 ("Ã©" -> "é"): its guess that the
    publisher double-encoded. Our bytes say "Ã©" (lxml reads that back); the guess is the
    reader's. Atom names skip the repair (``seen_by_feedparser_as_name``); attributes (Atom
    category terms) come back exactly.
    """
    value = text.strip()
    try:
        return value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def seen_by_feedparser_as_name(text: str) -> str:
    return text.strip()


def seen_by_feedparser_as_html(text: str) -> str:
    """The same for a text we escape into HTML (RSS <description>), unescaped again: its
    sanitizer also turns CRLF into LF (feedparser/sanitizer.py), invisible in HTML."""
    return seen_by_feedparser(text.strip().replace("\r\n", "\n"))


def guessed_html_by_feedparser(text: str) -> bool:
    """RSS titles are nominally plain text; feedparser reads one as HTML (and sanitizes it)
    when it looks like HTML: an entity or a closing tag of a known element ("&amp;", "</b>").
    Our bytes carry the text exactly either way (lxml reads it back); the guess is the
    reader's, and a feed cannot tell it otherwise (RSS 2.0 has no type attribute)."""
    return bool(_FeedParserMixin.looks_like_html(text.strip()))
