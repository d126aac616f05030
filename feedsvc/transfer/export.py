"""`feedsvc export FILE`: every table of archive.TABLES, read in one snapshot, written as the
archive (archive.py) to a temporary file renamed into place."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, func, select, text

from feedsvc import __version__
from feedsvc.context import Context
from feedsvc.transfer import archive, sequences
from feedsvc.transfer.files import replacing

log = logging.getLogger("feedsvc.export")

Progress = Callable[[int], None]  # rows written since the last call


@dataclass(frozen=True)
class ExportReport:
    path: Path
    rows: dict[str, int]


def count_rows(ctx: Context) -> int:
    with ctx.db.engine.connect() as connection:
        return sum(
            connection.execute(select(func.count()).select_from(archive.table(name))).scalar() or 0
            for name in archive.TABLES
        )


def export(
    ctx: Context, destination: Path, *, force: bool, progress: Progress | None = None
) -> ExportReport:
    counts = dict.fromkeys(archive.TABLES, 0)
    with (
        replacing(destination, force=force, is_ours=archive.is_archive) as temporary,
        _snapshot(ctx) as connection,
        archive.open_for_writing(temporary) as out,
    ):
        head = archive.header(
            ctx.db.dialect,
            sequences.last_given(connection),
            ctx.clock.now(),
            __version__,
            _revision(connection),
            site_identity(ctx),
        )
        out.write(archive.dump_line(head))
        for name in archive.TABLES:
            source = archive.table(name)
            query = select(source).order_by(*source.primary_key.columns)
            for row in connection.execute(query).mappings():
                line = {"table": name, "row": archive.encode_row(source, row)}
                out.write(archive.dump_line(line))
                counts[name] += 1
                if progress is not None:
                    progress(1)
        out.write(archive.dump_line({"end": archive.FORMAT, "rows": counts}))
    log.info("export to %s: %s", destination, counts)
    return ExportReport(destination, counts)


def site_identity(ctx: Context) -> dict[str, str]:
    """The settings every feed's links and ids are built from."""
    site = ctx.settings.site
    return {
        "base_url": site.base_url,
        "tag_authority": site.authority,
        "tag_date": site.tag_date.isoformat(),
    }


def _revision(connection: Connection) -> str | None:
    # Read in the snapshot, without Alembic (whose INFO lines would clutter the CLI's stderr).
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


@contextmanager
def _snapshot(ctx: Context) -> Iterator[Connection]:
    """One read transaction: every table as of one moment (REPEATABLE READ on PostgreSQL; an
    SQLite read transaction keeps its WAL snapshot from its first read on)."""
    engine = ctx.db.engine
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with engine.connect() as connection, connection.begin():
        yield connection
