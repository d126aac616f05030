"""Category queries."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedsvc.models import Category, Post


def get_category(session: Session, slug: str) -> Category | None:
    return session.scalar(select(Category).where(Category.slug == slug))


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
