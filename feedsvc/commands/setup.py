"""Set-up: `init`, `db upgrade`."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import current_context
from feedsvc.config import ADMIN_MIN_SECRET_CHARS, Settings, secret_key_path
from feedsvc.repo import categories as category_repo
from feedsvc.schemas import PostCreate
from feedsvc.services import categories as category_service
from feedsvc.services.samples import (
    load_samples,
    never_had_posts,
    read_post_file,
    sample_files,
)


@click.command("init")
@click.option("--no-samples", is_flag=True, help="Do not load the sample posts.")
@with_appcontext
def init_command(no_samples: bool) -> None:
    """Migrate the database, add the categories it never had, load samples into a new site.

    Never undoes an edit made through the API or CLI: a category that exists is left as it is,
    one removed is not brought back (`feedsvc category sync` applies the file explicitly), and
    sample posts load only into a database that never had a post.
    """
    from feedsvc import migrate

    ctx = current_context()
    paths = ctx.settings.paths
    # Every file is read and checked before the database is touched: a bad file changes
    # nothing, and its error is the only line printed.
    categories = paths.categories if paths.categories and paths.categories.exists() else None
    listed = None if categories is None else category_service.read_file(ctx, categories)
    posts_dir = None if no_samples or not (paths.posts and paths.posts.exists()) else paths.posts
    samples = [] if posts_dir is None else [read_post_file(p) for p in sample_files(posts_dir)]
    migrate.upgrade(ctx.db)
    config = ctx.settings.config_file
    click.echo(f"config: {config if config else 'none (defaults and FEEDSVC_* environment)'}")
    click.echo(f"database: {_safe_url(ctx.db.url)} at revision {migrate.current_revision(ctx.db)}")
    click.echo(_admin_secret_key(ctx.settings))
    if listed is None:
        click.echo("categories: no categories file (paths.categories, or categories.toml)")
    else:
        report = category_service.add_new_categories(ctx, listed)
        click.echo(
            f"categories ({listed.path}): {report.added} added, {report.unchanged} already "
            f"there, kept as they are"
            + (f" ({report.differs} differ from the file)" if report.differs else "")
            + (f", {report.removed} removed earlier, not re-added" if report.removed else "")
        )
        if listed.sources:
            click.echo(
                f"sources: {report.sources_added} added"
                + (
                    f", {report.sources_missing} listed under existing categories not added"
                    if report.sources_missing
                    else ""
                )
            )
        if report.differs or report.removed or report.sources_missing:
            click.echo(
                "  `feedsvc category sync` adds what is missing, `--overwrite` applies the "
                "file's values"
            )
    _load_samples(no_samples, posts_dir, samples)


def _admin_secret_key(settings: Settings) -> str:
    """The admin's secret key: generated beside the config (mode 0600) when the config names
    none and the file does not exist yet; never printed."""
    key, path = settings.site.secret_key, secret_key_path(settings)
    if len(key) >= ADMIN_MIN_SECRET_CHARS:
        return "admin secret key: set"
    unusable = "/admin signs nobody in until site.secret_key or that file holds a random key"
    if path is None:
        return "admin secret key: none (no config file: set site.secret_key to use /admin)"
    if key:
        return f"admin secret key: shorter than {ADMIN_MIN_SECRET_CHARS} characters; {unusable}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return f"admin secret key: {path} is empty; {unusable}"
    except OSError as exc:
        return f"admin secret key: cannot write {path} ({exc.strerror}); {unusable}"
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return f"admin secret key: generated {path} (keep it private; never commit it)"


def _load_samples(no_samples: bool, posts_dir: Path | None, samples: list[PostCreate]) -> None:
    ctx = current_context()
    if no_samples:
        click.echo("sample posts: skipped (--no-samples)")
        return
    if posts_dir is None:
        click.echo("sample posts: none (no posts folder: paths.posts, or posts/)")
        return
    if not never_had_posts(ctx):
        click.echo("sample posts: skipped (this database has had posts)")
        return
    with ctx.db.read() as session:
        missing = sorted(
            {data.category for data in samples}
            - {row.slug for row in category_repo.list_categories(session)}
        )
    if missing:
        click.echo(
            f"sample posts: skipped: their categories {', '.join(missing)} do not exist "
            "(add them, then run init again)"
        )
        return
    with click.progressbar(length=len(samples), label="sample posts", file=sys.stderr) as bar:
        load_samples(ctx, samples, bar.update)
    click.echo(f"sample posts: {len(samples)} loaded from {posts_dir}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not parsed.query:
        # As the user wrote it: render_as_string would percent-encode a path like 站点/.
        return f"{parsed.drivername}:///{parsed.database}"
    return parsed.render_as_string(hide_password=True)


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
