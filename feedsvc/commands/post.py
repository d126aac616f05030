"""Posts: `post add`, `list`, `show`, `remove` (by id or slug)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from feedsvc import datafiles
from feedsvc.commands.base import WholeNumber, current_context, find_post, print_table
from feedsvc.errors import NotFound
from feedsvc.repo import categories as category_repo
from feedsvc.repo import posts as post_repo
from feedsvc.schemas import PostCreate, parse_input
from feedsvc.services import posts as post_service
from feedsvc.web.api.serialize import post_json


@click.group("post")
def post_group() -> None:
    """Add, list, show and remove posts."""


@post_group.command("add")
@click.option("--title", required=True)
@click.option("--category", required=True)
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Content file (Markdown or HTML); '-' or absent reads stdin.",
)
@click.option("--format", "fmt", type=click.Choice(["markdown", "html"]), default="markdown")
@click.option("--slug")
@click.option("--author", default="")
@click.option("--summary")
@click.option("--tag", "tags", multiple=True)
@click.option("--status", type=click.Choice(["draft", "published"]), default="published")
@click.option("--published-at", help="ISO 8601; a naive time is in the site time zone.")
@with_appcontext
def post_add(path: Path | None, fmt: str, tags: tuple[str, ...], **fields: Any) -> None:
    if path is None or str(path) == "-":
        content = datafiles.decode_utf8(datafiles.read_bytes(sys.stdin.buffer, "stdin"), "stdin")
    else:
        content = datafiles.read_text(path)
    raw = {key: value for key, value in fields.items() if value is not None}
    data = parse_input(PostCreate, {**raw, "content": content, "format": fmt, "tags": list(tags)})
    post = post_service.create_post(current_context(), data)
    click.echo(f"added post {post.id} {post.slug}")
    click.echo(post_json(current_context(), post)["url"])


@post_group.command("list")
@click.option("--category")
@click.option("--status", type=click.Choice(["draft", "published"]))
@click.option("--limit", default=50, type=WholeNumber(1, 10_000), show_default=True)
@with_appcontext
def post_list(category: str | None, status: str | None, limit: int) -> None:
    ctx = current_context()
    with ctx.db.read() as session:
        category_id = None
        if category is not None:
            found = category_repo.get_category(session, category)
            if found is None:
                raise NotFound(f"no category {category!r}")
            category_id = found.id
        where = post_repo.PostFilter(category_id=category_id, status=status)
        rows = post_repo.list_posts(session, where, limit=limit)
        table = [
            [
                r.id,
                r.published_at.astimezone(ctx.settings.site.tz).strftime("%Y-%m-%d %H:%M"),
                r.status,
                r.category.slug,
                r.slug,
                r.title,
            ]
            for r in rows
        ]
    print_table(table, ["id", "published", "status", "category", "slug", "title"])


@post_group.command("show")
@click.argument("ident")
@with_appcontext
def post_show(ident: str) -> None:
    """Print a post (by id or slug) as JSON."""
    post_id = find_post(ident)
    with current_context().db.read() as session:
        post = post_repo.get_post(session, post_id)
        if post is None:  # pragma: no cover - removed by another process since find_post looked
            raise NotFound(f"no post with id or slug {ident!r}")
        click.echo(json.dumps(post_json(current_context(), post), ensure_ascii=False, indent=2))


@post_group.command("remove")
@click.argument("ident")
@with_appcontext
def post_remove(ident: str) -> None:
    """Delete a post (by id or slug)."""
    post_id = find_post(ident)
    post_service.delete_post(current_context(), post_id)
    click.echo(f"removed post {post_id}")
