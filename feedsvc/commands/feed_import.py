"""Bringing in an existing feed once: `import URL_OR_FILE`."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import current_context


@click.command("import")
@click.argument("target", metavar="URL_OR_FILE")
@click.option("--category", required=True)
@with_appcontext
def import_command(target: str, category: str) -> None:
    """Bring in an existing RSS or Atom feed once; running it again changes nothing."""
    from feedsvc.sources.importer import import_feed

    with contextlib.ExitStack() as stack:
        bar: Any = None

        def progress(done: int, total: int) -> None:
            # The bar starts with the first stored entry: a refused import prints one line.
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(
                    click.progressbar(length=max(total, 1), label="importing", file=sys.stderr)
                )
            bar.update(done - bar.pos)

        report = import_feed(current_context(), target, category, progress)
    click.echo(f"import: {report.new} new, {report.updated} updated, {report.skipped} skipped")
    for error in report.errors[:10]:
        click.echo(f"  skipped {error}", err=True)
