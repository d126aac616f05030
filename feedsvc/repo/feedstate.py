"""The validators every feed is cached under: a content version and a last-change time.

A write bumps them in its own transaction, so any process that reads them after the write
returned sees the new version and never serves older bytes (see feeds/cache.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from feedsvc.models import Category, SiteState

SITE_STATE_ID = 1


@dataclass(frozen=True)
class FeedState:
    category_id: int | None  # None: the whole-site feed
    version: int
    changed_at: datetime
    feed_length: int | None


# Read on the hot path by feeds/versions.py (through Database.hot_row): a row of
# (id, content_version, feed_changed_at, feed_length) for a category, or
# (content_version, feed_changed_at) for the whole site.
CATEGORY_STATE = select(
    Category.id, Category.content_version, Category.feed_changed_at, Category.feed_length
).where(Category.slug == bindparam("slug"))
SITE_STATE = select(SiteState.content_version, SiteState.feed_changed_at).where(
    SiteState.id == SITE_STATE_ID
)


def bump(session: Session, category_ids: Iterable[int], now: datetime, *, visible: bool) -> None:
    """Bump the version of these categories' feeds and the site feed.

    ``visible``: the change alters what a feed shows now (not only, say, a post scheduled
    for later), so its Last-Modified moves to ``now`` too.
    """
    # Core statements on the tables: the ORM's UPDATE would first look through the session
    # for objects to synchronise, which costs more than the statement itself.
    categories, site = Category.__table__, SiteState.__table__
    assert isinstance(categories, Table) and isinstance(site, Table)
    values: dict[str, object] = {"content_version": categories.c.content_version + 1}
    if visible:
        values["feed_changed_at"] = now
    ids = sorted(set(category_ids))
    if ids:
        session.execute(update(categories).where(categories.c.id.in_(ids)).values(**values))
    site_values: dict[str, object] = {"content_version": site.c.content_version + 1}
    if visible:
        site_values["feed_changed_at"] = now
    session.execute(update(site).where(site.c.id == SITE_STATE_ID).values(**site_values))
