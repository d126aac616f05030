"""/admin/jobs: every background job (next due time in the site's time zone, who holds its
lease, its backlog, its recent runs) and 立即运行.

The page reads what GET /api/v1/jobs answers (serialize.jobs_json). 立即运行 is the API's
POST /jobs/{name}/run: jobs.request_run records a requested run that the scheduler process
starts at its next tick. A web worker never runs a job (a related run would build and keep
the index in it).
"""

from __future__ import annotations

from flask import flash, redirect, render_template
from werkzeug.wrappers import Response

from feedsvc import jobs, schedule
from feedsvc.web import ctx
from feedsvc.web.admin import PREFIX, bp, session
from feedsvc.web.admin.layout import admin_layout, local_time_of
from feedsvc.web.api.serialize import jobs_json

LIST = PREFIX + "/jobs"
RUNS_SHOWN = 10
STATUS = {
    "requested": "已请求，等待运行",
    "running": "运行中",
    "succeeded": "成功",
    "failed": "失败",
}
TRIGGER = {"manual": "手动", "schedule": "定时", "change": "内容变更", "cli": "命令行"}


@bp.get("/jobs")
def jobs_page() -> str:
    context = ctx()
    return render_template(
        "admin/jobs.html",
        jobs=jobs_json(context, runs_per_job=RUNS_SHOWN),
        status_label=STATUS,
        trigger_label=TRIGGER,
        local_time_of=local_time_of,
        tz=context.settings.site.tz,
        timezone=context.settings.site.timezone,
        csrf_token=session.csrf_token(),
        **admin_layout(context.settings),
    )


@bp.post("/jobs/<name>/run")
def run_job(name: str) -> Response:
    spec = schedule.job(name)  # NotFound (404) names the jobs there are
    run_id = jobs.request_run(ctx(), spec)
    flash(f"已请求运行 {name}（运行编号 {run_id}）：调度进程会在下一次检查时开始运行。")
    return redirect(f"{LIST}#job-{name}", 303)
