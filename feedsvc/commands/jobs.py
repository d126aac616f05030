"""Background jobs and related posts: `jobs`, `jobs run`, `related rebuild`, `related show`."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import current_context, find_post, print_table
from feedsvc.context import Context
from feedsvc.errors import Conflict, FeedsvcError


@click.group("jobs", invoke_without_command=True)
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

    items = jobs_json(current_context(), runs_per_job=5)
    if as_json:
        click.echo(json.dumps({"items": items, "next_cursor": None}, ensure_ascii=False, indent=2))
        return
    print_table(
        [
            [
                j["name"],
                j["next_due_at"],
                "yes" if j["running"] else ("requested" if j["requested_run"] else "no"),
                (j["runs"][0]["status"] if j["runs"] else "-"),
                (j["runs"][0]["started_at"] if j["runs"] else "-"),
                "-" if j["backlog"] is None else j["backlog"],
            ]
            for j in items
        ],
        ["job", "next due", "running", "last run", "last started", "backlog"],
    )
    runs = sorted(
        (r for j in items for r in j["runs"]), key=lambda r: r["started_at"], reverse=True
    )[:10]
    if runs:
        click.echo()
        print_table(
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
@click.option(
    "--request",
    "request",
    is_flag=True,
    help="hand the run to the scheduler process (its next tick) instead of running it here",
)
@click.option("--wait", is_flag=True, help="with --request: wait until the run has ended")
@with_appcontext
def jobs_run(name: str, request: bool = False, wait: bool = False) -> None:
    """Run a job now, under the same lease as the scheduler.

    By default in this process, in the foreground (the CLI is no web worker; a related
    refresh restores the persisted index, it does not rebuild it). With --request the
    scheduler process runs it, as the API does; --wait follows the run to its end.
    """
    import time

    from feedsvc import jobs, schedule
    from feedsvc.repo import jobs as job_repo

    ctx = current_context()
    spec = schedule.job(name)
    if wait and not request:
        raise click.UsageError("--wait goes with --request")
    if request:
        run_id = jobs.request_run(ctx, spec)
        click.echo(f"{name}: requested as run {run_id}; the scheduler runs it at its next tick")
        if not wait:
            return
        while True:
            with ctx.db.read() as session:
                run = job_repo.get_run(session, run_id)
                status = run.status if run is not None else "failed"
            if status not in (job_repo.REQUESTED, "running"):
                break
            time.sleep(0.5)
        if status != jobs.Outcome.SUCCEEDED.value:
            raise FeedsvcError(f"{name}: run {run_id} {status}: see the log and `feedsvc jobs`")
        click.echo(f"{name}: run {run_id} succeeded")
        return
    outcome = jobs.run_job(ctx, spec, trigger="cli")
    if outcome is jobs.Outcome.BUSY:
        raise Conflict(f"job {name!r} is running in another process")
    if outcome is not jobs.Outcome.SUCCEEDED:
        raise FeedsvcError(f"{name}: {outcome.value}: see the log and `feedsvc jobs`")
    click.echo(f"{name}: {outcome.value}")


@click.group("related")
def related_group() -> None:
    """Related posts (相关内容)."""


@related_group.command("rebuild")
@with_appcontext
def related_rebuild() -> None:
    """Recompute every related list now: a recorded run under the jobs' lease, with progress."""
    import dataclasses
    import time

    from feedsvc import jobs, schedule
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

        spec = dataclasses.replace(schedule.job("related-rebuild"), work=work)
        owner = jobs.new_owner()
        if not jobs.acquire(current_context(), spec, owner):
            raise Conflict("a related job is running in another process; try again when it ends")
        outcome = jobs.execute(current_context(), spec, owner, trigger="cli")
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

    post_id = find_post(ident)
    with current_context().db.read() as session:
        items = related_repo.related_views(session, [post_id], current_context().clock.now()).get(
            post_id, []
        )
    if not items:
        click.echo("no related posts stored (yet): run `feedsvc related rebuild`")
        return
    print_table(
        [[i.rank, f"{i.score:.4f}", i.slug or i.link, i.title, i.source or ""] for i in items],
        ["rank", "score", "slug or link", "title", "source"],
    )
