"""ORM models only: no queries, no rules (those live in repo/ and services/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
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


class Category(FeedVersionMixin, Base):
    __tablename__ = "categories"

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

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_category_feed", "category_id", "status", "published_at"),
        Index("ix_posts_status_published", "status", "published_at"),
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

    category: Mapped[Category] = relationship(back_populates="posts", lazy="joined")
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags, order_by=Tag.name, lazy="selectin")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the token: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
