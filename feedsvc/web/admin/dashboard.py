"""/admin: the dashboard. Counts of posts, the last written, the scheduled ones with their due
time (site time zone), the jobs with their last run, and the sources that are failing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import render_template

from feedsvc.context import Context
from feedsvc.models import Source
from feedsvc.repo import posts as post_repo
from feedsvc.repo import sources as source_repo
from feedsvc.web import ctx
from feedsvc.web.admin import bp, session
from feedsvc.web.admin.layout import admin_layout, job_description, local_time, local_time_of
from feedsvc.web.admin.posts import PostRow, post_row
from feedsvc.web.api.serialize import jobs_json

LATEST = 10
SCHEDULED = 20
FAILING = 20


@dataclass(frozen=True)
class JobRow:
    name: str
    description: str
    next_due_at: str
    running: bool
    last_status: str  # "" when it never ran
    last_started_at: str
    last_error: str


@dataclass(frozen=True)
class Dashboard:
    published: int
    drafts: int
    scheduled: int
    latest: list[PostRow]
    upcoming: list[PostRow]
    jobs: list[JobRow]
    failing: list[Source]


def build(context: Context) -> Dashboard:
    now = context.clock.now()
    tz = context.settings.site.tz
    with context.db.read() as session:
        published, drafts, scheduled = post_repo.count_by_state(session, now)
        latest = [post_row(post, now, tz) for post in post_repo.recently_changed(session, LATEST)]
        upcoming = [
            post_row(post, now, tz) for post in post_repo.scheduled_posts(session, now, SCHEDULED)
        ]
        failing = source_repo.failing_sources(session, FAILING)
    return Dashboard(published, drafts, scheduled, latest, upcoming, _jobs(context, tz), failing)


def _jobs(context: Context, tz: Any) -> list[JobRow]:
    rows = []
    for job in jobs_json(context, runs_per_job=1):
        last = job["runs"][0] if job["runs"] else None
        rows.append(
            JobRow(
                name=job["name"],
                description=job_description(job["name"], job["description"]),
                next_due_at=local_time_of(job["next_due_at"], tz),
                running=bool(job["running"]),
                last_status="" if last is None else last["status"],
                last_started_at="" if last is None else local_time_of(last["started_at"], tz),
                last_error="" if last is None else (last["error"] or ""),
            )
        )
    return rows


@bp.get("")
@bp.get("/")
def dashboard() -> str:
    context = ctx()
    return render_template(
        "admin/dashboard.html",
        board=build(context),
        timezone=context.settings.site.timezone,
        local_time=local_time,
        tz=context.settings.site.tz,
        csrf_token=session.csrf_token(),
        **admin_layout(context.settings),
    )
