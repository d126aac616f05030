"""The validators every feed is cached under: a content version and a last-change time.

A write bumps them in its own transaction, so any process that reads them after the write
returned sees the new version and never serves older bytes (see feeds/cache.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from feedsvc.models import Category, SiteState

SITE_STATE_ID = 1


@dataclass(frozen=True)
class FeedState:
    category_id: int | None  # None: the whole-site feed
    version: int
    changed_at: datetime
    feed_length: int | None


_CATEGORY_STATE = select(
    Category.id, Category.content_version, Category.feed_changed_at, Category.feed_length
).where(Category.slug == bindparam("slug"))
_SITE_STATE = select(SiteState.content_version, SiteState.feed_changed_at).where(
    SiteState.id == SITE_STATE_ID
)


def category_feed_state(connection: Connection | Session, slug: str) -> FeedState | None:
    row = connection.execute(_CATEGORY_STATE, {"slug": slug}).first()
    return None if row is None else FeedState(row[0], row[1], row[2], row[3])


def site_feed_state(connection: Connection | Session) -> FeedState:
    row = connection.execute(_SITE_STATE).one()
    return FeedState(None, row[0], row[1], None)


def bump(session: Session, category_ids: Iterable[int], now: datetime, *, visible: bool) -> None:
    """Bump the version of these categories' feeds and the site feed.

    ``visible``: the change alters what a feed shows now (not only, say, a post scheduled
    for later), so its Last-Modified moves to ``now`` too.
    """
    values: dict[str, object] = {"content_version": Category.content_version + 1}
    if visible:
        values["feed_changed_at"] = now
    ids = sorted(set(category_ids))
    if ids:
        session.execute(update(Category).where(Category.id.in_(ids)).values(**values))
    site_values: dict[str, object] = {"content_version": SiteState.content_version + 1}
    if visible:
        site_values["feed_changed_at"] = now
    session.execute(update(SiteState).where(SiteState.id == SITE_STATE_ID).values(**site_values))
