"""Categories: `category list`, `add`, `edit`, `remove`."""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import WholeNumber, current_context, print_table
from feedsvc.errors import Invalid
from feedsvc.repo import categories as category_repo
from feedsvc.schemas import CategoryCreate, CategoryUpdate, parse_input
from feedsvc.services import categories as category_service
from feedsvc.web.api.serialize import category_json


@click.group("category")
def category_group() -> None:
    """List, add, edit and remove categories."""


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
@click.option("--move-to", help="Move the category's posts here first.")
@with_appcontext
def category_remove(slug: str, move_to: str | None) -> None:
    moved = category_service.delete_category(current_context(), slug, move_to=move_to)
    suffix = f" ({moved} posts moved to {move_to})" if moved else ""
    click.echo(f"removed category {slug}{suffix}")
