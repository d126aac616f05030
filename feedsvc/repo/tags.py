"""Tag queries: tags are created on first use and shared by posts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedsvc.content import slug_from_title
from feedsvc.errors import Conflict
from feedsvc.models import Tag
from feedsvc.repo import as_loaded


def get_or_create_tags(session: Session, names: Sequence[str]) -> list[Tag]:
    """The tags of these names, creating the missing ones.

    Two writers may create the same tag at once (PostgreSQL runs them concurrently): the
    insert does nothing on a conflict and the row is read back, whoever wrote it.
    """
    wanted = list(dict.fromkeys(name for name in names if name))
    if not wanted:
        return []
    # One query when every tag exists already (the common case: a site's tags repeat).
    by_name = {tag.name: tag for tag in session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    missing = [name for name in wanted if name not in by_name]
    if missing:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        # One statement for the usual case (a new name's readable slug is free), whatever
        # the number of new names (a bulk import brings many); the rest one by one below.
        first = [{"name": name, "slug": next(_slug_candidates(name))} for name in missing]
        session.execute(insert(Tag).values(first).on_conflict_do_nothing())
        created = select(Tag).where(Tag.name.in_(missing))
        by_name.update({tag.name: tag for tag in session.scalars(created)})
        missing = [name for name in wanted if name not in by_name]
        for name in missing:
            for slug in _slug_candidates(name):
                statement = insert(Tag).values(name=name, slug=slug).on_conflict_do_nothing()
                session.execute(statement)
                if session.scalar(select(Tag.id).where(Tag.name == name)) is not None:
                    break  # ours or a concurrent writer's; another name's slug: try the next
        if missing:
            created = select(Tag).where(Tag.name.in_(missing))
            by_name.update({tag.name: tag for tag in session.scalars(created)})
            missing = [name for name in wanted if name not in by_name]
    if missing:  # every candidate taken: only a hash collision on top of 10 namesakes
        raise Conflict(f"no free slug for tag {missing[0]!r}", fields={"tags": "no free slug"})
    return [by_name[name] for name in wanted]


_TAGS = cast(Table, Tag.__table__)
_BY_NAMES = select(_TAGS.c.id, _TAGS.c.name, _TAGS.c.slug).where(
    _TAGS.c.name.in_(bindparam("names", expanding=True))
)


def tags_for_write(session: Session, names: Sequence[str]) -> list[Tag]:
    """get_or_create_tags for a post written with Core statements (services/posts.py), whose
    tags are only stored and shown: when every tag
    exists (the common case: a site's tags repeat), one Core query, built once, and the tags
    as detached objects, as if loaded and the session closed (the ORM's load cost several
    times the query). Otherwise get_or_create_tags, which creates the missing ones."""
    wanted = list(dict.fromkeys(name for name in names if name))
    if not wanted:
        return []
    rows = session.execute(_BY_NAMES, {"names": wanted}).all()
    if len(rows) < len(wanted):
        return get_or_create_tags(session, wanted)
    by_name: dict[str, Tag] = {}
    for tag_id, name, slug in rows:
        by_name[name] = as_loaded(Tag, {"id": tag_id, "name": name, "slug": slug})
    return [by_name[name] for name in wanted]


def _slug_candidates(name: str) -> Iterator[str]:
    """Readable first (li-cai, li-cai-2 ... li-cai-10), then a suffix from the name itself.

    Names that slug alike are common (emoji and punctuation all slug to "post"); past ten of
    them a counter would cost one query per namesake, while the name's own hash is free and,
    being the name's, distinct for every other name.
    """
    base = slug_from_title(name, max_length=100)
    yield base
    yield from (f"{base}-{n}" for n in range(2, 11))
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    yield from (f"{base}-{digest[:length]}" for length in (8, 16))
