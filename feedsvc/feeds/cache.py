"""Rendered feed bytes, keyed by feed, format, limit and content version.

The version is read from the database on every request (one indexed row), so several
processes sharing one database never serve bytes older than a write that has returned: a
write bumps the version in its own transaction, and a new version is a new key. A cached
feed also expires when its next scheduled post becomes due, with no write at all.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FeedKey:
    feed: str  # category slug, or "all"
    fmt: str
    limit: int | None  # None: the feed's default length
    version: int


@dataclass(frozen=True)
class RenderedFeed:
    body: bytes
    gzip_body: bytes  # compressed once, when cached, never per request
    etag: str  # strong validator of the identity bytes, quoted: "…"
    gzip_etag: str  # RFC 9110 §8.8.3: a different content coding needs a different ETag
    last_modified: datetime
    media_type: str
    valid_until: datetime | None  # when a scheduled post becomes due

    @classmethod
    def of(
        cls, body: bytes, *, last_modified: datetime, media_type: str, valid_until: datetime | None
    ) -> RenderedFeed:
        digest = hashlib.sha256(body).hexdigest()[:32]
        return cls(
            body=body,
            # mtime=0: the same bytes compress to the same bytes in every process.
            gzip_body=gzip.compress(body, compresslevel=6, mtime=0),
            etag=f'"{digest}"',
            gzip_etag=f'"{digest}-gzip"',
            last_modified=last_modified,
            media_type=media_type,
            valid_until=valid_until,
        )

    def fresh_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


class FeedCache:
    """A small thread-safe LRU of rendered feeds, one per process."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._items: OrderedDict[FeedKey, RenderedFeed] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: FeedKey, now: datetime) -> RenderedFeed | None:
        with self._lock:
            feed = self._items.get(key)
            if feed is None or not feed.fresh_at(now):
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return feed

    def put(self, key: FeedKey, feed: RenderedFeed) -> None:
        with self._lock:
            # Older versions of the same feed can never be asked for again.
            stale = [k for k in self._items if k.feed == key.feed and k.version < key.version]
            for old in stale:
                del self._items[old]
            self._items[key] = feed
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
