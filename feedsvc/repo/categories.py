"""Category queries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.orm import Session

from feedsvc.models import Category, Post, RemovedCategory
from feedsvc.repo import as_loaded


def get_category(session: Session, slug: str) -> Category | None:
    return session.scalar(select(Category).where(Category.slug == slug))


_CATEGORIES = cast(Table, Category.__table__)
_BY_SLUG = select(_CATEGORIES).where(_CATEGORIES.c.slug == bindparam("slug"))


def find_category(session: Session, slug: str) -> Category | None:
    """get_category for a write that only reads the row (a create names its category): one
    Core query, built once, and the row as a detached Category, as if loaded and the session
    closed. The ORM's load cost three times the query. Unflushed changes are not seen: flush
    first when the session may hold some."""
    row = session.execute(_BY_SLUG, {"slug": slug}).mappings().first()
    if row is None:
        return None
    return as_loaded(Category, dict(row))


def list_categories(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.position, Category.slug)))


def count_posts(session: Session, category_id: int) -> int:
    return session.scalar(select(func.count()).where(Post.category_id == category_id)) or 0


def add_category(session: Session, category: Category) -> Category:
    session.add(category)
    session.flush()
    return category


def delete_category(session: Session, category: Category) -> None:
    session.delete(category)
    session.flush()


def ids_by_slug(session: Session, slugs: Iterable[str]) -> dict[str, int]:
    """The ids of these categories (one query; an unknown slug is left out)."""
    wanted = sorted(set(slugs))
    rows = session.execute(select(Category.slug, Category.id).where(Category.slug.in_(wanted)))
    return {slug: category_id for slug, category_id in rows}


def last_removal(session: Session) -> datetime | None:
    """When a category was last removed (the list of categories last shrank)."""
    return session.scalar(select(func.max(RemovedCategory.removed_at)))
