"""The built-in WebSub hub: `websub list`, `websub remove`."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import current_context, find_id, print_table
from feedsvc.errors import NotFound


@click.group("websub")
def websub_group() -> None:
    """The built-in WebSub hub's subscriptions (websub.hub = "builtin")."""


@websub_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON (the API's shape)")
@with_appcontext
def websub_list(as_json: bool = False) -> None:
    """Verified subscriptions, then requests still waiting for verification (or to be told
    they were denied); --json puts those under "pending"."""
    from feedsvc.repo import websub as websub_repo
    from feedsvc.web.api.serialize import request_json, subscription_json

    ctx = current_context()
    with ctx.db.read() as session:
        rows = websub_repo.list_subscriptions(session, after_id=None, limit=1_000_000)
        pending = websub_repo.list_intents(session)
    items = [subscription_json(ctx, row, etag) for row, etag in rows]
    waiting = [request_json(ctx, row) for row in pending]
    if as_json:
        listing = {"items": items, "next_cursor": None, "pending": waiting}
        click.echo(json.dumps(listing, ensure_ascii=False, indent=2))
        return
    if not items:
        click.echo("no subscriptions")
    else:
        print_table(
            [
                [
                    s["id"],
                    s["topic"],
                    s["callback"],
                    s["expires_at"],
                    "yes" if s["owed"] else "no",
                    s["failures"],
                    s["last_error"] or "",
                ]
                for s in items
            ],
            ["id", "topic", "callback", "expires", "owed", "failures", "last error"],
        )
    if pending:
        click.echo()
        print_table(
            [
                [
                    r["id"],
                    r["mode"],
                    r["topic"],
                    r["callback"],
                    r["attempts"],
                    r["last_error"] or "",
                ]
                for r in waiting
            ],
            ["request", "waiting to", "topic", "callback", "attempts", "last error"],
        )


@websub_group.command("remove")
@click.argument("ident")
@with_appcontext
def websub_remove(ident: str) -> None:
    """Remove a subscription by its id (`websub list` shows them); the subscriber is not told."""
    from feedsvc.services import websub as websub_service

    subscription_id = find_id(ident)
    if subscription_id is None:
        raise NotFound(f"a subscription is named by its id (ASCII digits), not {ident!r}")
    if subscription_id == 0:  # a number no row can have
        raise NotFound(f"no WebSub subscription {ident}")
    websub_service.remove_subscription(current_context(), subscription_id)
    click.echo(f"removed subscription {subscription_id}")
