"""WebSub rows: the watched topics, the built-in hub's subscriptions and pending requests."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, delete, func, or_, select, update
from sqlalchemy.orm import Session

from feedsvc.feeds.versions import SITE_FEED, TAG_FEED
from feedsvc.models import (
    Category,
    SiteState,
    Tag,
    WebSubIntent,
    WebSubSubscription,
    WebSubTopic,
)
from feedsvc.repo.feedstate import SITE_STATE_ID

# --- the feeds' versions ------------------------------------------------------------------


def feed_versions(session: Session) -> dict[str, int]:
    """The content version of every feed there is: the site's, each category's, each tag's."""
    found = {SITE_FEED: site_version(session)}
    for slug, version in session.execute(select(Category.slug, Category.content_version)):
        found[slug] = version
    for slug, version in session.execute(select(Tag.slug, Tag.content_version)):
        found[TAG_FEED + slug] = version
    return found


def site_version(session: Session) -> int:
    return (
        session.scalar(select(SiteState.content_version).where(SiteState.id == SITE_STATE_ID)) or 0
    )


def topics_behind(session: Session) -> bool:
    """Whether a watched feed's version moved past the one its topic rows last saw."""
    site = select(WebSubTopic.feed).where(
        WebSubTopic.feed == SITE_FEED,
        WebSubTopic.version
        != select(SiteState.content_version).where(SiteState.id == SITE_STATE_ID).scalar_subquery(),
    )
    categories = (
        select(WebSubTopic.feed)
        .join(Category, Category.slug == WebSubTopic.feed)
        .where(WebSubTopic.version != Category.content_version)
    )
    tags = (
        select(WebSubTopic.feed)
        .join(Tag, TAG_FEED + Tag.slug == WebSubTopic.feed)
        .where(WebSubTopic.version != Tag.content_version)
    )
    return any(session.scalar(query.limit(1)) is not None for query in (site, categories, tags))


# --- topics -------------------------------------------------------------------------------


def all_topics(session: Session) -> dict[tuple[str, str], WebSubTopic]:
    return {(t.feed, t.fmt): t for t in session.scalars(select(WebSubTopic))}


def subscribed_feeds(session: Session, now: datetime) -> set[str]:
    """The feeds some live subscription is for (the built-in hub watches only those)."""
    return set(
        session.scalars(
            select(WebSubSubscription.feed).where(WebSubSubscription.expires_at > now).distinct()
        )
    )


def remove_topics(session: Session, feeds: Iterable[str]) -> None:
    for feed in set(feeds):
        session.execute(delete(WebSubTopic).where(WebSubTopic.feed == feed))


def due_pings(session: Session, now: datetime, limit: int) -> list[WebSubTopic]:
    return list(
        session.scalars(
            select(WebSubTopic)
            .where(WebSubTopic.ping_due_at <= now)
            .order_by(WebSubTopic.ping_due_at, WebSubTopic.feed, WebSubTopic.fmt)
            .limit(limit)
        )
    )


def rechecks_due(session: Session, now: datetime) -> bool:
    found = session.scalar(select(WebSubTopic.feed).where(WebSubTopic.recheck_at <= now).limit(1))
    return found is not None


# --- subscriptions ------------------------------------------------------------------------


def get_subscription(
    session: Session, feed: str, fmt: str, callback: str
) -> WebSubSubscription | None:
    return session.scalar(
        select(WebSubSubscription).where(
            WebSubSubscription.feed == feed,
            WebSubSubscription.fmt == fmt,
            WebSubSubscription.callback == callback,
        )
    )


def subscriptions_by_id(
    session: Session, subscription_ids: Iterable[int]
) -> dict[int, WebSubSubscription]:
    """The rows still there of these subscriptions, in one query (a batch of deliveries)."""
    ids = sorted(set(subscription_ids))
    if not ids:
        return {}
    query = select(WebSubSubscription).where(WebSubSubscription.id.in_(ids))
    return {row.id: row for row in session.scalars(query)}


def list_subscriptions(
    session: Session, *, after_id: int | None, limit: int
) -> list[tuple[WebSubSubscription, str | None]]:
    """Subscriptions by id, each with its topic's ETag (None: the topic is not watched yet)."""
    query = (
        select(WebSubSubscription, WebSubTopic.etag)
        .outerjoin(WebSubTopic, _TOPIC_OF_SUBSCRIPTION)
        .order_by(WebSubSubscription.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(WebSubSubscription.id > after_id)
    return [(row, etag) for row, etag in session.execute(query)]


def count_held(session: Session) -> int:
    """Subscriptions and requests waiting for verification: what websub.max_subscriptions caps."""
    subscriptions = session.scalar(select(func.count()).select_from(WebSubSubscription)) or 0
    intents = session.scalar(select(func.count()).select_from(WebSubIntent)) or 0
    return subscriptions + intents


def _owed_where(now: datetime) -> list[ColumnElement[bool]]:
    """Live subscriptions whose topic holds bytes they have not been sent (joined to it)."""
    return [
        WebSubSubscription.expires_at > now,
        or_(
            WebSubSubscription.delivered_etag.is_(None),
            WebSubSubscription.delivered_etag != WebSubTopic.etag,
        ),
    ]


_TOPIC_OF_SUBSCRIPTION = (WebSubTopic.feed == WebSubSubscription.feed) & (
    WebSubTopic.fmt == WebSubSubscription.fmt
)


def _owed(now: datetime) -> Select[WebSubSubscription]:
    """Subscriptions owed a body now: not waiting to retry (``next_attempt_at``)."""
    return (
        select(WebSubSubscription)
        .join(WebSubTopic, _TOPIC_OF_SUBSCRIPTION)
        .where(
            *_owed_where(now),
            or_(
                WebSubSubscription.next_attempt_at.is_(None),
                WebSubSubscription.next_attempt_at <= now,
            ),
        )
    )


def due_deliveries(
    session: Session, now: datetime, limit: int, exclude: Collection[int] = ()
) -> list[tuple[WebSubSubscription, str]]:
    """Subscriptions owed their topic's body now (but those in ``exclude``: in flight), each
    with the topic's ETag they are owed."""
    query = _owed(now).add_columns(WebSubTopic.etag).order_by(WebSubSubscription.id).limit(limit)
    if exclude:
        query = query.where(WebSubSubscription.id.not_in(sorted(exclude)))
    return [(sub, etag) for sub, etag in session.execute(query)]


def deliveries_due(session: Session, now: datetime) -> bool:
    return session.scalar(_owed(now).with_only_columns(WebSubSubscription.id).limit(1)) is not None


def expire_subscriptions(session: Session, now: datetime) -> list[WebSubSubscription]:
    """Delete the subscriptions whose lease ran out (WebSub §5.1: hub.lease_seconds)."""
    gone = list(
        session.scalars(select(WebSubSubscription).where(WebSubSubscription.expires_at <= now))
    )
    if gone:
        session.execute(
            delete(WebSubSubscription).where(WebSubSubscription.id.in_([s.id for s in gone]))
        )
    return gone


def leases_ended(session: Session, now: datetime) -> bool:
    found = session.scalar(
        select(WebSubSubscription.id).where(WebSubSubscription.expires_at <= now).limit(1)
    )
    return found is not None


def remove_subscription(session: Session, subscription_id: int) -> bool:
    result = session.execute(
        delete(WebSubSubscription).where(WebSubSubscription.id == subscription_id)
    )
    return bool(getattr(result, "rowcount", 0))


# --- intents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewIntent:
    mode: str
    topic: str
    callback: str
    feed: str | None
    fmt: str | None
    secret: str | None
    lease_seconds: int | None
    reason: str | None


def add_intent(session: Session, intent: NewIntent, now: datetime) -> int:
    """Record a request to act on; one still pending for the same topic and callback is
    superseded (the subscriber's latest word counts)."""
    session.execute(
        delete(WebSubIntent).where(
            WebSubIntent.topic == intent.topic, WebSubIntent.callback == intent.callback
        )
    )
    row = WebSubIntent(
        mode=intent.mode,
        topic=intent.topic,
        callback=intent.callback,
        feed=intent.feed,
        fmt=intent.fmt,
        secret=intent.secret,
        lease_seconds=intent.lease_seconds,
        reason=intent.reason,
        requested_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def pair_held(session: Session, intent: NewIntent) -> bool:
    """Whether this topic and callback already hold a subscription or a pending request."""
    pending = select(WebSubIntent.id).where(
        WebSubIntent.topic == intent.topic, WebSubIntent.callback == intent.callback
    )
    if session.scalar(pending.limit(1)) is not None:
        return True
    if intent.feed is None or intent.fmt is None:
        return False
    return get_subscription(session, intent.feed, intent.fmt, intent.callback) is not None


def due_intents(session: Session, now: datetime, limit: int) -> list[WebSubIntent]:
    return list(
        session.scalars(
            select(WebSubIntent)
            .where(WebSubIntent.next_attempt_at <= now)
            .order_by(WebSubIntent.id)
            .limit(limit)
        )
    )


def intents_due(session: Session, now: datetime) -> bool:
    found = session.scalar(
        select(WebSubIntent.id).where(WebSubIntent.next_attempt_at <= now).limit(1)
    )
    return found is not None


def list_intents(
    session: Session, *, after_id: int | None = None, limit: int | None = None
) -> list[WebSubIntent]:
    query = select(WebSubIntent).order_by(WebSubIntent.id).limit(limit)
    if after_id is not None:
        query = query.where(WebSubIntent.id > after_id)
    return list(session.scalars(query))


def remove_intents(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(delete(WebSubIntent).where(WebSubIntent.id.in_(list(ids))))


def retry_intent(session: Session, intent_id: int, at: datetime, error: str) -> None:
    session.execute(
        update(WebSubIntent)
        .where(WebSubIntent.id == intent_id)
        .values(attempts=WebSubIntent.attempts + 1, next_attempt_at=at, last_error=error)
    )


# --- backlog ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    deliveries: int  # subscriptions owed a body (waiting to retry or not)
    pings: int  # publish pings owed to an external hub
    intents: int  # requests waiting for verification or a denial

    @property
    def total(self) -> int:
        return self.deliveries + self.pings + self.intents


def backlog(session: Session, now: datetime) -> Backlog:
    owed = (
        select(func.count())
        .select_from(WebSubSubscription)
        .join(WebSubTopic, _TOPIC_OF_SUBSCRIPTION)
        .where(*_owed_where(now))
    )
    pings = (
        select(func.count()).select_from(WebSubTopic).where(WebSubTopic.ping_due_at.is_not(None))
    )
    intents = select(func.count()).select_from(WebSubIntent)
    return Backlog(
        session.scalar(owed) or 0, session.scalar(pings) or 0, session.scalar(intents) or 0
    )
