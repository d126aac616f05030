"""Category writes: API and CLI edits, and the site's categories file (`init`, `category sync`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from feedsvc import datafiles
from feedsvc.context import Context
from feedsvc.errors import Conflict, Invalid, NotFound
from feedsvc.models import Category, Post, RemovedCategory, Source
from feedsvc.repo import categories as category_repo
from feedsvc.repo import feedstate
from feedsvc.repo import sources as source_repo
from feedsvc.schemas import (
    CategoryCreate,
    CategoryUpdate,
    SourceCreate,
    parse_input,
)
from feedsvc.services.sources import create_source

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
        # The site's pages list the categories (the site feed's bytes stay as they are).
        feedstate.bump(session, [], now, visible=False)
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
            # The category's name shows in the site feed too (each item's category), and in
            # the feeds of its posts' tags.
            feedstate.bump(
                session,
                [category.id],
                now,
                visible=True,
                tag_ids=feedstate.tag_ids_in_category(session, category.id),
            )
        else:  # its position: the site's pages list the categories in that order
            feedstate.bump(session, [], now, visible=False)
        session.refresh(category)
        return category


@dataclass(frozen=True)
class Removal:
    posts_moved: int
    sources_moved: int


def delete_category(ctx: Context, slug: str, move_to: str | None = None) -> Removal:
    """Delete a category; its posts and upstream sources move to ``move_to`` first (a category
    with either and no ``move_to`` is refused: nothing is ever deleted along with it). The slug
    is remembered, so the categories file does not bring it back.
    """
    now = ctx.clock.now()
    with ctx.db.write() as session:
        category = category_repo.get_category(session, slug)
        if category is None:
            raise NotFound(f"no category {slug!r}")
        count = category_repo.count_posts(session, category.id)
        sources = (
            session.scalar(
                select(func.count()).select_from(Source).where(Source.category_id == category.id)
            )
            or 0
        )
        moved = 0
        if move_to is not None:
            target = category_repo.get_category(session, move_to)
            if target is None or target.id == category.id:
                reason = "is the category being removed" if target else "is not a category"
                raise Invalid(
                    f"invalid input: move_to: {move_to!r} {reason}", fields={"move_to": reason}
                )
            if count:
                # The moved posts' entries show the new category, in their tags' feeds too.
                moved_tags = feedstate.tag_ids_in_category(session, category.id)
                session.execute(
                    update(Post)
                    .where(Post.category_id == category.id)
                    .values(category_id=target.id, updated_at=now)
                )
                moved = count
                feedstate.bump(session, [target.id], now, visible=True, tag_ids=moved_tags)
            if sources:
                # Upstream items and the related lists showing them stay as they are: they
                # belong to the source, not to its category.
                session.execute(
                    update(Source)
                    .where(Source.category_id == category.id)
                    .values(category_id=target.id, updated_at=now)
                )
        elif count or sources:
            held = " and ".join(
                f"{number} {noun}"
                for number, noun in ((count, "posts"), (sources, "upstream sources"))
                if number
            )
            raise Conflict(
                f"category {slug!r} still has {held}; move them to another category "
                "(move_to) or remove them first",
                fields={"move_to": "required while the category has posts or sources"},
            )
        session.expire_all()
        category_repo.delete_category(
            session, category_repo.get_category(session, slug) or category
        )
        if session.get(RemovedCategory, slug) is None:
            session.add(RemovedCategory(slug=slug, removed_at=now))
        feedstate.bump(session, [], now, visible=True)
        return Removal(moved, sources if move_to is not None else 0)


# -- the categories file ---------------------------------------------------------------------------
# One source of truth: what the API and CLI did wins. `feedsvc init` only adds categories the
# database has never seen (absent, and not removed on purpose), with their sources; `feedsvc
# category sync` applies the file explicitly (--overwrite: its values too) and says what changed.

_TABLE_HEADER = re.compile(r"^\s*\[\[\s*categories\s*\]\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_SLUG_LINE = re.compile(r"^\s*slug\s*=")


@dataclass(frozen=True)
class CategoriesFile:
    """A categories file read and checked whole: nothing is stored unless all of it is valid."""

    path: Path
    categories: list[CategoryCreate]
    sources: list[tuple[str, dict[str, Any]]]  # (category slug, source entry)


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    # Categories whose values differ from the file but were kept (no --overwrite).
    differs: int = 0
    # Removed through the API or CLI, so not brought back by `init`.
    removed: int = 0
    sources_added: int = 0
    sources_updated: int = 0
    # Sources listed in the file that `init` did not add (their category existed already).
    sources_missing: int = 0
    changes: list[str] = field(default_factory=list)


def _categories_table(path: Path) -> tuple[list[Any], str]:
    try:
        text = datafiles.read_text(path)
        raw = datafiles.loads_toml(text, str(path))
    except datafiles.DataFileError as exc:
        raise Invalid(str(exc)) from None
    unknown = sorted(key for key in raw if key != "categories")
    if unknown:
        raise Invalid(f"{path}: {unknown[0]}: unknown key; the file lists [[categories]]")
    entries = raw.get("categories", [])
    if not isinstance(entries, list):
        raise Invalid(f"{path}: 'categories' must be an array of tables ([[categories]])")
    return entries, text


def _entry_lines(text: str, count: int) -> list[int | None]:
    """The line of each [[categories]] entry's `slug =` (else its header), 1-based.

    tomllib gives no positions; the header lines are found in the text. An inline array
    (`categories = [{...}]`) has no headers: then there is no line to name (None).
    """
    lines = text.splitlines()
    headers = [number for number, line in enumerate(lines) if _TABLE_HEADER.match(line)]
    if len(headers) != count:
        return [None] * count
    result: list[int | None] = []
    for index, start in enumerate(headers):
        end = headers[index + 1] if index + 1 < len(headers) else len(lines)
        found = start
        for number in range(start + 1, end):
            if _ANY_HEADER.match(lines[number]):
                break
            if _SLUG_LINE.match(lines[number]):
                found = number
                break
        result.append(found + 1)
    return result


def _at(line: int | None) -> str:
    return f" (line {line})" if line else ""


def read_category_sources(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Upstream sources listed under categories ([[categories.sources]]); a URL listed twice is
    refused (which category would it belong to?)."""
    result = []
    seen: dict[str, str] = {}
    entries, text = _categories_table(path)
    lines = _entry_lines(text, len(entries))
    for index, entry in enumerate(entries, start=1):
        where, at = f"{path}: category #{index}", _at(lines[index - 1])
        sources = entry.get("sources", []) if isinstance(entry, dict) else []
        if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
            raise Invalid(f"{where}: 'sources' must be [[categories.sources]]{at}")
        slug = str(entry.get("slug"))
        for number, source in enumerate(sources, start=1):
            try:
                parse_input(SourceCreate, {**source, "category": slug})
            except Invalid as exc:
                raise Invalid(
                    f"{where}, {slug!r}, source #{number}: {exc.message}{at}", fields=exc.fields
                ) from None
            url = str(source.get("url"))
            if url in seen:
                raise Invalid(
                    f"{where}, {slug!r}, source #{number}: {url} is listed already "
                    f"under {seen[url]!r}{at}"
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
    """Every category of the file, validated; a slug listed twice is refused, naming both lines
    (which one would win?)."""
    entries, text = _categories_table(path)
    lines = _entry_lines(text, len(entries))
    result: list[CategoryCreate] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        where, at = f"{path}: category #{index}", _at(lines[index - 1])
        if not isinstance(entry, dict):
            raise Invalid(f"{where}: must be a table ([[categories]]){at}")
        entry = {key: value for key, value in entry.items() if key != "sources"}
        try:
            data = parse_input(CategoryCreate, entry)
        except Invalid as exc:
            raise Invalid(f"{where}: {exc.message}{at}") from None
        if data.slug in seen:
            first = seen[data.slug]
            raise Invalid(
                f"{path}: line {lines[index - 1]}: category #{index}: slug {data.slug!r} is "
                f"already category #{first} (line {lines[first - 1]})"
                if lines[index - 1]
                else f"{where}: slug {data.slug!r} is already category #{first}"
            )
        seen[data.slug] = index
        result.append(data)
    return result


def read_file(ctx: Context, path: Path) -> CategoriesFile:
    """Categories and sources of the file, all checked before anything is stored."""
    categories = read_categories_file(path)
    sources = listed_sources(ctx, path)
    for category in categories:
        _check_feed_length(ctx, category.feed_length)
    return CategoriesFile(path, categories, sources)


def _differences(current: Category, data: CategoryCreate) -> list[str]:
    fields = data.model_dump(exclude={"slug"})
    return [key for key, value in fields.items() if getattr(current, key) != value]


def add_new_categories(ctx: Context, listed: CategoriesFile) -> SyncReport:
    """`feedsvc init`: add the file's categories the database has never had, with their
    sources. Never changes or re-creates anything an edit through the API or CLI touched."""
    report = SyncReport()
    with ctx.db.read() as session:
        removed = set(session.scalars(select(RemovedCategory.slug)))
    new: set[str] = set()
    for data in listed.categories:
        with ctx.db.read() as session:
            current = category_repo.get_category(session, data.slug)
            differs = bool(current is not None and _differences(current, data))
        if current is not None:
            report.unchanged += 1
            report.differs += differs
        elif data.slug in removed:
            report.removed += 1
            report.changes.append(f"not re-added (removed through the API or CLI): {data.slug}")
        else:
            create_category(ctx, data)
            new.add(data.slug)
            report.added += 1
            report.changes.append(f"added category {data.slug}")
    for slug, entry in listed.sources:
        with ctx.db.read() as session:
            exists = source_repo.find_source(session, str(entry["url"])) is not None
        if exists:
            continue
        if slug in new:
            create_source(ctx, parse_input(SourceCreate, {**entry, "category": slug}))
            report.sources_added += 1
        else:
            report.sources_missing += 1
    return report


def sync_categories(ctx: Context, path: Path, *, overwrite: bool = False) -> SyncReport:
    """Add the file's categories that are missing (removed ones included: asked for
    explicitly); with ``overwrite``, give existing ones the file's values. Never deletes.
    Every category is checked before any is stored."""
    report = SyncReport()
    _sync_categories(ctx, read_categories_file(path), overwrite, report)
    return report


def apply_file(ctx: Context, path: Path, *, overwrite: bool = False) -> SyncReport:
    """`feedsvc category sync`: ``sync_categories``, then the sources listed under them the
    same way (missing ones added; with ``overwrite`` existing ones take the file's category,
    mode and interval). The whole file is checked before anything is stored."""
    from feedsvc.services.sources import stored_listed_source, sync_sources

    listed = read_file(ctx, path)
    report = SyncReport()
    _sync_categories(ctx, listed.categories, overwrite, report)
    if overwrite:
        synced = sync_sources(ctx, listed.sources)
        report.sources_added, report.sources_updated = synced.added, synced.updated
        return report
    for slug, entry in listed.sources:
        data = parse_input(SourceCreate, {**entry, "category": slug})
        stored = stored_listed_source(ctx, data)
        if stored is None:
            create_source(ctx, data)
            report.sources_added += 1
            report.changes.append(f"added source {data.url} ({slug})")
        elif not stored[1]:
            report.changes.append(
                f"differs from the file (kept; --overwrite applies it): source {data.url}"
            )
    return report


def _sync_categories(
    ctx: Context, categories: list[CategoryCreate], overwrite: bool, report: SyncReport
) -> None:
    for data in categories:
        with ctx.db.read() as session:
            current = category_repo.get_category(session, data.slug)
            differences = [] if current is None else _differences(current, data)
        if current is None:
            create_category(ctx, data)
            report.added += 1
            report.changes.append(f"added category {data.slug}")
        elif not differences:
            report.unchanged += 1
        elif overwrite:
            update_category(ctx, data.slug, CategoryUpdate(**data.model_dump(exclude={"slug"})))
            report.updated += 1
            report.changes.append(f"updated category {data.slug}: {', '.join(differences)}")
        else:
            report.differs += 1
            report.changes.append(
                f"differs from the file (kept; --overwrite applies it): {data.slug}: "
                f"{', '.join(differences)}"
            )
