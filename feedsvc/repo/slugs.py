"""Generated post slugs: the per-base counter (models.SlugCounter) and its catch-up."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Insert, Table, bindparam, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedsvc.models import Post, SlugCounter

_COUNTERS = cast(Table, SlugCounter.__table__)
_UPSERTS: dict[str, Insert] = {}


def next_number(session: Session, base: str) -> int:
    """The next number for ``base``: 1 the first time (the slug is the base itself).

    One upsert, whatever the number of namesakes. On PostgreSQL the counter row stays locked
    until the transaction ends, so concurrent namesakes get distinct numbers; SQLite's write
    transactions are serial anyway.
    """
    dialect = session.get_bind().dialect.name
    statement = _UPSERTS.get(dialect)
    if statement is None:  # built once per dialect: the statement's own cost is not small
        # On the table, not the ORM entity: an ORM-enabled insert takes the ORM's bulk path.
        insert, counters = pg_insert if dialect == "postgresql" else sqlite_insert, _COUNTERS
        statement = _UPSERTS[dialect] = (
            insert(counters)
            .values(base=bindparam("base"), last=1)
            .on_conflict_do_update(
                index_elements=[counters.c.base], set_={"last": counters.c.last + 1}
            )
            .returning(counters.c.last)
        )
    return int(session.execute(statement, {"base": base}).scalar_one())


def take_numbers(session: Session, bases: Sequence[str]) -> dict[str, list[int]]:
    """The numbers next_number would give, once per item of ``bases`` in that order: for
    each distinct base, as many consecutive numbers as it appears. One upsert in all (the
    counters move by their counts; sorted, so concurrent batches lock them in one order)."""
    counts = Counter(bases)
    if not counts:
        return {}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    rows = [{"base": base, "last": counts[base]} for base in sorted(counts)]
    values = insert(SlugCounter).values(rows)
    statement = values.on_conflict_do_update(
        index_elements=[SlugCounter.base],
        set_={"last": SlugCounter.last + values.excluded.last},
    ).returning(SlugCounter.base, SlugCounter.last)
    numbers: dict[str, list[int]] = {}
    for base, last in session.execute(statement):
        count = counts[base]
        numbers[base] = list(range(int(last) - count + 1, int(last) + 1))
    return numbers


def catch_up(session: Session, base: str) -> None:
    """Move the counter past every stored slug of the form ``base`` or ``base-N``.

    Called only when a generated slug was found taken (posts stored around the counter):
    one read of the namesakes, once, after which the counter is current again.
    """
    pattern = re.compile(re.escape(base) + r"(?:-([0-9]{1,9}))?")
    highest = 0
    namesakes = select(Post.slug).where(or_(Post.slug == base, Post.slug.like(f"{base}-%")))
    for slug in session.scalars(namesakes):
        match = pattern.fullmatch(slug)
        if match is not None:
            highest = max(highest, int(match[1] or 1))
    session.execute(
        update(SlugCounter)
        .where(SlugCounter.base == base)
        .values(last=case((SlugCounter.last < highest, highest), else_=SlugCounter.last))
    )
