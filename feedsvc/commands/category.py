"""Categories: `category list`, `add`, `edit`, `remove`, `sync`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import WholeNumber, current_context, print_table
from feedsvc.config import ConfigError
from feedsvc.errors import Invalid
from feedsvc.repo import categories as category_repo
from feedsvc.schemas import CategoryCreate, CategoryUpdate, parse_input
from feedsvc.services import categories as category_service
from feedsvc.web.api.serialize import category_json


@click.group("category")
def category_group() -> None:
    """List, add, edit, remove and sync categories."""


@category_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_appcontext
def category_list(as_json: bool) -> None:
    ctx = current_context()
    with ctx.db.read() as session:
        rows = category_repo.list_categories(session)
        counts = {row.slug: category_repo.count_posts(session, row.id) for row in rows}
    if as_json:
        click.echo(
            json.dumps([category_json(ctx, row) for row in rows], ensure_ascii=False, indent=2)
        )
        return
    print_table(
        [[r.slug, r.name, r.position, r.feed_length, counts[r.slug]] for r in rows],
        ["slug", "name", "position", "feed_length", "posts"],
    )


@category_group.command("add")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--description", default="")
@click.option("--language", default="zh-CN", show_default=True)
@click.option("--position", default=0, type=WholeNumber(0, 100_000))
@click.option("--feed-length", default=20, type=WholeNumber(1, 1000), show_default=True)
@with_appcontext
def category_add(slug: str, **fields: Any) -> None:
    data = parse_input(CategoryCreate, {"slug": slug, **fields})
    category = category_service.create_category(current_context(), data)
    click.echo(f"added category {category.slug} ({category.name})")


@category_group.command("edit")
@click.argument("slug")
@click.option("--name")
@click.option("--description")
@click.option("--language")
@click.option("--position", type=WholeNumber(0, 100_000))
@click.option("--feed-length", type=WholeNumber(1, 1000))
@with_appcontext
def category_edit(slug: str, **fields: Any) -> None:
    given = {key: value for key, value in fields.items() if value is not None}
    if not given:
        raise Invalid("nothing to change: give at least one option")
    category = category_service.update_category(
        current_context(), slug, parse_input(CategoryUpdate, given)
    )
    click.echo(f"updated category {category.slug}")


@category_group.command("remove")
@click.argument("slug")
@click.option("--move-to", help="Move the category's posts and upstream sources here first.")
@with_appcontext
def category_remove(slug: str, move_to: str | None) -> None:
    """Remove a category; refused while it has posts or sources, unless they move (--move-to)."""
    removal = category_service.delete_category(current_context(), slug, move_to=move_to)
    moved = [
        f"{number} {noun}"
        for number, noun in ((removal.posts_moved, "posts"), (removal.sources_moved, "sources"))
        if number
    ]
    suffix = f" ({' and '.join(moved)} moved to {move_to})" if moved else ""
    click.echo(f"removed category {slug}{suffix}")


@category_group.command("sync")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Give existing categories the file's values.")
@with_appcontext
def category_sync(file: Path | None, overwrite: bool) -> None:
    """Apply the categories file (default: the site's) explicitly and say what changed.

    Adds every category and source it lists that the database lacks (removed ones too); with
    --overwrite, existing ones take the file's values. Nothing is ever deleted.
    """
    ctx = current_context()
    path = file or ctx.settings.paths.categories
    if path is None:
        raise ConfigError(
            "no categories file: name one (feedsvc category sync FILE), or set paths.categories"
        )
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    report = category_service.apply_file(ctx, path, overwrite=overwrite)
    for change in report.changes:
        click.echo(change)
    click.echo(
        f"categories ({path}): {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged"
        + (f", {report.differs} differ (kept)" if report.differs else "")
        + f"; sources: {report.sources_added} added, {report.sources_updated} updated"
    )
