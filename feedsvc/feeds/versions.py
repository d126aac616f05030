"""The current FeedState of each feed, read from the database only when it may have changed.

Strict: a request never gets a version older than a write that returned before it started,
whichever process wrote (a worker, the CLI, the scheduler). How, per backend:

- SQLite: the process remembers the states it read, together with the database's change
  token (``Database.change_token``: ``PRAGMA data_version`` on the process's own read-only
  connection), shared by its threads: a commit costs one read per feed per process. The
  token is taken *before* the states are read, so a commit that lands in
  between changes the token and the states are read again on the next request. While the
  token is unchanged, no connection has committed anything: the remembered states are exact.
- PostgreSQL (or any database without a token): one indexed row per request, on the
  thread's own autocommit connection through the driver (``Database.hot_row``). A
  connection the server dropped (a restart) is replaced and the read retried once, so
  readers never see it.

A trade, off by default (``feeds.version_max_age_ms`` > 0), for PostgreSQL, where the strict
way costs a round trip per poll: a worker reuses what it read for at most that long, so a
write by *another* process is served within that bound; a write this process committed
(``Database.writes_committed``) is read again at once. The token is then (writes committed
here, the time slot of that length): a state read in one slot is reused until the slot ends,
at most ``max_age`` after it was read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from feedsvc.db import Database
from feedsvc.repo import feedstate
from feedsvc.repo.feedstate import FeedState

SITE_FEED = "all"
# A tag's feed is named "tags/{slug}" (no category slug holds a slash): its URL is
# /feeds/tags/{slug}.{fmt}, the name standing where a category's slug does.
TAG_FEED = "tags/"
# Last-Modified of a tag feed no published write has touched yet (a tag only drafts have):
# nothing it shows ever changed.
NEVER_CHANGED = datetime(1970, 1, 1, tzinfo=UTC)
# Remembered slugs per process (unknown ones too, so that a 404 is cheap); past this the
# memory starts over, which only costs a read.
MAX_REMEMBERED = 1024


class FeedVersions:
    def __init__(
        self,
        db: Database,
        max_age_ms: int = 0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._max_age = max_age_ms / 1000
        self._monotonic = monotonic
        # Shared by the process's threads: both tokens mean the same in every thread.
        self._lock = threading.Lock()
        self._token: object = None
        self._states: dict[str, FeedState | None] = {}

    def state(self, slug: str) -> FeedState | None:
        """The feed's state now, or None when there is no such category (or tag)."""
        token = self._db.change_token()
        if token is None:
            if self._max_age <= 0:
                return self._read(slug)
            token = (self._db.writes_committed, int(self._monotonic() // self._max_age))
        with self._lock:
            if self._token != token or len(self._states) >= MAX_REMEMBERED:
                self._states, self._token = {}, token
            elif slug in self._states:
                return self._states[slug]
        # Read after the token was taken: a commit in between changes the token, and the
        # next request reads again. Kept only under the token it was read after.
        state = self._read(slug)
        with self._lock:
            if self._token == token:
                self._states[slug] = state
        return state

    def _read(self, slug: str) -> FeedState | None:
        # repo/feedstate.py's statements, read by the hot path's own means (Database.hot_row).
        if slug == SITE_FEED:
            row = self._db.hot_row(feedstate.SITE_STATE)
            assert row is not None  # the site_state row is made by the migrations
            return FeedState(None, row[0], row[1], None)
        if slug.startswith(TAG_FEED):
            row = self._db.hot_row(feedstate.TAG_STATE, {"slug": slug[len(TAG_FEED) :]})
            if row is None:
                return None
            return FeedState(None, row[1], row[2] or NEVER_CHANGED, None, tag_id=row[0])
        row = self._db.hot_row(feedstate.CATEGORY_STATE, {"slug": slug})
        return None if row is None else FeedState(row[0], row[1], row[2], row[3])
