"""Admin accounts: `user create`, `list`, `passwd`, `remove` (passwords kept as Argon2 hashes)."""

from __future__ import annotations

import sys
from datetime import datetime

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import CommandFailed, current_context, print_table
from feedsvc.services import users as user_service

_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (scripts).",
)


def _password(from_stdin: bool) -> str:
    """The new password: typed twice without echo, or the first line of stdin."""
    if from_stdin:
        data = sys.stdin.buffer.readline(user_service.PASSWORD_MAX * 4 + 2)
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandFailed("the password on standard input is not UTF-8 text") from None
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise CommandFailed("no password on standard input")
    else:
        try:
            typed = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        except click.exceptions.Abort:  # input ended (no terminal, a closed pipe) or Ctrl-C
            raise CommandFailed(
                "no password was typed (input ended); type it twice, or give --password-stdin"
            ) from None
        password = str(typed)
    user_service.check_password(password)  # before any database work
    return password


@click.group("user")
def user_group() -> None:
    """Accounts of the admin at /admin."""


@user_group.command("create")
@click.argument("name")
@_STDIN
@with_appcontext
def user_create(name: str, password_stdin: bool) -> None:
    """Create an admin account (password: at least 10 characters)."""
    user_service.check_name(name)
    user = user_service.create_user(current_context(), name, _password(password_stdin))
    click.echo(f"created user {user.id} ({user.name})")


@user_group.command("list")
@with_appcontext
def user_list() -> None:
    tz = current_context().settings.site.tz

    def shown(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")

    print_table(
        [
            [user.id, user.name, shown(user.created_at), shown(user.last_login_at)]
            for user in user_service.list_users(current_context())
        ],
        ["id", "name", "created", "last login"],
    )


@user_group.command("passwd")
@click.argument("name")
@_STDIN
@with_appcontext
def user_passwd(name: str, password_stdin: bool) -> None:
    """Change an account's password; its sessions end."""
    user_service.set_password(current_context(), name, _password(password_stdin))
    click.echo(f"changed the password of {name}; its sessions have ended")


@user_group.command("remove")
@click.argument("name")
@with_appcontext
def user_remove(name: str) -> None:
    """Remove an account; its sessions end. Removing the last one is allowed."""
    left = user_service.remove_user(current_context(), name)
    click.echo(f"removed user {name}")
    if left == 0:
        click.echo(
            "no admin accounts are left: nobody can sign in to /admin until "
            "`feedsvc user create NAME`"
        )
