"""`feedsvc restore FILE`: the archive's site into this database, all or nothing.

Two passes over the file: the first checks every line (archive.py) and changes nothing; the
second writes every row in one transaction, so a file that fails either pass, or a row the
database refuses (a duplicate guid, a dangling reference), leaves the database as it was.

After the rows: sequences continue past the archive's ids and past what the source had given
out (sequences.py); each feed's content version goes past any version a running process may
have cached under the same name, so no process serves the replaced site's bytes; the related
refresh's markers are cleared, so the scheduler's next run is a full rebuild.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Table, UniqueConstraint, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from feedsvc.context import Context
from feedsvc.errors import Conflict, Invalid
from feedsvc.models import Category, Job, PostChange, SiteState, SlugCounter, Tag
from feedsvc.transfer import archive, sequences

log = logging.getLogger("feedsvc.restore")

Progress = Callable[[int], None]
BATCH = 500

# Rows that make a site: any of them and the database is not empty.
CONTENT_TABLES = ("categories", "posts", "tags", "sources", "external_items", "api_tokens")


@dataclass(frozen=True)
class RestoreReport:
    rows: dict[str, int]
    created_at: str
    database: str


def check(path: Path) -> tuple[archive.Header, dict[str, int]]:
    """The first pass: every line checked, nothing written. Keys are checked here too (the
    target is emptied first, so every reference must resolve inside the archive): the
    database would refuse the same rows, but only after the work, and in its own words."""
    head, rows = archive.read(path)
    counts = dict.fromkeys(archive.TABLES, 0)
    keys = _Keys()
    for row in rows:
        problem = keys.add(row)
        if problem:
            raise archive.ArchiveError(f"{path}: line {row.line}: {row.table}: {problem}")
        counts[row.table] += 1
    if counts["site_state"] != 1:
        raise archive.ArchiveError(f"{path}: site_state must have exactly one row")
    return head, counts


class _Keys:
    """Primary keys and unique columns seen so far, and the references they must satisfy."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, tuple[str, ...]], set[tuple[object, ...]]] = {}

    def add(self, row: archive.Row) -> str | None:
        source = archive.table(row.table)
        for fk_column in source.columns:
            value = row.values[fk_column.name]
            for fk in fk_column.foreign_keys:
                target = (fk.column.table.name, (fk.column.name,))
                if value is not None and (value,) not in self.seen.get(target, set()):
                    return f"{fk_column.name} {value!r}: no such {fk.column.table.name} row"
        for columns in _unique_keys(source):
            value = tuple(row.values[name] for name in columns)
            if None in value:  # pragma: no cover - no nullable unique column in the schema today
                continue  # SQL: NULLs never collide
            found = self.seen.setdefault((row.table, columns), set())
            if value in found:
                shown = value[0] if len(value) == 1 else value
                return f"{', '.join(columns)} {shown!r} appears twice"
            found.add(value)
        return None


def _unique_keys(source: Table) -> list[tuple[str, ...]]:
    keys = [tuple(column.name for column in source.primary_key.columns)]
    keys += [(column.name,) for column in source.columns if column.unique]
    keys += [
        tuple(column.name for column in constraint.columns)
        for constraint in source.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    return list(dict.fromkeys(keys))


def existing_rows(connection: Connection) -> dict[str, int]:
    found = {}
    for name in CONTENT_TABLES:
        count = connection.execute(select(func.count()).select_from(archive.table(name))).scalar()
        if count:
            found[name] = int(count)
    return found


def restore(
    ctx: Context,
    path: Path,
    *,
    replace: bool,
    checked: tuple[archive.Header, dict[str, int]] | None = None,
    progress: Progress | None = None,
) -> RestoreReport:
    """``checked``: what check(path) returned, when the caller already ran it."""
    head, counts = checked or check(path)
    engine = ctx.db.engine.execution_options(feedsvc_write=True)
    with engine.connect() as connection, connection.begin():
        found = existing_rows(connection)
        if found and not replace:
            listed = ", ".join(f"{count} {name}" for name, count in found.items())
            raise Conflict(
                f"restore: the database is not empty ({listed}); "
                "use --replace to discard its content"
            )
        old_versions = _versions(connection)
        _empty(connection)
        try:
            _insert_all(connection, path, progress)
        # The first pass checks every key the schema declares; this stays for a row a concurrent
        # writer added meanwhile (PostgreSQL), or a constraint a later migration adds.
        except IntegrityError as exc:  # pragma: no cover
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            raise Invalid(f"restore: {path}: the archive is inconsistent: {reason}") from None
        sequences.raise_to(connection, head.sequences, archive.SEQUENCED)
        _advance_versions(connection, old_versions)
    ctx.db.analyze()  # a bulk load: the planner's statistics follow the data
    log.info("restore of %s (%s, %s): %s", path, head.database, head.created_at, counts)
    return RestoreReport(counts, head.created_at, head.database)


_TAG = "tags/"  # a tag's feed name (no category slug holds a slash)


def _versions(connection: Connection) -> dict[str | None, int]:
    """Content versions by feed name (None: the site feed; a tag's: tags/{slug}), as running
    caches know them."""
    versions: dict[str | None, int] = {
        slug: version
        for slug, version in connection.execute(select(Category.slug, Category.content_version))
    }
    for slug, version in connection.execute(select(Tag.slug, Tag.content_version)):
        versions[f"{_TAG}{slug}"] = version
    site = connection.execute(select(SiteState.content_version)).scalar()
    versions[None] = int(site or 0)
    return versions


def _empty(connection: Connection) -> None:
    """Children first; job runs and leases (the history of this database) stay."""
    for name in (*reversed(archive.TABLES),):
        connection.execute(delete(archive.table(name)))
    connection.execute(delete(PostChange))
    connection.execute(delete(SlugCounter))  # hints about the old posts' slugs
    connection.execute(delete(Job))  # the scheduler starts from a full related rebuild


def _insert_all(connection: Connection, path: Path, progress: Progress | None) -> None:
    _, rows = archive.read(path)
    batch: list[dict[str, object]] = []
    current: str | None = None

    def flush() -> None:
        if batch and current is not None:
            connection.execute(insert(archive.table(current)), batch)
            if progress is not None:
                progress(len(batch))
            batch.clear()

    for row in rows:
        if row.table != current or len(batch) >= BATCH:
            flush()
            current = row.table
        batch.append(row.values)
    flush()


def _advance_versions(connection: Connection, old: dict[str | None, int]) -> None:
    for slug, version in connection.execute(select(Category.slug, Category.content_version)).all():
        if slug in old and old[slug] >= version:
            connection.execute(
                update(Category).where(Category.slug == slug).values(content_version=old[slug] + 1)
            )
    for slug, version in connection.execute(select(Tag.slug, Tag.content_version)).all():
        name = f"{_TAG}{slug}"
        if name in old and old[name] >= version:
            connection.execute(
                update(Tag).where(Tag.slug == slug).values(content_version=old[name] + 1)
            )
    site = connection.execute(select(SiteState.content_version)).scalar_one()
    if old[None] >= site:
        connection.execute(update(SiteState).values(content_version=old[None] + 1))
    # An archive from before migration 0009 has no tag validators: the site feed's last
    # change is never earlier than a tag feed's (every write changed both).
    changed = select(SiteState.feed_changed_at).scalar_subquery()
    connection.execute(
        update(Tag).where(Tag.feed_changed_at.is_(None)).values(feed_changed_at=changed)
    )
