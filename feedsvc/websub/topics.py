"""Which URLs are WebSub topics here, and the feed each one names (pure: no I/O).

A topic is a feed's canonical first page at its default length, in one format: the URL its
``rel="self"`` says, /feeds/{slug}.{fmt}, /feeds/all.{fmt} or /feeds/tags/{slug}.{fmt}.
``?limit=`` variants and pages past the first (``?before=``) advertise no hub and are no
topics. A feed is named as feeds/versions.py names it: a category's slug, "all", or
"tags/{slug}".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from feedsvc.feeds.document import Links

FORMATS = ("rss", "atom", "json")
_FEED_PATH = re.compile(r"(?P<feed>(?:tags/)?[^/?#]+)\.(?P<fmt>rss|atom|json)")


@dataclass(frozen=True)
class Topic:
    feed: str
    fmt: str


class NotATopic(ValueError):
    """The URL is not a feed of this site; str() says why (sent as hub.reason)."""


def parse_topic(url: str, base_url: str) -> Topic:
    """The feed a topic URL names (it may not exist: the caller looks)."""
    prefix = f"{base_url}/feeds/"
    if not url.startswith(prefix):
        raise NotATopic(f"only this site's feeds ({prefix}…) can be subscribed to here")
    match = _FEED_PATH.fullmatch(url[len(prefix) :])
    if match is None:
        raise NotATopic(
            "not a feed URL of this site: a topic is /feeds/{category}.{rss|atom|json}, "
            "/feeds/all.{fmt} or /feeds/tags/{tag}.{fmt}, without a query"
        )
    return Topic(unquote(match["feed"]), match["fmt"])


def topic_url(links: Links, topic: Topic) -> str:
    return links.feed(topic.feed, topic.fmt)
