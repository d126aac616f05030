"""ORM models only: no queries, no rules (those live in repo/ and services/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from feedsvc.db import UTCDateTime

# Stable constraint names, so Alembic migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Ids are never reused (a client holding a deleted id must get 404, not another row): SQLite
# needs AUTOINCREMENT for that (https://www.sqlite.org/autoinc.html; migration 0004);
# PostgreSQL's sequences never hand out a value twice and ignore this option.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

POST_STATUSES = ("draft", "published")
POST_FORMATS = ("html", "markdown")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_post_tags_tag_id", "tag_id"),
)


class FeedVersionMixin:
    """What the feed cache needs to stay correct across processes.

    ``content_version`` is bumped by every write that can change the feed's bytes (in the
    write's own transaction); ``feed_changed_at`` is when what the feed shows last changed
    (used for Last-Modified, together with posts that became due since).
    """

    content_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    feed_changed_at: Mapped[datetime]


class SiteState(FeedVersionMixin, Base):
    """One row (id 1): validators of the whole-site feed /feeds/all.*"""

    __tablename__ = "site_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Set by a trigger when the first post is stored, never cleared (migration 0005).
    had_posts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class RemovedCategory(Base):
    """A slug removed through the API or CLI: the categories file no longer brings it back."""

    __tablename__ = "removed_categories"

    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    removed_at: Mapped[datetime]


class Category(FeedVersionMixin, Base):
    __tablename__ = "categories"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(35), default="zh-CN")
    position: Mapped[int] = mapped_column(Integer, default=0)
    feed_length: Mapped[int] = mapped_column(Integer, default=20)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    posts: Mapped[list[Post]] = relationship(back_populates="category")


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    # The validators of /feeds/tags/{slug}.* (see FeedVersionMixin; migration 0009).
    # feed_changed_at is None until a published post's write first touches the tag.
    # Deferred: only the feeds' version lookup reads them (repo/feedstate.py, Core), not the
    # tags loaded with every post.
    content_version: Mapped[int] = mapped_column(
        Integer, default=1, server_default="1", deferred=True
    )
    feed_changed_at: Mapped[datetime | None] = mapped_column(deferred=True)


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        # Every list of posts is ordered by (published_at, id) descending, and every filter has
        # an index ending in those two columns: a page reads one page of index entries from the
        # cursor on (repo/posts.py), at any corpus size. Migration 0006.
        Index("ix_posts_category_feed", "category_id", "status", "published_at", "id"),
        Index("ix_posts_status_published", "status", "published_at", "id"),
        Index("ix_posts_category_published", "category_id", "published_at", "id"),
        Index("ix_posts_published", "published_at", "id"),
        # The admin's dashboard: the posts written last (migration 0012).
        Index("ix_posts_updated", "updated_at", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    # RFC 4151 tag URI fixed at creation: atom:id / RSS guid never change afterwards.
    guid: Mapped[str] = mapped_column(String(300), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(300))
    author: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    # True when the summary was given; otherwise it is derived from the content on every edit.
    summary_given: Mapped[bool] = mapped_column(Boolean, default=False)
    format: Mapped[str] = mapped_column(String(20), default="markdown")
    body: Mapped[str] = mapped_column(Text)  # the source as given
    pages: Mapped[list[str]] = mapped_column(JSON)  # sanitized HTML, one item per page
    status: Mapped[str] = mapped_column(String(20), default="draft")
    published_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Posts aggregated from an upstream feed link to the original article.
    origin_link: Mapped[str | None] = mapped_column(String(2000))

    category: Mapped[Category] = relationship(back_populates="posts", lazy="joined")
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags, order_by=Tag.name, lazy="selectin")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the token: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PostChange(Base):
    """Append-only log of post writes (in the write's transaction): what the incremental
    related refresh must look at. ``seq`` orders changes across processes."""

    __tablename__ = "post_changes"
    __table_args__ = NEVER_REUSE_IDS

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(Integer, index=True)  # no FK: deleted posts stay here
    changed_at: Mapped[datetime]


class RelatedItem(Base):
    """A post's stored related list: computed by the scheduler, only read by requests."""

    __tablename__ = "related_items"

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Exactly one of these: a post of ours, or an item from an upstream source.
    related_post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    external_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("external_items.id", ondelete="CASCADE"), index=True
    )
    score: Mapped[float]
    computed_at: Mapped[datetime]


class RelatedIndexState(Base):
    """The persisted related index: which generation is current and what it has applied.

    One row (id 1). A rebuild writes a new generation's terms and documents, then switches
    ``generation`` here in the same transaction as the job markers; an incremental refresh
    rewrites only the documents it changed and bumps ``revision`` (feedsvc/repo/related_index.py).
    """

    __tablename__ = "related_index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(300))  # the engine settings it was built with
    doc_count: Mapped[int] = mapped_column(Integer)  # of the rebuild (IDF)
    snapshot: Mapped[str] = mapped_column(Text)  # JSON: blocked terms, posting cutoffs
    applied_seq: Mapped[int] = mapped_column(Integer)
    checked_until: Mapped[datetime]
    term_count: Mapped[int] = mapped_column(Integer)
    written_at: Mapped[datetime]


class RelatedIndexTerm(Base):
    """The vocabulary of one generation: term ids, and the IDF of terms the rebuild saw."""

    __tablename__ = "related_index_terms"

    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    term: Mapped[str] = mapped_column(Text)
    idf: Mapped[float | None] = mapped_column(Float(precision=53))


class RelatedIndexDoc(Base):
    """One indexed document: its quantised vector (int32 arrays) and its related list."""

    __tablename__ = "related_index_docs"

    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    stamp: Mapped[float] = mapped_column(Float(precision=53))  # published_at, POSIX seconds
    term_ids: Mapped[bytes] = mapped_column(LargeBinary)
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    related: Mapped[str | None] = mapped_column(Text)  # JSON [[key, score], ...]; None: no list


class Job(Base):
    """One row per background job: when it is next due, and what it has seen so far."""

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    next_due_at: Mapped[datetime | None]
    # Progress markers of incremental work: the last post change applied, and up to when
    # scheduled posts that became due have been taken into account.
    last_change_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    checked_until: Mapped[datetime | None]


class JobLease(Base):
    """Who may run a job (or a group of jobs sharing one lease) now, and until when."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(50))
    trigger: Mapped[str] = mapped_column(String(20))  # schedule | manual | cli
    owner: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20))  # running | succeeded | failed
    items: Mapped[int] = mapped_column(Integer, default=0)  # posts recomputed, sources polled
    error: Mapped[str | None] = mapped_column(Text)


SOURCE_MODES = ("related", "posts")
# sources.disabled_reason of a source the publisher disabled, and of one made by
# `feedsvc import` (read once, never polled); a failing source's reason says what failed.
DISABLED_BY_PUBLISHER = "disabled by the publisher"
IMPORT_ONLY = "import only (not polled)"


class Source(Base):
    """An upstream feed polled like a well-behaved feed reader, and its fetch state."""

    __tablename__ = "sources"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(20), default="related")
    interval_minutes: Mapped[int] = mapped_column(Integer, default=30)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_status: Mapped[int | None]
    last_fetched_at: Mapped[datetime | None]
    next_fetch_at: Mapped[datetime | None]
    consecutive_errors: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    content_hash: Mapped[str | None] = mapped_column(String(64))  # skip parsing same bytes
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    category: Mapped[Category] = relationship(lazy="joined")


class SourceEntry(Base):
    """An upstream entry imported as a post (posts mode). A post the publisher deleted
    leaves its row with ``deleted`` set, so the entry is never imported again."""

    __tablename__ = "source_entries"
    __table_args__ = (UniqueConstraint("source_id", "entry_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(String(1000))
    link: Mapped[str | None] = mapped_column(String(2000))
    content_hash: Mapped[str] = mapped_column(String(64))
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL"), index=True
    )
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime]


class ExternalItem(Base):
    """An upstream entry kept only as a related-items candidate (related mode)."""

    __tablename__ = "external_items"
    __table_args__ = (
        UniqueConstraint("source_id", "entry_id"),
        Index("ix_external_items_source_published", "source_id", "published_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(String(1000))
    link: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(String(300))
    excerpt: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")  # plain text, for relatedness
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime]
    fetched_at: Mapped[datetime]
    content_hash: Mapped[str] = mapped_column(String(64))

    source: Mapped[Source] = relationship(lazy="joined")


class SlugCounter(Base):
    """The last number given to a generated slug's base (li-cai, li-cai-2 … li-cai-N).

    A namesake's slug then costs one statement, whatever the number of namesakes. It is a
    hint, not the truth: rows stored around it (a restore, a given slug, an older database)
    are caught by the unique slug index, and the counter catches up once (services/posts.py).
    """

    __tablename__ = "slug_counters"

    base: Mapped[str] = mapped_column(String(200), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


WEBSUB_INTENTS = ("subscribe", "unsubscribe", "denied")


class WebSubTopic(Base):
    """A feed (in one format) the WebSub side watches, and what it held when last looked at.

    ``etag`` is the feed's ETag then: a subscription whose ``delivered_etag`` differs is owed
    the new body; with an external hub, ``ping_due_at`` set means a publish ping is owed
    (feedsvc/websub/). Key: the feed's name (feeds/versions.py) and format, not its URL, so
    a new ``site.base_url`` keeps what was seen.
    """

    __tablename__ = "websub_topics"

    feed: Mapped[str] = mapped_column(String(130), primary_key=True)
    fmt: Mapped[str] = mapped_column(String(10), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)  # the feed's content version then
    etag: Mapped[str] = mapped_column(String(80))
    checked_at: Mapped[datetime]
    # When a scheduled post of this feed becomes due: its bytes change with no write.
    recheck_at: Mapped[datetime | None] = mapped_column(index=True)
    ping_due_at: Mapped[datetime | None] = mapped_column(index=True)
    ping_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ping_failing_since: Mapped[datetime | None]
    ping_error: Mapped[str | None] = mapped_column(Text)


class WebSubSubscription(Base):
    """A verified subscription of the built-in hub (W3C WebSub §5): a callback for a topic."""

    __tablename__ = "websub_subscriptions"
    __table_args__ = (
        # §5.1: a subscription is the pair (topic, callback); the topic is known by its feed.
        UniqueConstraint("feed", "fmt", "callback", name="uq_websub_subscriptions_topic"),
        Index("ix_websub_subscriptions_expires_at", "expires_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    feed: Mapped[str] = mapped_column(String(130))
    fmt: Mapped[str] = mapped_column(String(10))
    topic: Mapped[str] = mapped_column(String(2048))  # the URL subscribed to
    callback: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str | None] = mapped_column(String(200))
    lease_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    verified_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    delivered_etag: Mapped[str | None] = mapped_column(String(80))
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failing_since: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


class WebSubIntent(Base):
    """A subscriber's request the hub has answered 202 and still has to act on (W3C WebSub
    §5.2, §5.3): verify a (un)subscription with the callback, or tell it of a denial."""

    __tablename__ = "websub_intents"
    __table_args__ = (
        Index("ix_websub_intents_next_attempt_at", "next_attempt_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str] = mapped_column(String(20))  # WEBSUB_INTENTS
    topic: Mapped[str] = mapped_column(String(2048))
    callback: Mapped[str] = mapped_column(String(2000))
    feed: Mapped[str | None] = mapped_column(String(130))  # None: denied, not a feed here
    fmt: Mapped[str | None] = mapped_column(String(10))
    secret: Mapped[str | None] = mapped_column(String(200))
    lease_seconds: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)  # why it is denied
    requested_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)


class AdminUser(Base):
    """Who may sign in to the admin at /admin (feedsvc/web/admin/); `feedsvc user` manages."""

    __tablename__ = "admin_users"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    # Argon2id in PHC string form ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class LoginFailure(Base):
    """One failed sign-in, kept in the database so that every worker sees every failure
    (services/users.py counts them for the lockout and prunes the old ones)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_pair", "name", "address", "failed_at"),
        Index("ix_login_failures_address", "address", "failed_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))  # the name tried (it may be no user's)
    address: Mapped[str] = mapped_column(String(64))  # the client's IP address
    failed_at: Mapped[datetime]
