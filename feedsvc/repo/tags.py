"""Tag queries: tags are created on first use and shared by posts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.content import slug_from_title
from feedsvc.models import Tag


def get_or_create_tags(session: Session, names: Sequence[str]) -> list[Tag]:
    wanted = list(dict.fromkeys(name for name in names if name))
    if not wanted:
        return []
    existing = {tag.name: tag for tag in session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    for name in wanted:
        if name not in existing:
            tag = Tag(name=name, slug=_free_slug(session, slug_from_title(name, max_length=100)))
            session.add(tag)
            session.flush()
            existing[name] = tag
    return [existing[name] for name in wanted]


def _free_slug(session: Session, base: str) -> str:
    slug, n = base, 1
    while session.scalar(select(Tag.id).where(Tag.slug == slug)) is not None:
        n += 1
        slug = f"{base}-{n}"
    return slug
