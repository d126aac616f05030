"""Every feed a test fetches is parsed twice: by feedparser (bozo must be false) and lxml."""

from __future__ import annotations

from typing import Any

import feedparser
from lxml import etree

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
}


def parse(body: bytes) -> tuple[Any, etree._Element]:
    parsed = feedparser.parse(body)
    assert not parsed.bozo, f"feedparser: {parsed.get('bozo_exception')}"
    root = etree.fromstring(body)
    return parsed, root
