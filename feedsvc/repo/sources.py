"""Source queries: configured upstream feeds, their imported entries and external items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from feedsvc.models import (
    DISABLED_BY_PUBLISHER,
    IMPORT_ONLY,
    ExternalItem,
    RelatedItem,
    Source,
    SourceEntry,
)
from feedsvc.repo import chunked


def get_source(session: Session, source_id: int) -> Source | None:
    return session.get(Source, source_id)


def find_source(session: Session, url: str) -> Source | None:
    return session.scalar(select(Source).where(Source.url == url))


def list_sources(
    session: Session, *, after_id: int | None = None, limit: int | None = None
) -> list[Source]:
    query = select(Source).order_by(Source.id).limit(limit)
    if after_id is not None:
        query = query.where(Source.id > after_id)
    return list(session.scalars(query))


def due_sources(session: Session, now: datetime, limit: int) -> list[Source]:
    return list(
        session.scalars(
            select(Source)
            .where(
                Source.enabled.is_(True),
                or_(Source.next_fetch_at.is_(None), Source.next_fetch_at <= now),
            )
            .order_by(Source.next_fetch_at.is_not(None), Source.next_fetch_at, Source.id)
            .limit(limit)
        )
    )


def entries_of(session: Session, source_id: int) -> list[SourceEntry]:
    return list(session.scalars(select(SourceEntry).where(SourceEntry.source_id == source_id)))


def items_of(session: Session, source_id: int) -> list[ExternalItem]:
    return list(session.scalars(select(ExternalItem).where(ExternalItem.source_id == source_id)))


def item_counts(session: Session, source_id: int | None = None) -> dict[int, tuple[int, int]]:
    """What each source (or the one given) has brought in, by source id: (its external items,
    kept for related lists; the upstream entries it imported as posts). Sources with neither
    are absent."""
    items = select(ExternalItem.source_id, func.count()).group_by(ExternalItem.source_id)
    entries = select(SourceEntry.source_id, func.count()).group_by(SourceEntry.source_id)
    if source_id is not None:
        items = items.where(ExternalItem.source_id == source_id)
        entries = entries.where(SourceEntry.source_id == source_id)
    kept = {key: count for key, count in session.execute(items)}
    imported = {key: count for key, count in session.execute(entries)}
    return {key: (kept.get(key, 0), imported.get(key, 0)) for key in kept.keys() | imported}


def mark_deleted(session: Session, post_id: int) -> None:
    """The publisher deleted an aggregated post: never import its entry again."""
    session.execute(update(SourceEntry).where(SourceEntry.post_id == post_id).values(deleted=True))


def external_changed(session: Session, after: datetime, upto: datetime) -> set[int]:
    return set(
        session.scalars(
            select(ExternalItem.id).where(
                ExternalItem.fetched_at > after, ExternalItem.fetched_at <= upto
            )
        )
    )


def external_ids(session: Session) -> set[int]:
    return set(session.scalars(select(ExternalItem.id)))


def all_external(session: Session, ids: set[int] | None = None) -> list[ExternalItem]:
    query = select(ExternalItem).order_by(ExternalItem.id)
    if ids is None:
        return list(session.scalars(query))
    return [
        item
        for part in chunked(ids)
        for item in session.scalars(query.where(ExternalItem.id.in_(part)))
    ]


def prunable_items(session: Session, source_id: int, older_than: datetime, keep: int) -> list[int]:
    """Items past the age limit, and beyond the newest ``keep`` of the source."""
    ids = list(
        session.scalars(
            select(ExternalItem.id)
            .where(ExternalItem.source_id == source_id)
            .order_by(ExternalItem.published_at.desc(), ExternalItem.id.desc())
        )
    )
    old = set(
        session.scalars(
            select(ExternalItem.id).where(
                ExternalItem.source_id == source_id, ExternalItem.published_at < older_than
            )
        )
    )
    return sorted(set(ids[keep:]) | old)


def delete_items(session: Session, ids: list[int]) -> None:
    for part in chunked(ids):
        session.execute(delete(ExternalItem).where(ExternalItem.id.in_(part)))


def items_shown_by(session: Session, item_ids: list[int]) -> set[int]:
    """Posts whose stored related lists show any of these external items."""
    query = select(RelatedItem.post_id)
    return {
        owner
        for part in chunked(item_ids)
        for owner in session.scalars(query.where(RelatedItem.external_item_id.in_(part)))
    }


def add_entries(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Record upstream entries (SourceEntry rows) in one statement."""
    if rows:
        session.execute(insert(SourceEntry), list(rows))


def failing_sources(session: Session, limit: int) -> list[Source]:
    """Sources whose last fetches failed, or that were disabled for it (not those the
    publisher disabled, nor import-only ones); the worst first."""
    failed = Source.disabled_reason.not_in([DISABLED_BY_PUBLISHER, IMPORT_ONLY])
    return list(
        session.scalars(
            select(Source)
            .where(or_(Source.consecutive_errors > 0, failed))
            .order_by(Source.consecutive_errors.desc(), Source.id)
            .limit(limit)
        )
    )
