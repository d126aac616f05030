"""Source configuration: API and CLI edits, and the sync from categories.toml."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from feedsvc.context import Context
from feedsvc.errors import Conflict, Invalid, NotFound
from feedsvc.models import DISABLED_BY_PUBLISHER, Source
from feedsvc.repo import categories as category_repo
from feedsvc.repo import related as related_repo
from feedsvc.repo import sources as source_repo
from feedsvc.schemas import SourceCreate, SourceUpdate, parse_id, parse_input, parse_whole_number


def _interval(ctx: Context, minutes: int | None) -> int:
    settings = ctx.settings.sources
    value = settings.default_interval_minutes if minutes is None else minutes
    if value < settings.min_interval_minutes:
        message = f"must be at least {settings.min_interval_minutes} minutes"
        raise Invalid(
            f"invalid input: interval_minutes: {message}", fields={"interval_minutes": message}
        )
    return value


def _category_id(ctx: Context, session: Any, slug: str) -> int:
    category = category_repo.get_category(session, slug)
    if category is None:
        raise Invalid(
            f"invalid input: category: unknown category {slug!r}",
            fields={"category": f"unknown category {slug!r}"},
        )
    return category.id


def create_source(ctx: Context, data: SourceCreate) -> Source:
    now = ctx.clock.now()
    interval = _interval(ctx, data.interval_minutes)
    with ctx.db.write() as session:
        if source_repo.find_source(session, data.url) is not None:
            raise Conflict(f"source {data.url} exists", fields={"url": "is already a source"})
        source = Source(
            url=data.url,
            category_id=_category_id(ctx, session, data.category),
            mode=data.mode,
            interval_minutes=interval,
            enabled=data.enabled,
            title="",
            consecutive_errors=0,
            next_fetch_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(source)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(
                f"source {data.url} exists", fields={"url": "is already a source"}
            ) from None
        session.refresh(source)
        return source


def update_source(ctx: Context, source_id: int, data: SourceUpdate) -> Source:
    now = ctx.clock.now()
    with ctx.db.write() as session:
        source = source_repo.get_source(session, source_id)
        if source is None:
            raise NotFound(f"no source with id {source_id}")
        if data.category is not None:
            source.category_id = _category_id(ctx, session, data.category)
        if data.mode is not None and data.mode != source.mode:
            source.mode = data.mode
            # What was seen in the other mode was stored elsewhere: fetch and read it again.
            source.etag = source.last_modified = source.content_hash = None
            source.next_fetch_at = now
        if data.interval_minutes is not None and data.interval_minutes != source.interval_minutes:
            source.interval_minutes = _interval(ctx, data.interval_minutes)
            if source.enabled and source.consecutive_errors == 0:
                interval = timedelta(minutes=source.interval_minutes)
                source.next_fetch_at = (source.last_fetched_at or now) + interval
        if data.enabled is not None and data.enabled != source.enabled:
            source.enabled = data.enabled
            if data.enabled:  # re-enabled by hand: poll soon, with a clean slate
                source.disabled_reason, source.consecutive_errors = None, 0
                source.last_error = None
                source.next_fetch_at = now
            else:
                source.disabled_reason = DISABLED_BY_PUBLISHER
        if session.is_modified(source):
            source.updated_at = now
        session.flush()
        session.refresh(source)
        _ = source.category  # loaded for use after the session
        return source


def fetch_now(ctx: Context, source_id: int) -> Source:
    """Make a source due now (the admin's 立即抓取); the next poll run fetches it.

    Only the due time changes: the backoff count stays, so a source that fails again keeps
    backing off from where it was. A disabled source is never polled: enable it first.
    """
    with ctx.db.write() as session:
        source = source_repo.get_source(session, source_id)
        if source is None:
            raise NotFound(f"no source with id {source_id}")
        if not source.enabled:
            raise Conflict(f"source {source_id} is disabled: enable it to fetch it")
        source.next_fetch_at = ctx.clock.now()
        session.flush()
        session.refresh(source)
        _ = source.category  # loaded for use after the session
        return source


def delete_source(ctx: Context, source_id: int) -> None:
    """Remove a source; its external items go, posts it brought in stay."""
    now = ctx.clock.now()
    with ctx.db.write() as session:
        source = source_repo.get_source(session, source_id)
        if source is None:
            raise NotFound(f"no source with id {source_id}")
        items = [item.id for item in source_repo.items_of(session, source_id)]
        related_repo.forget_shown(session, source_repo.items_shown_by(session, items), now)
        session.delete(source)


def find(ctx: Context, ident: str) -> int:
    """A source id from an id or a URL (CLI).

    Only ASCII digits are an id ('٣'.isdigit() is true too), and only one both backends can
    store: a larger number finds nothing rather than overflowing the driver.
    """
    digits = parse_whole_number(ident)
    source_id = parse_id(ident) if digits is not None else None
    with ctx.db.read() as session:
        if digits is None:
            source = source_repo.find_source(session, ident)
        else:
            source = source_repo.get_source(session, source_id) if source_id else None
        if source is None:
            raise NotFound(f"no source with id or URL {ident!r}")
        return source.id


@dataclass(frozen=True)
class SourceSyncReport:
    added: int
    updated: int
    unchanged: int


def sync_sources(ctx: Context, entries: list[tuple[str, dict[str, Any]]]) -> SourceSyncReport:
    """Sources listed under categories in categories.toml: added or updated, never removed.

    Every entry is validated before any is stored, so a bad file changes nothing. The only
    caller, `feedsvc category sync --overwrite`, passes what categories.listed_sources() checked and
    explained per file and entry; these checks are the last line, not the user's message.
    """
    wanted: list[SourceCreate] = []
    for category, raw in entries:
        wanted.append(parse_input(SourceCreate, {**raw, "category": category}))
        _interval(ctx, wanted[-1].interval_minutes)
    added = updated = unchanged = 0
    for data in wanted:
        stored = stored_listed_source(ctx, data)
        if stored is None:
            create_source(ctx, data)
            added += 1
            continue
        source_id, same = stored
        if same:
            unchanged += 1
        else:
            interval = _interval(ctx, data.interval_minutes)
            update = SourceUpdate(category=data.category, mode=data.mode, interval_minutes=interval)
            update_source(ctx, source_id, update)
            updated += 1
    return SourceSyncReport(added, updated, unchanged)


def stored_listed_source(ctx: Context, data: SourceCreate) -> tuple[int, bool] | None:
    """The stored source at ``data.url`` as (its id, whether it already has the category,
    mode and interval the file lists), or None when there is none."""
    interval = _interval(ctx, data.interval_minutes)
    with ctx.db.read() as session:
        current = source_repo.find_source(session, data.url)
        if current is None:
            return None
        stored = (current.category.slug, current.mode, current.interval_minutes)
        return current.id, stored == (data.category, data.mode, interval)
