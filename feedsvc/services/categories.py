"""Category writes: API and CLI edits, and the sync from data/categories.toml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import update

from feedsvc import datafiles
from feedsvc.context import Context
from feedsvc.errors import Conflict, Invalid, NotFound
from feedsvc.models import Category, Post
from feedsvc.repo import categories as category_repo
from feedsvc.repo import feedstate
from feedsvc.repo import related as related_repo
from feedsvc.repo import sources as source_repo
from feedsvc.schemas import CategoryCreate, CategoryUpdate, SourceCreate, parse_input

_FEED_FIELDS = ("name", "description", "language", "feed_length")


def _check_feed_length(ctx: Context, feed_length: int | None) -> None:
    # The schema's bound is static; the site's feeds.max_length is the real ceiling.
    ceiling = ctx.settings.feeds.max_length
    if feed_length is not None and feed_length > ceiling:
        message = f"must be at most feeds.max_length ({ceiling})"
        raise Invalid(f"invalid input: feed_length: {message}", fields={"feed_length": message})


def create_category(ctx: Context, data: CategoryCreate) -> Category:
    _check_feed_length(ctx, data.feed_length)
    now = ctx.clock.now()
    with ctx.db.write() as session:
        if category_repo.get_category(session, data.slug) is not None:
            raise Conflict(f"category {data.slug!r} exists", fields={"slug": "is already taken"})
        category = category_repo.add_category(
            session,
            Category(**data.model_dump(), created_at=now, updated_at=now, feed_changed_at=now),
        )
        return category


def update_category(ctx: Context, slug: str, data: CategoryUpdate) -> Category:
    _check_feed_length(ctx, data.feed_length)
    now = ctx.clock.now()
    with ctx.db.write() as session:
        category = category_repo.get_category(session, slug)
        if category is None:
            raise NotFound(f"no category {slug!r}")
        changes = {
            key: value
            for key, value in data.model_dump(exclude_unset=True).items()
            if getattr(category, key) != value
        }
        if not changes:
            return category
        for key, value in changes.items():
            setattr(category, key, value)
        category.updated_at = now
        session.flush()
        if any(key in _FEED_FIELDS for key in changes):
            # The category's name shows in the site feed too (each item's category).
            feedstate.bump(session, [category.id], now, visible=True)
        session.refresh(category)
        return category


def delete_category(ctx: Context, slug: str, move_to: str | None = None) -> int:
    """Delete a category; its posts must be moved first. Returns how many posts moved."""
    now = ctx.clock.now()
    with ctx.db.write() as session:
        category = category_repo.get_category(session, slug)
        if category is None:
            raise NotFound(f"no category {slug!r}")
        count = category_repo.count_posts(session, category.id)
        moved = 0
        if move_to is not None:
            target = category_repo.get_category(session, move_to)
            if target is None or target.id == category.id:
                reason = "is the category being removed" if target else "is not a category"
                raise Invalid(
                    f"invalid input: move_to: {move_to!r} {reason}", fields={"move_to": reason}
                )
            if count:
                session.execute(
                    update(Post)
                    .where(Post.category_id == category.id)
                    .values(category_id=target.id, updated_at=now)
                )
                moved = count
                feedstate.bump(session, [target.id], now, visible=True)
        elif count:
            raise Conflict(
                f"category {slug!r} still has {count} posts; move them first (move_to)",
                fields={"move_to": "required while the category has posts"},
            )
        # Its sources go with it, and their upstream items with them.
        items = source_repo.items_of_category(session, category.id)
        related_repo.forget_shown(session, source_repo.items_shown_by(session, items), now)
        session.expire_all()
        category_repo.delete_category(
            session, category_repo.get_category(session, slug) or category
        )
        feedstate.bump(session, [], now, visible=True)
        return moved


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    unchanged: int


def _categories_table(path: Path) -> list[Any]:
    # `feedsvc init`, the only reader, reads the file only when it exists; a file removed in
    # between is read_toml's "cannot read: No such file or directory".
    try:
        raw = datafiles.read_toml(path)
    except datafiles.DataFileError as exc:
        raise Invalid(str(exc)) from None
    unknown = sorted(key for key in raw if key != "categories")
    if unknown:
        raise Invalid(f"{path}: {unknown[0]}: unknown key; the file lists [[categories]]")
    entries = raw.get("categories", [])
    if not isinstance(entries, list):
        raise Invalid(f"{path}: 'categories' must be an array of tables ([[categories]])")
    return entries


def read_category_sources(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Upstream sources listed under categories ([[categories.sources]]); a URL listed twice is
    refused (which category would it belong to?)."""
    result = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(_categories_table(path), start=1):
        sources = entry.get("sources", []) if isinstance(entry, dict) else []
        if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
            raise Invalid(f"{path}: category #{index}: 'sources' must be [[categories.sources]]")
        slug = str(entry.get("slug"))
        for number, source in enumerate(sources, start=1):
            try:
                parse_input(SourceCreate, {**source, "category": slug})
            except Invalid as exc:
                raise Invalid(
                    f"{path}: category {slug!r}, source #{number}: {exc.message}",
                    fields=exc.fields,
                ) from None
            url = str(source.get("url"))
            if url in seen:
                raise Invalid(
                    f"{path}: category {slug!r}, source #{number}: {url} is listed already "
                    f"under {seen[url]!r}"
                )
            seen[url] = slug
            result.append((slug, dict(source)))
    return result


def listed_sources(ctx: Context, path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The file's sources, each valid and polled no more often than the settings allow."""
    shortest = ctx.settings.sources.min_interval_minutes
    listed = read_category_sources(path)
    for slug, source in listed:
        minutes = source.get("interval_minutes")
        if isinstance(minutes, int) and minutes < shortest:
            raise Invalid(
                f"{path}: category {slug!r}: source {source.get('url')}: interval_minutes: "
                f"must be at least {shortest} minutes (sources.min_interval_minutes)"
            )
    return listed


def read_categories_file(path: Path) -> list[CategoryCreate]:
    """Every category of the file, validated; a slug listed twice is refused (which would win?)."""
    entries = _categories_table(path)
    result: list[CategoryCreate] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise Invalid(f"{path}: category #{index}: must be a table ([[categories]])")
        entry = {key: value for key, value in entry.items() if key != "sources"}
        try:
            data = parse_input(CategoryCreate, entry)
        except Invalid as exc:
            raise Invalid(f"{path}: category #{index}: {exc.message}") from None
        if data.slug in seen:
            raise Invalid(
                f"{path}: category #{index}: slug {data.slug!r} is already category "
                f"#{seen[data.slug]}"
            )
        seen[data.slug] = index
        result.append(data)
    return result


def sync_categories(ctx: Context, path: Path) -> SyncReport:
    """Add and update categories from the file; never deletes (posts are never lost).

    Every category is validated before any is stored; `feedsvc init` checks the sources too
    (``listed_sources``) before calling this, so a bad file changes nothing.
    """
    added = updated = unchanged = 0
    wanted = read_categories_file(path)
    for data in wanted:
        with ctx.db.read() as session:
            current = category_repo.get_category(session, data.slug)
        if current is None:
            create_category(ctx, data)
            added += 1
            continue
        fields = data.model_dump(exclude={"slug"})
        if all(getattr(current, key) == value for key, value in fields.items()):
            unchanged += 1
        else:
            update_category(ctx, data.slug, CategoryUpdate(**fields))
            updated += 1
    return SyncReport(added, updated, unchanged)
