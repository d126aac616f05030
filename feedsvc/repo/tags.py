"""Tag queries: tags are created on first use and shared by posts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedsvc.content import slug_from_title
from feedsvc.models import Tag


def get_or_create_tags(session: Session, names: Sequence[str]) -> list[Tag]:
    """The tags of these names, creating the missing ones.

    Two writers may create the same tag at once (PostgreSQL runs them concurrently): the
    insert does nothing on a conflict and the row is read back, whoever wrote it.
    """
    wanted = list(dict.fromkeys(name for name in names if name))
    if not wanted:
        return []
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for name in wanted:
        if session.scalar(select(Tag.id).where(Tag.name == name)) is not None:
            continue
        base = slug_from_title(name, max_length=100)
        for n in range(1, 100):
            slug = base if n == 1 else f"{base}-{n}"
            session.execute(insert(Tag).values(name=name, slug=slug).on_conflict_do_nothing())
            if session.scalar(select(Tag.id).where(Tag.name == name)) is not None:
                break  # ours or a concurrent writer's; another name's slug: try the next
    by_name = {tag.name: tag for tag in session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    return [by_name[name] for name in wanted]
