"""Which topics changed: the feeds whose bytes, so whose ETag, are not what was last seen.

A write bumps the content version of every feed it can change (repo/feedstate.py), and a
scheduled post becoming due changes a feed with no write at all (the rendered feed says when:
``valid_until``). So a feed is looked at again when its version moved past the one its topic
rows saw, or when its ``recheck_at`` has come; it is then rendered in this process (the
scheduler's), and only a topic whose ETag differs counts as changed: a version bump that left
the bytes alone (a draft saved, say) notifies nobody.

What is watched: with an external hub, every feed of the site (anyone may have subscribed
there); with the built-in hub, only the feeds a live subscription is for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from feedsvc.context import Context
from feedsvc.feeds import service
from feedsvc.feeds.cache import FeedCache
from feedsvc.models import WebSubTopic
from feedsvc.repo import websub as websub_repo
from feedsvc.websub.topics import FORMATS, Topic

log = logging.getLogger("feedsvc.websub")

_CACHE = "websub.feeds"
_SEEN_SITE_VERSION = "websub.site_version"


def feed_cache(ctx: Context) -> FeedCache:
    """This process's rendered feeds, for the watcher and the deliveries (not the web's)."""
    found = ctx.memory.get(_CACHE)
    if found is None:
        found = ctx.memory.setdefault(_CACHE, FeedCache(256, 32 * 1024 * 1024))
    assert isinstance(found, FeedCache)
    return found


@dataclass(frozen=True)
class Seen:
    topic: Topic
    version: int
    etag: str
    recheck_at: datetime | None


# Feeds rendered between two checkpoints of the lease (the first look of an external hub's
# site renders every feed: thousands of tag feeds take longer than one lease).
CHECKPOINT_EVERY = 200


def look(
    ctx: Context, feeds: set[str], checkpoint: Callable[[], None] = lambda: None
) -> tuple[list[Seen], set[str]]:
    """Render these feeds in every format now: what each topic holds, and the feeds gone."""
    seen, gone = [], set()
    cache = feed_cache(ctx)
    for n, feed in enumerate(sorted(feeds), 1):
        if n % CHECKPOINT_EVERY == 0:
            checkpoint()
        state = service.versions(ctx).state(feed)
        if state is None:
            gone.add(feed)
            continue
        for fmt in FORMATS:
            rendered = service.get_feed(ctx, cache, feed, fmt, None)
            if rendered is None:  # deleted since the state was read
                gone.add(feed)
                break
            seen.append(Seen(Topic(feed, fmt), state.version, rendered.etag, rendered.valid_until))
    return seen, gone


def watch(
    ctx: Context, *, external: bool, checkpoint: Callable[[], None] = lambda: None
) -> list[Topic]:
    """Bring the topic rows up to date; the topics whose ETag changed since last seen.

    With an external hub, each changed topic is owed one publish ping (``ping_due_at``); a
    ping still waiting (or backing off) covers the new change too. A topic seen for the first
    time is a baseline, not a change, when nothing was watched before: switching WebSub on
    does not ping every feed of the site.
    """
    now = ctx.clock.now()
    with ctx.db.read() as session:
        versions = websub_repo.feed_versions(session)
        rows = websub_repo.all_topics(session)
        watched = (
            set(versions)
            if external
            else websub_repo.subscribed_feeds(session, now) & set(versions)
        )
    stale = {feed for feed, _ in rows} - watched
    candidates = {
        feed
        for feed in watched
        for fmt in FORMATS
        if (row := rows.get((feed, fmt))) is None
        or row.version != versions[feed]
        or (row.recheck_at is not None and row.recheck_at <= now)
    }
    seen, gone = look(ctx, candidates, checkpoint)
    first_look = not rows
    changed: list[Topic] = []
    with ctx.db.write() as session:
        websub_repo.remove_topics(session, stale | gone)
        for item in seen:
            row = session.get(WebSubTopic, (item.topic.feed, item.topic.fmt))
            if row is None:
                ping_due = now if external and not first_look else None
                session.add(_new_topic(item, now, ping_due))
                if not first_look:
                    changed.append(item.topic)
                continue
            if row.etag != item.etag:
                changed.append(item.topic)
                row.etag = item.etag
                if external and row.ping_due_at is None:
                    row.ping_due_at = now
            row.version, row.recheck_at, row.checked_at = item.version, item.recheck_at, now
    ctx.memory[_SEEN_SITE_VERSION] = versions.get(service.SITE_FEED)
    if changed:
        names = ", ".join(f"{topic.feed}.{topic.fmt}" for topic in changed[:12])
        more = f" and {len(changed) - 12} more" if len(changed) > 12 else ""
        log.info("websub: %d topics changed: %s%s", len(changed), names, more)
    return changed


def ensure_topic(ctx: Context, topic: Topic) -> str | None:
    """The ETag a topic holds now, watching it from now on (a new subscription's baseline);
    None when the feed is gone. A change found on the way is left for ``watch`` to notice."""
    with ctx.db.read() as session:
        row = session.get(WebSubTopic, (topic.feed, topic.fmt))
        if row is not None:
            return row.etag
    seen, gone = look(ctx, {topic.feed})
    if gone:
        return None
    now = ctx.clock.now()
    with ctx.db.write() as session:
        for item in seen:
            if session.get(WebSubTopic, (item.topic.feed, item.topic.fmt)) is None:
                session.add(_new_topic(item, now, None))
    return next(item.etag for item in seen if item.topic == topic)


def _new_topic(item: Seen, now: datetime, ping_due: datetime | None) -> WebSubTopic:
    return WebSubTopic(
        feed=item.topic.feed,
        fmt=item.topic.fmt,
        version=item.version,
        etag=item.etag,
        checked_at=now,
        recheck_at=item.recheck_at,
        ping_due_at=ping_due,
        ping_failures=0,
    )


def site_changed_since_watched(ctx: Context, site_version: int) -> bool:
    """Whether the site feed's version moved since this process last watched (a new feed, a
    new tag, appears only so)."""
    return ctx.memory.get(_SEEN_SITE_VERSION) != site_version
