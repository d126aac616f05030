"""Upstream feeds: `source add`, `list`, `enable`, `disable`, `remove`."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import WholeNumber, current_context, print_table
from feedsvc.schemas import parse_input


@click.group("source")
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
    source = source_service.create_source(current_context(), data)
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

    with current_context().db.read() as session:
        rows = [source_json(current_context(), row) for row in source_repo.list_sources(session)]
    if as_json:
        click.echo(json.dumps({"items": rows, "next_cursor": None}, ensure_ascii=False, indent=2))
        return
    print_table(
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

    source_id = source_service.find(current_context(), ident)
    source = source_service.update_source(
        current_context(), source_id, SourceUpdate(enabled=enabled)
    )
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

    source_id = source_service.find(current_context(), ident)
    source_service.delete_source(current_context(), source_id)
    click.echo(f"removed source {source_id}")
