"""Running: `serve` (gunicorn web workers and one scheduler process) and `scheduler`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import WholeNumber, current_context
from feedsvc.errors import Invalid


@click.command("serve")
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


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the background jobs in the foreground (SIGTERM stops it between batches)."""
    from feedsvc.jobs import run_scheduler
    from feedsvc.schedule import JOBS

    if not current_context().settings.scheduler.enabled:
        raise Invalid(
            "the scheduler is disabled (scheduler.enabled = false or FEEDSVC_SCHEDULER=0)"
        )
    ctx = current_context()
    run_scheduler(ctx, list(JOBS.values()), tick_seconds=ctx.settings.scheduler.tick_seconds)
