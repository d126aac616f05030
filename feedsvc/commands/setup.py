"""Set-up: `init`, `db upgrade`."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import current_context
from feedsvc.repo import posts as post_repo
from feedsvc.services import categories as category_service
from feedsvc.services import posts as post_service
from feedsvc.services.samples import read_post_file, sample_files


@click.command("init")
@click.option("--no-samples", is_flag=True, help="Do not load the sample posts.")
@with_appcontext
def init_command(no_samples: bool) -> None:
    """Migrate the database, sync categories.toml, load sample posts into an empty database."""
    from feedsvc import migrate

    ctx = current_context()
    data_dir = ctx.settings.data_dir
    categories_file = data_dir / "categories.toml"
    # Every file is read and checked before the database is touched: a bad file changes
    # nothing, and its error is the only line printed.
    listed = None
    if categories_file.exists():
        category_service.read_categories_file(categories_file)
        listed = category_service.listed_sources(ctx, categories_file)
    samples = [] if no_samples else [read_post_file(p) for p in sample_files(data_dir / "posts")]
    migrate.upgrade(ctx.db)
    click.echo(f"database: {_safe_url(ctx.db.url)} at revision {migrate.current_revision(ctx.db)}")
    if listed is not None:
        report = category_service.sync_categories(ctx, categories_file)
        click.echo(
            f"categories: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged"
        )
        from feedsvc.services.sources import sync_sources

        if listed:
            synced = sync_sources(ctx, listed)
            click.echo(
                f"sources: {synced.added} added, {synced.updated} updated, "
                f"{synced.unchanged} unchanged"
            )
    with ctx.db.read() as session:
        has_posts = post_repo.count_posts(session) > 0
    if no_samples or has_posts:
        click.echo(
            "sample posts: skipped (the database already has posts)"
            if has_posts
            else "sample posts: skipped"
        )
        return
    with click.progressbar(samples, label="sample posts", file=sys.stderr) as bar:
        for data in bar:
            post_service.create_post(ctx, data)
    click.echo(f"sample posts: {len(samples)} loaded")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations."""
    from feedsvc import migrate

    migrate.upgrade(current_context().db, revision)
    click.echo(f"database at revision {migrate.current_revision(current_context().db)}")
