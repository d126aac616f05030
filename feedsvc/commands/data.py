"""Data in and out: `backup`, `export`, `restore` (the work is in feedsvc/transfer/)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click._termui_impl import ProgressBar
from flask.cli import with_appcontext

from feedsvc.commands.base import current_context
from feedsvc.transfer import backup as backup_module
from feedsvc.transfer import export as export_module
from feedsvc.transfer import restore as restore_module
from feedsvc.transfer.archive import is_archive
from feedsvc.transfer.files import check_destination

_FILE = click.Path(path_type=Path, dir_okay=True)


@click.command("backup")
@click.argument("file", type=_FILE)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@with_appcontext
def backup_command(file: Path, force: bool) -> None:
    """Write a consistent snapshot of the database to FILE while the site runs.

    SQLite: a copy of the database file (the online backup API). PostgreSQL: a pg_dump
    custom-format dump (pg_dump must be on PATH; restore it with pg_restore).
    """
    ctx = current_context()
    check_destination(file, force=force, is_ours=backup_module.is_backup)  # before any output
    bar = _LazyBar("backup")
    try:
        report = backup_module.backup(ctx.db.url, file, force=force, progress=bar.show)
    finally:
        bar.close()
    click.echo(f"backup: {report.path} ({report.size} bytes, {report.method})")


@click.command("export")
@click.argument("file", type=_FILE)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@with_appcontext
def export_command(file: Path, force: bool) -> None:
    """Write the whole site to FILE as a portable archive (gzip'd JSON lines).

    Restore it with `feedsvc restore` into SQLite or PostgreSQL.
    """
    ctx = current_context()
    check_destination(file, force=force, is_ours=is_archive)
    bar = _LazyBar("export", export_module.count_rows(ctx))
    try:
        report = export_module.export(ctx, file, force=force, progress=bar.advance)
    finally:
        bar.close()
    click.echo(f"export: {report.path}: " + _counts(report.rows))


@click.command("restore")
@click.argument("file", type=_FILE)
@click.option("--replace", is_flag=True, help="Discard what the database holds first.")
@with_appcontext
def restore_command(file: Path, replace: bool) -> None:
    """Load an archive written by `feedsvc export` into this (migrated) database.

    Refuses a database that has content unless --replace. Nothing changes unless the whole
    archive is valid and stored.
    """
    ctx = current_context()
    checked = restore_module.check(file)
    bar = _LazyBar("restore", sum(checked[1].values()))
    try:
        report = restore_module.restore(
            ctx, file, replace=replace, checked=checked, progress=bar.advance
        )
    finally:
        bar.close()
    click.echo(
        f"restore: {file} (exported from {report.database} at {report.created_at}): "
        + _counts(report.rows)
    )
    click.echo("related lists: restored as exported; the scheduler's next run rebuilds them")
    here = export_module.site_identity(ctx)
    for key, value in checked[0].site.items():
        if key in here and here[key] != value:
            click.echo(
                f"warning: site.{key} is {here[key]!r} here but was {value!r} where this was "
                "exported: feed links and ids will differ from the old site's",
                err=True,
            )


class _LazyBar:
    """A progress bar shown from the first progress report on: a command that fails before
    any work (or pg_dump, which reports none) prints only its one line."""

    def __init__(self, label: str, total: int = 1) -> None:
        self.label, self.total = label, total
        self.bar: ProgressBar[int] | None = None

    def show(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=max(total, 1), label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.length = max(total, 1)
        self.bar.update(done - self.bar.pos)

    def advance(self, steps: int) -> None:
        self.show((self.bar.pos if self.bar is not None else 0) + steps, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _counts(rows: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in rows.items() if name != "site_state")
