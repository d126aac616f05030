"""The `feedsvc` command: set-up, serving, and the same writes as the API.

Errors print one line on stderr and exit 1 (2 for unusable configuration).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from feedsvc import create_app, datafiles
from feedsvc.config import ConfigError
from feedsvc.context import Context
from feedsvc.errors import Conflict, FeedsvcError, Invalid, NotFound
from feedsvc.repo import categories as category_repo
from feedsvc.repo import posts as post_repo
from feedsvc.schemas import (
    CategoryCreate,
    CategoryUpdate,
    PostCreate,
    parse_id,
    parse_input,
    parse_whole_number,
)
from feedsvc.services import categories as category_service
from feedsvc.services import posts as post_service
from feedsvc.services import tokens as token_service
from feedsvc.services.samples import read_post_file, sample_files
from feedsvc.web.api.serialize import category_json, post_json, token_json

# What a shell cannot pass (NUL) or what is not UTF-8 (undecodable bytes arrive as lone
# surrogates, PEP 383): refused before any command sees them.
_UNUSABLE_ARGUMENT = re.compile("[\x00\ud800-\udfff]")


def _ctx() -> Context:
    context: Context = current_app.extensions["feedsvc"]
    return context


class CommandFailed(click.ClickException):
    """One line on stderr, ``feedsvc: error: <message>``, and exit 1 (2: unusable configuration).

    click's own main() prints it and exits, in a shell and under CliRunner alike.
    """

    def __init__(self, message: str) -> None:
        # Lone surrogates cannot be encoded on stderr: show them escaped, never crash on them.
        text = datafiles.one_line(message).encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(text)

    def show(self, file: Any = None) -> None:
        click.echo(f"feedsvc: error: {self.message}", err=True)


class ConfigurationFailed(CommandFailed):
    """The configuration cannot be used (README: exit code 2)."""

    exit_code = 2


def explain(exc: BaseException) -> CommandFailed | None:
    """The one-line meaning of a failure a user can cause or fix; None for a bug."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from feedsvc.db import storage_fault

    if isinstance(exc, ConfigError):
        return ConfigurationFailed(str(exc))
    if isinstance(exc, FeedsvcError):
        return CommandFailed(exc.message)
    if isinstance(exc, datafiles.DataFileError):
        return CommandFailed(str(exc))
    if isinstance(exc, CommandError):  # alembic: an unknown revision, a broken history
        return CommandFailed(f"migration: {exc}")
    if isinstance(exc, SQLAlchemyError):
        fault = storage_fault(exc)
        return CommandFailed(fault.message) if fault is not None else None
    if isinstance(exc, UnicodeDecodeError):
        return CommandFailed(
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        )
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CommandFailed(f"{where}{exc.strerror or exc}")
    return None


def _load_app() -> Flask:
    """The app, built when a command first needs it; failures here are configuration's."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        app: Flask = create_app()
    except (OSError, SQLAlchemyError) as exc:
        # Database() creates the SQLite folder and the engine here; config.py checked what it
        # can, so what is left is the file system refusing (permissions, a read-only mount).
        reason = explain(exc)
        raise ConfigError(
            f"database.url: cannot open the database: {reason.message if reason else exc}"
        ) from None
    return app


class _Group(FlaskGroup):
    """Every known failure becomes one readable line and a non-zero exit, never a traceback.

    One place for the whole class of errors: domain errors, configuration, storage faults
    (db.storage_fault), migrations, and files that cannot be read. Anything else is a bug and
    keeps its traceback.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The top-level group sees every argument, the subcommands' included.
        for number, arg in enumerate(args, start=1):
            found = _UNUSABLE_ARGUMENT.search(arg)
            if found:
                what = "a NUL character" if found.group() == "\x00" else "bytes that are not UTF-8"
                raise CommandFailed(f"argument {number} contains {what}")
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            failure = explain(exc)
            if failure is None:
                raise
            raise failure from None

    # Flask would build the app to look for commands it registered (none here): a bad
    # configuration would then break `--help` and turn an unknown command into a traceback.
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)


cli = _Group(
    create_app=_load_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    help="feedsvc: a self-hosted RSS/Atom feed service.",
)


def main() -> None:
    cli.main(prog_name="feedsvc")


class WholeNumber(click.ParamType[int, Any]):
    """An option's number: ASCII digits only, within bounds, checked before any driver sees it.

    click.INT takes anything int() takes: '٣', '²'-free Unicode digits, '1_000', ' 7 '. The
    bounds keep a huge value a usage error instead of a driver overflow.
    """

    name = "integer"

    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum, self.maximum = minimum, maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number: int | None = value
        else:
            number = parse_whole_number(str(value))
        if number is None or not self.minimum <= number <= self.maximum:
            shown = str(value) if len(str(value)) <= 40 else str(value)[:40] + "…"
            self.fail(
                f"{shown!r} is not a whole number from {self.minimum} to {self.maximum}",
                param,
                ctx,
            )
        return number


def _find_id(ident: str) -> int | None:
    """An id given as ASCII digits; 0 when it is a number no row can have (never a slug)."""
    number = parse_whole_number(ident)
    if number is None:
        return None
    return parse_id(ident) or 0


def _table(rows: list[list[Any]], headers: list[str]) -> None:
    cells = [headers] + [[("" if value is None else str(value)) for value in row] for row in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(_pad(value, width) for value, width in zip(row, widths, strict=True)))


def _width(text: str) -> int:
    # CJK characters take two terminal columns.
    return sum(2 if ord(char) > 0x2E7F else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


# -- set-up ------------------------------------------------------------------------------------


@cli.command("init")
@click.option("--no-samples", is_flag=True, help="Do not load the sample posts.")
@with_appcontext
def init_command(no_samples: bool) -> None:
    """Migrate the database, sync categories.toml, load sample posts into an empty database."""
    from feedsvc import migrate

    ctx = _ctx()
    migrate.upgrade(ctx.db)
    click.echo(f"database: {_safe_url(ctx.db.url)} at revision {migrate.current_revision(ctx.db)}")
    data_dir = ctx.settings.data_dir
    categories_file = data_dir / "categories.toml"
    if categories_file.exists():
        # The whole file is checked before anything is stored: a bad file changes nothing.
        category_service.read_categories_file(categories_file)
        listed = category_service.listed_sources(ctx, categories_file)
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
    files = sample_files(data_dir / "posts")
    inputs = [read_post_file(path) for path in files]  # all valid before any is stored
    with click.progressbar(inputs, label="sample posts", file=sys.stderr) as bar:
        for data in bar:
            post_service.create_post(ctx, data)
    click.echo(f"sample posts: {len(inputs)} loaded")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@cli.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations."""
    from feedsvc import migrate

    migrate.upgrade(_ctx().db, revision)
    click.echo(f"database at revision {migrate.current_revision(_ctx().db)}")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=WholeNumber(1, 65535))
@click.option("--workers", default=2, show_default=True, type=WholeNumber(1, 64))
@click.option("--no-scheduler", is_flag=True, help="Start no scheduler process beside.")
def serve_command(host: str, port: int, workers: int, no_scheduler: bool) -> None:
    """Serve with gunicorn, and one scheduler process beside the web workers."""
    from feedsvc.config import load_settings
    from feedsvc.server import serve

    settings = load_settings()  # fail here, in one line, not in every worker
    scheduler = settings.scheduler.enabled and not no_scheduler
    serve(settings, host=host, port=port, workers=workers, scheduler=scheduler)


@cli.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the background jobs in the foreground (SIGTERM stops it between batches)."""
    from feedsvc.jobs import run_scheduler

    if not _ctx().settings.scheduler.enabled:
        raise Invalid(
            "the scheduler is disabled (scheduler.enabled = false or FEEDSVC_SCHEDULER=0)"
        )
    run_scheduler(_ctx(), tick_seconds=_ctx().settings.scheduler.tick_seconds)


@cli.group("jobs", invoke_without_command=True)
@click.pass_context
def jobs_group(click_ctx: click.Context) -> None:
    """Background jobs: next due times and recent runs (`jobs run NAME` runs one now)."""
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(jobs_list)


@jobs_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def jobs_list(as_json: bool = False) -> None:
    from feedsvc.web.api.serialize import jobs_json

    items = jobs_json(_ctx(), runs_per_job=5)
    if as_json:
        click.echo(json.dumps({"items": items, "next_cursor": None}, ensure_ascii=False, indent=2))
        return
    _table(
        [
            [
                j["name"],
                j["next_due_at"],
                "yes" if j["running"] else "no",
                (j["runs"][0]["status"] if j["runs"] else "-"),
                (j["runs"][0]["started_at"] if j["runs"] else "-"),
            ]
            for j in items
        ],
        ["job", "next due", "running", "last run", "last started"],
    )
    runs = sorted(
        (r for j in items for r in j["runs"]), key=lambda r: r["started_at"], reverse=True
    )[:10]
    if runs:
        click.echo()
        _table(
            [
                [
                    r["id"],
                    r["job"],
                    r["trigger"],
                    r["status"],
                    r["started_at"],
                    r["finished_at"],
                    r["items"],
                    r["error"] or "",
                ]
                for r in runs
            ],
            ["run", "job", "trigger", "status", "started", "finished", "items", "error"],
        )


@jobs_group.command("run")
@click.argument("name")
@with_appcontext
def jobs_run(name: str) -> None:
    """Run a job now, in the foreground, under the same lease as the scheduler."""
    from feedsvc import jobs

    if name not in jobs.specs():
        raise NotFound(f"no job {name!r}; jobs are: {', '.join(sorted(jobs.specs()))}")
    outcome = jobs.run_job(_ctx(), name, trigger="cli")
    if outcome is jobs.Outcome.BUSY:
        raise Conflict(f"job {name!r} is running in another process")
    click.echo(f"{name}: {outcome.value}")
    if outcome is not jobs.Outcome.SUCCEEDED:
        sys.exit(1)


@cli.group("related")
def related_group() -> None:
    """Related posts (相关内容)."""


@related_group.command("rebuild")
@with_appcontext
def related_rebuild() -> None:
    """Recompute every related list now: a recorded run under the jobs' lease, with progress."""
    import dataclasses
    import time

    from feedsvc import jobs
    from feedsvc.related import refresh

    reports: list[refresh.RefreshReport] = []
    started = time.perf_counter()
    with click.progressbar(length=1, label="related lists", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        def work(ctx: Context, lease: jobs.Lease) -> int:
            reports.append(refresh.rebuild(ctx, lease, progress))
            return reports[-1].compared

        spec = dataclasses.replace(jobs.specs()["related-rebuild"], work=work)
        owner = jobs.new_owner()
        if not jobs.acquire(_ctx(), spec, owner):
            raise Conflict("a related job is running in another process; try again when it ends")
        outcome = jobs.execute(_ctx(), spec, owner, trigger="cli")
    if outcome is not jobs.Outcome.SUCCEEDED or not reports:
        raise FeedsvcError(f"related rebuild {outcome.value}: see the log and `feedsvc jobs`")
    report = reports[0]
    click.echo(
        f"related rebuild: {report.documents} posts indexed, {report.compared} lists compared, "
        f"{report.written} written in {time.perf_counter() - started:.2f}s"
    )


@related_group.command("show")
@click.argument("ident")
@with_appcontext
def related_show(ident: str) -> None:
    """The stored related list of a post (by id or slug), with scores."""
    from feedsvc.repo import related as related_repo

    post_id = _find_post(ident)
    with _ctx().db.read() as session:
        items = related_repo.related_views(session, [post_id], _ctx().clock.now()).get(post_id, [])
    if not items:
        click.echo("no related posts stored (yet): run `feedsvc related rebuild`")
        return
    _table(
        [[i.rank, f"{i.score:.4f}", i.slug or i.link, i.title, i.source or ""] for i in items],
        ["rank", "score", "slug or link", "title", "source"],
    )


# -- categories --------------------------------------------------------------------------------


@cli.group("category")
def category_group() -> None:
    """List, add, edit and remove categories."""


@category_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_appcontext
def category_list(as_json: bool) -> None:
    ctx = _ctx()
    with ctx.db.read() as session:
        rows = category_repo.list_categories(session)
        counts = {row.slug: category_repo.count_posts(session, row.id) for row in rows}
    if as_json:
        click.echo(
            json.dumps([category_json(ctx, row) for row in rows], ensure_ascii=False, indent=2)
        )
        return
    _table(
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
    category = category_service.create_category(_ctx(), data)
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
    category = category_service.update_category(_ctx(), slug, parse_input(CategoryUpdate, given))
    click.echo(f"updated category {category.slug}")


@category_group.command("remove")
@click.argument("slug")
@click.option("--move-to", help="Move the category's posts here first.")
@with_appcontext
def category_remove(slug: str, move_to: str | None) -> None:
    moved = category_service.delete_category(_ctx(), slug, move_to=move_to)
    suffix = f" ({moved} posts moved to {move_to})" if moved else ""
    click.echo(f"removed category {slug}{suffix}")


# -- posts -------------------------------------------------------------------------------------


@cli.group("post")
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
        content = datafiles.decode_utf8(sys.stdin.buffer.read(), "stdin")
    else:
        content = datafiles.read_text(path)
    raw = {key: value for key, value in fields.items() if value is not None}
    data = parse_input(PostCreate, {**raw, "content": content, "format": fmt, "tags": list(tags)})
    post = post_service.create_post(_ctx(), data)
    click.echo(f"added post {post.id} {post.slug}")
    click.echo(post_json(_ctx(), post)["url"])


@post_group.command("list")
@click.option("--category")
@click.option("--status", type=click.Choice(["draft", "published"]))
@click.option("--limit", default=50, type=WholeNumber(1, 10_000), show_default=True)
@with_appcontext
def post_list(category: str | None, status: str | None, limit: int) -> None:
    ctx = _ctx()
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
    _table(table, ["id", "published", "status", "category", "slug", "title"])


def _find_post(ident: str) -> int:
    post_id = _find_id(ident)
    with _ctx().db.read() as session:
        post = (
            post_repo.get_post_by_slug(session, ident)
            if post_id is None
            else (post_repo.get_post(session, post_id) if post_id else None)
        )
        if post is None:
            raise NotFound(f"no post with id or slug {ident!r}")
        return post.id


@post_group.command("show")
@click.argument("ident")
@with_appcontext
def post_show(ident: str) -> None:
    """Print a post (by id or slug) as JSON."""
    post_id = _find_post(ident)
    with _ctx().db.read() as session:
        post = post_repo.get_post(session, post_id)
        if post is None:  # removed since _find_post looked
            raise NotFound(f"no post with id or slug {ident!r}")
        click.echo(json.dumps(post_json(_ctx(), post), ensure_ascii=False, indent=2))


@post_group.command("remove")
@click.argument("ident")
@with_appcontext
def post_remove(ident: str) -> None:
    """Delete a post (by id or slug)."""
    post_id = _find_post(ident)
    post_service.delete_post(_ctx(), post_id)
    click.echo(f"removed post {post_id}")


# -- sources ------------------------------------------------------------------------------------


@cli.group("source")
def source_group() -> None:
    """Upstream feeds polled on the schedule."""


@source_group.command("add")
@click.argument("url")
@click.option("--category", required=True)
@click.option(
    "--mode", type=click.Choice(["related", "posts"]), default="related", show_default=True
)
@click.option(
    "--interval",
    "--interval-minutes",
    "interval_minutes",
    type=WholeNumber(1, 7 * 24 * 60),
    help="Minutes between polls.",
)
@with_appcontext
def source_add(url: str, category: str, mode: str, interval_minutes: int | None) -> None:
    from feedsvc.schemas import SourceCreate
    from feedsvc.services import sources as source_service

    raw = {"url": url, "category": category, "mode": mode, "interval_minutes": interval_minutes}
    data = parse_input(SourceCreate, {k: v for k, v in raw.items() if v is not None})
    source = source_service.create_source(_ctx(), data)
    click.echo(
        f"added source {source.id} {source.url} ({source.mode}, every "
        f"{source.interval_minutes} min)"
    )


@source_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def source_list(as_json: bool) -> None:
    from feedsvc.repo import sources as source_repo
    from feedsvc.web.api.serialize import source_json

    with _ctx().db.read() as session:
        rows = [source_json(_ctx(), row) for row in source_repo.list_sources(session)]
    if as_json:
        click.echo(json.dumps({"items": rows, "next_cursor": None}, ensure_ascii=False, indent=2))
        return
    _table(
        [
            [
                r["id"],
                r["category"],
                r["mode"],
                "yes" if r["enabled"] else "no",
                r["state"]["last_status"],
                r["state"]["last_fetched_at"],
                r["state"]["next_fetch_at"],
                r["state"]["consecutive_errors"],
                r["state"]["disabled_reason"] or r["state"]["last_error"] or "",
                r["url"],
            ]
            for r in rows
        ],
        [
            "id",
            "category",
            "mode",
            "enabled",
            "status",
            "last fetched",
            "next fetch",
            "errors",
            "note",
            "url",
        ],
    )


def _set_enabled(ident: str, enabled: bool) -> None:
    from feedsvc.schemas import SourceUpdate
    from feedsvc.services import sources as source_service

    source_id = source_service.find(_ctx(), ident)
    source = source_service.update_source(_ctx(), source_id, SourceUpdate(enabled=enabled))
    click.echo(f"source {source.id} {'enabled' if enabled else 'disabled'}")


@source_group.command("enable")
@click.argument("ident")
@with_appcontext
def source_enable(ident: str) -> None:
    _set_enabled(ident, True)


@source_group.command("disable")
@click.argument("ident")
@with_appcontext
def source_disable(ident: str) -> None:
    _set_enabled(ident, False)


@source_group.command("remove")
@click.argument("ident")
@with_appcontext
def source_remove(ident: str) -> None:
    """Remove a source (by id or URL); posts it brought in stay."""
    from feedsvc.services import sources as source_service

    source_id = source_service.find(_ctx(), ident)
    source_service.delete_source(_ctx(), source_id)
    click.echo(f"removed source {source_id}")


@cli.command("import")
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

        report = import_feed(_ctx(), target, category, progress)
    click.echo(f"import: {report.new} new, {report.updated} updated, {report.skipped} skipped")
    for error in report.errors[:10]:
        click.echo(f"  skipped {error}", err=True)


# -- tokens ------------------------------------------------------------------------------------


@cli.group("token")
def token_group() -> None:
    """API tokens (only their hashes are stored)."""


@token_group.command("create")
@click.argument("name")
@with_appcontext
def token_create(name: str) -> None:
    """Create a token and print it once: the token alone is the last line."""
    row, token = token_service.create_token(_ctx(), name)
    click.echo(f"created token {row.id} ({row.name}); it is shown only once:")
    click.echo(token)


@token_group.command("list")
@with_appcontext
def token_list() -> None:
    rows = [token_json(_ctx(), row) for row in token_service.list_tokens(_ctx())]
    _table(
        [[r["id"], r["name"], r["created_at"], r["last_used_at"], r["revoked_at"]] for r in rows],
        ["id", "name", "created", "last used", "revoked"],
    )


@token_group.command("revoke")
@click.argument("ident")
@with_appcontext
def token_revoke(ident: str) -> None:
    """Revoke a token by id, or every token of a name."""
    rows = token_service.revoke_token(_ctx(), ident)
    click.echo(f"revoked {len(rows)} token(s): " + ", ".join(str(row.id) for row in rows))


if __name__ == "__main__":
    main()
