"""Rendered feed bytes, keyed by feed, format, limit and content version.

The version comes from the database on every request (feeds/versions.py: one indexed row,
or on SQLite nothing at all while no connection has committed), so several processes
sharing one database never serve bytes older than a write that has returned: a write bumps
the version in its own transaction, and a new version is a new key. A cached feed also
expires when its next scheduled post becomes due, with no write at all.

Everything a warm request answers is computed once per entry, when it is cached: the gzip
body, both ETags, the Last-Modified date and the response header lists (with the feed's Link
header, when it advertises a WebSub hub).

Two bounds keep it small: a byte budget (``feeds.cache_max_bytes``: identity and gzip bodies
and their headers, counted per entry) and a number of entries (``feeds.cache_entries``); the
least recently used feeds go first. Every ``?limit=`` of every feed is its own entry, so an
entry count alone let a worker hold hundreds of MiB.

Single flight: when a write bumps a version, every request for that feed misses at once.
``get_or_build`` lets the first of them build while the others (threads of this process)
wait for its bytes, so one version is built once per process, not once per request.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from werkzeug.http import http_date

Headers = tuple[tuple[str, str], ...]
# (rel, absolute URL) of the links a response carries in its Link header (RFC 8288).
Links = tuple[tuple[str, str], ...]


def link_header(links: Links) -> str:
    """RFC 8288 §3: ``<url>; rel="hub", <url>; rel="self"``, in the order given."""
    return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links)


@dataclass(frozen=True)
class FeedKey:
    feed: str  # category slug, or "all"
    fmt: str
    limit: int | None  # None: the feed's default length
    version: int
    before: tuple[datetime, int] | None = None  # a page past the first (RFC 5005 ?before=)


@dataclass(frozen=True)
class Representation:
    """One content coding of a feed and its precomputed answers (Cache-Control aside)."""

    body: bytes
    etag: str
    ok_headers: Headers  # 200 (and HEAD)
    not_modified_headers: Headers  # 304: RFC 9110 §15.4.5, the validators and Vary, no body

    @classmethod
    def of(
        cls,
        body: bytes,
        etag: str,
        *,
        media_type: str,
        last_modified: str,
        coding: str | None,
        links: Links = (),
    ) -> Representation:
        validators = (("ETag", etag), ("Last-Modified", last_modified), ("Vary", "Accept-Encoding"))
        entity = (("Content-Type", media_type), ("Content-Length", str(len(body))))
        encoding = (("Content-Encoding", coding),) if coding else ()
        # W3C WebSub §4: the hub and self links as an HTTP header too. Only on 200 and HEAD:
        # a 304 repeats the validators, and the reader has the links from its earlier 200.
        link = (("Link", link_header(links)),) if links else ()
        return cls(body, etag, entity + validators + encoding + link, validators)


@dataclass(frozen=True)
class RenderedFeed:
    body: bytes
    gzip_body: bytes  # compressed once, when cached, never per request
    etag: str  # strong validator of the identity bytes, quoted: "…"
    gzip_etag: str  # RFC 9110 §8.8.3: a different content coding needs a different ETag
    last_modified: datetime
    media_type: str
    valid_until: datetime | None  # when a scheduled post becomes due
    identity: Representation
    gzipped: Representation

    @classmethod
    def of(
        cls,
        body: bytes,
        *,
        last_modified: datetime,
        media_type: str,
        valid_until: datetime | None,
        links: Links = (),
    ) -> RenderedFeed:
        """``links``: (rel, URL) pairs for a Link header on 200 and HEAD (none: no header)."""
        digest = hashlib.sha256(body).hexdigest()[:32]
        # mtime=0: the same bytes compress to the same bytes in every process.
        gzip_body = gzip.compress(body, compresslevel=6, mtime=0)
        etag, gzip_etag = f'"{digest}"', f'"{digest}-gzip"'
        date = http_date(last_modified)
        return cls(
            body=body,
            gzip_body=gzip_body,
            etag=etag,
            gzip_etag=gzip_etag,
            last_modified=last_modified,
            media_type=media_type,
            valid_until=valid_until,
            identity=Representation.of(
                body, etag, media_type=media_type, last_modified=date, coding=None, links=links
            ),
            gzipped=Representation.of(
                gzip_body,
                gzip_etag,
                media_type=media_type,
                last_modified=date,
                coding="gzip",
                links=links,
            ),
        )

    def fresh_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


# Of every entry: the header lists, the dataclasses, the key (measured: about 1.5 KiB).
ENTRY_OVERHEAD = 2048
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def entry_size(feed: RenderedFeed) -> int:
    return len(feed.body) + len(feed.gzip_body) + ENTRY_OVERHEAD


class _Flight:
    """One build in progress; the threads that missed the same key wait for its result."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: RenderedFeed | None = None
        self.failed = False


class FeedCache:
    """A thread-safe LRU of rendered feeds, one per process, bounded by bytes and entries."""

    def __init__(self, max_entries: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._max = max_entries
        self._max_bytes = max_bytes
        self._items: OrderedDict[FeedKey, RenderedFeed] = OrderedDict()
        self._bytes = 0
        self._flights: dict[FeedKey, _Flight] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.builds = 0

    @property
    def size(self) -> int:
        """Bytes held (entry_size of every entry)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: FeedKey, now: datetime) -> RenderedFeed | None:
        with self._lock:
            return self._get(key, now)

    def _get(self, key: FeedKey, now: datetime) -> RenderedFeed | None:
        feed = self._items.get(key)
        if feed is None or not feed.fresh_at(now):
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return feed

    def get_or_build(
        self, key: FeedKey, now: datetime, build: Callable[[], RenderedFeed | None]
    ) -> tuple[RenderedFeed | None, bool]:
        """(the feed, whether it was a hit). On a miss, one thread builds; the others that
        miss the same key meanwhile wait for its result instead of building it again."""
        with self._lock:
            feed = self._get(key, now)
            if feed is not None:
                return feed, True
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if not flight.failed:
                return flight.result, False
            return build(), False  # the builder failed: its error was its own request's
        try:
            self.builds += 1
            flight.result = build()
            if flight.result is not None:
                self.put(key, flight.result)
        except BaseException:
            flight.failed = True
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return flight.result, False

    def put(self, key: FeedKey, feed: RenderedFeed) -> None:
        size = entry_size(feed)
        with self._lock:
            # Older versions of the same feed can never be asked for again.
            stale = [k for k in self._items if k.feed == key.feed and k.version < key.version]
            for old in stale:
                self._drop(old)
            if key in self._items:
                self._drop(key)
            if size > self._max_bytes:
                return  # served, never kept: it alone would exceed the budget
            self._items[key] = feed
            self._bytes += size
            while len(self._items) > self._max or self._bytes > self._max_bytes:
                self._drop(next(iter(self._items)))

    def _drop(self, key: FeedKey) -> None:
        self._bytes -= entry_size(self._items.pop(key))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
