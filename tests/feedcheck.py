"""Every feed a test fetches is parsed twice: by feedparser (bozo must be false) and lxml;
a JSON Feed is checked against the JSON Feed 1.1 spec's members and types (check_json_feed)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

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


# -- JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) ---------------------------------
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
_URL_KEYS = {"home_page_url", "feed_url", "next_url", "icon", "favicon"}
_FEED_KEYS = {"version", "title", "description", "user_comment", "language", "expired", "hubs"}
_FEED_KEYS |= _URL_KEYS | {"authors", "items"}
_ITEM_TEXT_KEYS = {"id", "title", "content_html", "content_text", "summary", "language"}
_ITEM_URL_KEYS = {"url", "external_url", "image", "banner_image"}
_ITEM_DATE_KEYS = {"date_published", "date_modified"}
_ITEM_KEYS = _ITEM_TEXT_KEYS | _ITEM_URL_KEYS | _ITEM_DATE_KEYS | {"authors", "tags"}
_ITEM_KEYS |= {"attachments"}
# RFC 3339 date-time: a full date, a time, and an offset (Z or ±hh:mm).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _absolute_url(value: object, where: str) -> None:
    assert isinstance(value, str), f"{where}: must be a string"
    parts = urlsplit(value)
    assert parts.scheme in ("http", "https") and parts.netloc, f"{where}: not a URL: {value!r}"


def _authors(value: object, where: str) -> None:
    # 1.1: an array of author objects, each with at least one of name, url, avatar.
    assert isinstance(value, list) and value, f"{where}: must be a non-empty array"
    for author in value:
        assert isinstance(author, dict), f"{where}: an author must be an object"
        members = {"name", "url", "avatar"} & set(author)
        assert members, f"{where}: an author needs name, url or avatar"
        for key in members:
            assert isinstance(author[key], str) and author[key], f"{where}.{key}: empty"
        _extensions_only(set(author) - {"name", "url", "avatar"}, where)


def _extensions_only(keys: set[str], where: str) -> None:
    # The spec's own keys only; anything else must be an extension (a leading underscore).
    unknown = sorted(key for key in keys if not key.startswith("_"))
    assert not unknown, f"{where}: keys the spec does not define: {unknown}"


def check_json_feed(body: bytes) -> dict[str, Any]:
    """The feed, parsed, after checking every member against the spec's types and rules."""
    feed = json.loads(body.decode("utf-8"))  # UTF-8 only (RFC 8259 §8.1): no BOM
    assert isinstance(feed, dict), "top level: must be an object"
    assert feed.get("version") == JSON_FEED_VERSION, f"version: {feed.get('version')!r}"
    assert isinstance(feed.get("title"), str) and feed["title"], "title: required string"
    _extensions_only(set(feed) - _FEED_KEYS, "feed")
    for key in _URL_KEYS & set(feed):
        _absolute_url(feed[key], key)
    for key in ("description", "user_comment", "language"):
        if key in feed:
            assert isinstance(feed[key], str), f"{key}: must be a string"
    if "expired" in feed:
        assert isinstance(feed["expired"], bool), "expired: must be a boolean"
    if "authors" in feed:
        _authors(feed["authors"], "authors")
    if "hubs" in feed:
        # 1.1: an array of objects, each with a type ("WebSub", "rssCloud") and a url.
        assert isinstance(feed["hubs"], list) and feed["hubs"], "hubs: must be a non-empty array"
        for number, hub in enumerate(feed["hubs"]):
            where = f"hubs[{number}]"
            assert isinstance(hub, dict), f"{where}: must be an object"
            assert isinstance(hub.get("type"), str) and hub["type"], f"{where}.type: required"
            _absolute_url(hub.get("url"), f"{where}.url")
            _extensions_only(set(hub) - {"type", "url"}, where)
    assert isinstance(feed.get("items"), list), "items: required array"
    ids = []
    for number, item in enumerate(feed["items"]):
        where = f"items[{number}]"
        assert isinstance(item, dict), f"{where}: must be an object"
        _extensions_only(set(item) - _ITEM_KEYS, where)
        # id is required and a string (the spec: a number must be coerced, so we send text).
        assert isinstance(item.get("id"), str) and item["id"], f"{where}.id: required string"
        ids.append(item["id"])
        assert "content_html" in item or "content_text" in item, f"{where}: no content"
        for key in _ITEM_TEXT_KEYS & set(item):
            assert isinstance(item[key], str), f"{where}.{key}: must be a string"
        for key in _ITEM_URL_KEYS & set(item):
            _absolute_url(item[key], f"{where}.{key}")
        for key in _ITEM_DATE_KEYS & set(item):
            assert isinstance(item[key], str) and _RFC3339.fullmatch(item[key]), (
                f"{where}.{key}: not an RFC 3339 date: {item[key]!r}"
            )
            datetime.fromisoformat(item[key])  # a real date, too
        if "authors" in item:
            _authors(item["authors"], f"{where}.authors")
        if "tags" in item:
            tags = item["tags"]
            assert isinstance(tags, list) and all(isinstance(t, str) and t for t in tags), (
                f"{where}.tags: must be an array of strings"
            )
    assert len(ids) == len(set(ids)), "items: an id appears twice"
    return feed
