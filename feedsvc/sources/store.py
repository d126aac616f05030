"""Store parsed upstream entries: as posts of the source's category, or as external items.

Entries are sorted by decide.decide_entries (new, changed, unchanged, deleted here, duplicate);
this module only carries the plan out. Posts go through the same service functions as the
API, so they are sanitized, slugged, versioned and logged for the related refresh alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.content import derive_summary, html_to_text
from feedsvc.context import Context
from feedsvc.errors import FeedsvcError
from feedsvc.models import ExternalItem, Source, SourceEntry
from feedsvc.repo import related as related_repo
from feedsvc.repo import sources as source_repo
from feedsvc.schemas import PostCreate, PostUpdate
from feedsvc.services import posts as post_service
from feedsvc.sources.decide import EntryPlan, PlannedEntry, StoredRef, decide_entries
from feedsvc.sources.parse import ParsedEntry

log = logging.getLogger("feedsvc.sources")

UNTITLED = "（无标题）"
# New posts stored per write transaction: few enough that the write lock is never held long
# on a running site, enough that a bulk import is not one commit per post.
CREATE_BATCH = 200


@dataclass
class StoreReport:
    new: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def _title(entry: ParsedEntry) -> str:
    title = entry.title.strip() or html_to_text(entry.summary_html)[:60] or UNTITLED
    return title[:300]


def _tags(entry: ParsedEntry) -> list[str]:
    return list(dict.fromkeys(tag.strip()[:50] for tag in entry.tags if tag.strip()))[:30]


def _when(entry: ParsedEntry, now: datetime) -> datetime | None:
    """The entry's date, never in the future (feeds lie); None when it has none."""
    when = entry.published or entry.updated
    return None if when is None else min(when, now)


def _post_fields(entry: ParsedEntry, source: Source) -> dict[str, object]:
    content = entry.content_html or entry.summary_html or f"<p>{_title(entry)}</p>"
    summary = html_to_text(entry.summary_html) if entry.summary_html != content else ""
    return {
        "title": _title(entry),
        "category": source.category.slug,
        "content": content,
        "format": "html",  # sanitized again by the post service with our allow-list
        "author": (entry.author or source.title or "")[:200],
        "summary": summary[:2000] or None,
        "tags": _tags(entry),
    }


class SourceRemoved(Exception):
    """The source was removed while it was being fetched: nothing more is stored for it."""


def _hold_source(session: Session, source_id: int) -> None:
    # FOR UPDATE on PostgreSQL (SQLite's write transaction is exclusive already): a removal
    # either waits for this store or has happened before it, never in between.
    held = select(Source.id).where(Source.id == source_id).with_for_update()
    if session.scalar(held) is None:
        raise SourceRemoved(source_id)


def store_as_posts(
    ctx: Context,
    source: Source,
    entries: list[ParsedEntry],
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> StoreReport:
    report = StoreReport()
    with ctx.db.read() as session:
        stored = {row.entry_id: row for row in source_repo.entries_of(session, source.id)}
    refs = {key: StoredRef(key, row.link, row.content_hash) for key, row in stored.items()}
    deleted = {key for key, row in stored.items() if row.deleted or row.post_id is None}
    plan = decide_entries(refs, entries, deleted)
    report.skipped = len(plan.deleted) + len(plan.duplicates) + len(plan.unchanged)
    total, done = len(plan.new) + len(plan.changed), 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    try:
        _store_posts(ctx, source, plan, stored, now, report, step)
    except SourceRemoved:
        log.info("source %d was removed while it was fetched: nothing more stored", source.id)
    return report


def _store_posts(
    ctx: Context,
    source: Source,
    plan: EntryPlan,
    stored: dict[str, SourceEntry],
    now: datetime,
    report: StoreReport,
    step: Callable[[], None],
) -> None:
    for start in range(0, len(plan.new), CREATE_BATCH):
        batch = plan.new[start : start + CREATE_BATCH]
        prepared: list[tuple[PlannedEntry, post_service.PreparedPost]] = []
        for planned in batch:  # the CPU work, outside the write transaction
            try:
                prepared.append((planned, _prepare(source, planned, now)))
            except FeedsvcError as exc:
                step()
                report.skipped += 1
                report.errors.append(f"{planned.entry.entry_id}: {exc.message}")
        try:
            _create(ctx, source, prepared, now)
        except FeedsvcError:
            # One entry the database refuses: store this batch one by one, to skip only it.
            for planned, post in prepared:
                try:
                    _create(ctx, source, [(planned, post)], now)
                except FeedsvcError as exc:
                    step()
                    report.skipped += 1
                    report.errors.append(f"{planned.entry.entry_id}: {exc.message}")
                else:
                    step()
                    report.new += 1
        else:
            for _ in prepared:
                step()
                report.new += 1
    for planned in plan.changed:
        step()
        row = stored[planned.stored_id] if planned.stored_id else None
        # Never true: decide_entries plans entries without a post as deleted, not as changed.
        if row is None or row.post_id is None:  # pragma: no cover
            report.skipped += 1
            continue
        try:
            _update(ctx, row, planned, now)
            report.updated += 1
        except FeedsvcError as exc:
            report.skipped += 1
            report.errors.append(f"{planned.entry.entry_id}: {exc.message}")


def _prepare(source: Source, planned: PlannedEntry, now: datetime) -> post_service.PreparedPost:
    entry = planned.entry
    # An entry without a date gets the fetch time, once: later polls keep it.
    fields = {**_post_fields(entry, source), "published_at": _when(entry, now) or now}
    return post_service.prepare_post(PostCreate.model_validate(fields))


def _create(
    ctx: Context,
    source: Source,
    batch: list[tuple[PlannedEntry, post_service.PreparedPost]],
    now: datetime,
) -> None:
    """Store a batch of new entries in one transaction: each post with the record of where it
    came from, so after a crash there is either both or neither (an entry is never imported
    twice), and a bulk import pays one commit per batch, not per post."""
    if not batch:
        return
    with ctx.db.write() as session:
        _hold_source(session, source.id)
        new = [
            post_service.NewPost(prepared, origin_link=planned.entry.link)
            for planned, prepared in batch
        ]
        post_ids = post_service.insert_posts(ctx, session, new)
        source_repo.add_entries(
            session,
            [
                {
                    "source_id": source.id,
                    "entry_id": planned.entry.entry_id[:1000],
                    "link": planned.entry.link,
                    "content_hash": planned.content_hash,
                    "post_id": post_id,
                    "deleted": False,
                    "first_seen_at": now,
                }
                for (planned, _), post_id in zip(batch, post_ids, strict=True)
            ],
        )


def _update(ctx: Context, row: SourceEntry, planned: PlannedEntry, now: datetime) -> None:
    entry = planned.entry
    with ctx.db.read() as session:
        source = source_repo.get_source(session, row.source_id)
    if source is None:
        raise SourceRemoved(row.source_id)
    assert row.post_id is not None  # store_as_posts skips entries without a post
    fields = _post_fields(entry, source)
    fields.pop("category")
    when = _when(entry, now)
    if when is not None:
        fields["published_at"] = when
    if fields["summary"] is None:
        fields["summary"] = ""
    post_service.update_post(
        ctx, row.post_id, PostUpdate.model_validate(fields), origin_link=entry.link
    )
    with ctx.db.write() as session:
        live = session.get(SourceEntry, row.id)
        if live is not None:
            live.content_hash, live.link = planned.content_hash, entry.link


def store_as_items(
    ctx: Context, source: Source, entries: list[ParsedEntry], now: datetime
) -> StoreReport:
    """Related mode: external items, candidates of the related refresh, never feed entries."""
    report = StoreReport()
    try:
        _store_items(ctx, source, entries, now, report)
    except SourceRemoved:
        log.info("source %d was removed while it was fetched: nothing stored", source.id)
        return report
    prune_items(ctx, source, now)
    return report


def _store_items(
    ctx: Context, source: Source, entries: list[ParsedEntry], now: datetime, report: StoreReport
) -> None:
    with ctx.db.write() as session:
        _hold_source(session, source.id)
        stored = {item.entry_id: item for item in source_repo.items_of(session, source.id)}
        refs = {key: StoredRef(key, item.link, item.content_hash) for key, item in stored.items()}
        plan = decide_entries(refs, entries, set())
        report.skipped = len(plan.duplicates) + len(plan.unchanged)
        for planned in (*plan.new, *plan.changed):
            entry = planned.entry
            if not entry.link:
                report.skipped += 1  # nothing to link to from a 相关内容 block
                continue
            item = stored.get(planned.stored_id) if planned.stored_id else None
            if item is None:
                item = ExternalItem(source_id=source.id, entry_id=entry.entry_id[:1000])
                session.add(item)
                report.new += 1
            else:
                report.updated += 1
            text = html_to_text(entry.content_html or entry.summary_html)
            item.link = entry.link[:2000]
            item.title = _title(entry)
            item.excerpt = derive_summary([entry.summary_html or entry.content_html])[:500]
            item.body = text[:20_000]
            item.tags = _tags(entry)
            if item.published_at is None or _when(entry, now) is not None:
                item.published_at = _when(entry, now) or now
            item.fetched_at = now  # the related refresh picks it up from here
            item.content_hash = planned.content_hash


def prune_items(ctx: Context, source: Source, now: datetime) -> int:
    settings = ctx.settings.sources
    with ctx.db.write() as session:
        ids = source_repo.prunable_items(
            session,
            source.id,
            now - timedelta(days=settings.external_max_age_days),
            settings.external_max_per_source,
        )
        if not ids:
            return 0
        related_repo.forget_shown(session, source_repo.items_shown_by(session, ids), now)
        source_repo.delete_items(session, ids)
    log.info("source %d: pruned %d external items", source.id, len(ids))
    return len(ids)
