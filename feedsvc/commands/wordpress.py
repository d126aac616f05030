"""`feedsvc import-wordpress FILE.xml`: a WordPress export (WXR) into feedsvc (see
feedsvc/wordpress/)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import CommandFailed, current_context
from feedsvc.context import Context
from feedsvc.repo import categories as category_repo
from feedsvc.wordpress.parse import parse_wxr
from feedsvc.wordpress.plan import plan
from feedsvc.wordpress.store import store

MAX_FILE_BYTES = 512 * 1024 * 1024


def _mapping(entries: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for entry in entries:
        wp, sep, ours = entry.partition("=")
        wp, ours = wp.strip(), ours.strip()
        if not sep or not wp or not ours:
            raise click.BadParameter(
                f"{entry!r}: expected WP=FEEDSVC (a WordPress category nicename, a feedsvc "
                "category slug)",
                param_hint="--category-map",
            )
        if mapping.get(wp, ours) != ours:
            raise click.BadParameter(f"{wp!r} is mapped twice", param_hint="--category-map")
        mapping[wp] = ours
    return mapping


@click.command("import-wordpress")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--category-map",
    "category_map",
    multiple=True,
    metavar="WP=FEEDSVC",
    help="A WordPress category (its nicename, the slug in its URL) and the feedsvc category "
    "its posts go to. Repeat for each category.",
)
@click.option(
    "--default-category",
    metavar="SLUG",
    help="Where posts go whose WordPress categories are not mapped (else: an error).",
)
@click.option("--dry-run", is_flag=True, help="Check the file and the map; store nothing.")
@with_appcontext
def import_wordpress_command(
    file: Path, category_map: tuple[str, ...], default_category: str | None, dry_run: bool
) -> None:
    """Import the posts of a WordPress export (Tools → Export → All content).

    The WordPress guid becomes the post's guid, so readers of the old feed see no duplicates;
    importing the same file again changes nothing.
    """
    ctx = current_context()
    mapping = _mapping(category_map)
    data = _read(file)
    _check_categories(ctx, {*mapping.values(), *([default_category] if default_category else [])})
    site = parse_wxr(data, str(file))
    planned = plan(site, mapping, default_category, ctx.settings.site.tz, ctx.clock.now())
    skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(planned.skipped.items()))
    if dry_run:
        click.echo(f"wordpress: {len(planned.posts)} posts to import (dry run: nothing stored)")
    else:
        with click.progressbar(length=len(planned.posts), label="import", file=sys.stderr) as bar:
            report = store(ctx, planned, progress=bar.update)
        click.echo(
            f"wordpress: {report.created} posts created, {report.already_imported} already "
            f"imported, {report.slugs_changed} with a new slug (theirs was taken)"
        )
    if planned.protected:
        click.echo(f"password-protected: {planned.protected} imported as drafts")
    click.echo(f"skipped: {skipped or 'nothing'}")


def _check_categories(ctx: Context, slugs: set[str]) -> None:
    with ctx.db.read() as session:
        unknown = sorted(s for s in slugs if category_repo.get_category(session, s) is None)
    if unknown:
        raise CommandFailed(
            f"unknown feedsvc categories: {', '.join(unknown)} (create them first: "
            "feedsvc category add SLUG --name NAME)"
        )


def _read(file: Path) -> bytes:
    if file.is_dir():
        raise CommandFailed(f"{file}: is a directory")
    with file.open("rb") as stream:  # a missing file: OSError, one line (commands/base.py)
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise CommandFailed(f"{file}: larger than the {MAX_FILE_BYTES:,} bytes an import reads")
    return data
