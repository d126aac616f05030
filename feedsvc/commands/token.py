"""API tokens: `token create`, `list`, `revoke` (only hashes are stored)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import current_context, print_table
from feedsvc.services import tokens as token_service
from feedsvc.web.api.serialize import token_json


@click.group("token")
def token_group() -> None:
    """API tokens (only their hashes are stored)."""


@token_group.command("create")
@click.argument("name")
@with_appcontext
def token_create(name: str) -> None:
    """Create a token and print it once: the token alone is the last line."""
    row, token = token_service.create_token(current_context(), name)
    click.echo(f"created token {row.id} ({row.name}); it is shown only once:")
    click.echo(token)


@token_group.command("list")
@with_appcontext
def token_list() -> None:
    rows = [
        token_json(current_context(), row) for row in token_service.list_tokens(current_context())
    ]
    print_table(
        [[r["id"], r["name"], r["created_at"], r["last_used_at"], r["revoked_at"]] for r in rows],
        ["id", "name", "created", "last used", "revoked"],
    )


@token_group.command("revoke")
@click.argument("ident")
@with_appcontext
def token_revoke(ident: str) -> None:
    """Revoke a token by id, or every token of a name."""
    rows = token_service.revoke_token(current_context(), ident)
    click.echo(f"revoked {len(rows)} token(s): " + ", ".join(str(row.id) for row in rows))
