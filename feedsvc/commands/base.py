"""What every command module shares: the app's context, one-line failures, numbers, tables.

``explain`` is the one place that knows which exceptions a user can cause or fix; the group in
feedsvc/cli.py turns them into ``feedsvc: error: <message>`` and exit 1 (2: configuration).
"""

from __future__ import annotations

from typing import Any

import click
from flask import current_app

from feedsvc import datafiles
from feedsvc.config import ConfigError
from feedsvc.context import Context
from feedsvc.errors import FeedsvcError, NotFound
from feedsvc.repo import posts as post_repo
from feedsvc.schemas import parse_id, parse_whole_number


def current_context() -> Context:
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
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CommandFailed(f"{where}{exc.strerror or exc}")
    return None


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


def find_id(ident: str) -> int | None:
    """An id given as ASCII digits; 0 when it is a number no row can have (never a slug)."""
    number = parse_whole_number(ident)
    if number is None:
        return None
    return parse_id(ident) or 0


def print_table(rows: list[list[Any]], headers: list[str]) -> None:
    cells = [headers] + [[("" if value is None else str(value)) for value in row] for row in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(_pad(value, width) for value, width in zip(row, widths, strict=True)))


def _width(text: str) -> int:
    # CJK characters take two terminal columns.
    return sum(2 if ord(char) > 0x2E7F else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def find_post(ident: str) -> int:
    post_id = find_id(ident)
    with current_context().db.read() as session:
        post = (
            post_repo.get_post_by_slug(session, ident)
            if post_id is None
            else (post_repo.get_post(session, post_id) if post_id else None)
        )
        if post is None:
            raise NotFound(f"no post with id or slug {ident!r}")
        return post.id
