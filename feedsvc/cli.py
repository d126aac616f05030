"""The `feedsvc` command: set-up, serving, and the same writes as the API.

The commands live in feedsvc/commands/, one module per group; this module assembles them
under one click group, which is also where every failure a user can cause or fix becomes one
line on stderr and exit 1 (2 for unusable configuration): see ``_Group``.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup

from feedsvc import create_app
from feedsvc.commands import (
    category,
    feed_import,
    jobs,
    post,
    serve,
    setup,
    site,
    source,
    token,
    user,
    websub,
)
from feedsvc.commands.base import CommandFailed, ConfigurationFailed, explain
from feedsvc.commands.data import backup_command, export_command, restore_command
from feedsvc.commands.wordpress import import_wordpress_command
from feedsvc.config import CONFIG_ENV, ConfigError, checked_config_path

# What a shell cannot pass (NUL) or what is not UTF-8 (undecodable bytes arrive as lone
# surrogates, PEP 383): refused before any command sees them.
_UNUSABLE_ARGUMENT = re.compile("[\x00\ud800-\udfff]")


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
        except BrokenPipeError:
            # The reader of our output went away (`feedsvc post list | head`): stop quietly,
            # as a shell tool does; Python docs' recipe, so the exit flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(1) from None
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


def _use_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """--config PATH: checked now (exit 2, one line), then handed on as FEEDSVC_CONFIG, which
    is what load_settings() reads here and in every process `serve` starts."""
    if value is None:
        return
    try:
        path = checked_config_path(value, "--config")
    except ConfigError as exc:
        raise ConfigurationFailed(str(exc)) from None
    os.environ[CONFIG_ENV] = str(path)


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """--version: `feedsvc <version>`, the installed package's (one place: pyproject.toml)."""
    if not value or ctx.resilient_parsing:
        return
    from feedsvc import __version__

    click.echo(f"feedsvc {__version__}")
    ctx.exit()


cli = _Group(
    create_app=_load_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    help="feedsvc: a self-hosted RSS/Atom feed service.",
    params=[
        click.Option(
            ["--config", "config_path"],
            metavar="PATH",
            expose_value=False,
            is_eager=True,
            callback=_use_config,
            help=f"The site's feedsvc.toml (default: ${CONFIG_ENV}, then ./feedsvc.toml).",
        ),
        click.Option(
            ["--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_print_version,
            help="Print feedsvc's version and exit.",
        ),
    ],
)


def main() -> None:
    cli.main(prog_name="feedsvc")


for command in (
    setup.init_command,
    setup.db_group,
    site.new_site_command,
    serve.serve_command,
    serve.scheduler_command,
    jobs.jobs_group,
    jobs.related_group,
    category.category_group,
    post.post_group,
    source.source_group,
    feed_import.import_command,
    token.token_group,
    user.user_group,
    websub.websub_group,
    backup_command,
    export_command,
    restore_command,
    import_wordpress_command,
):
    cli.add_command(command)


if __name__ == "__main__":
    main()
