"""/api/v1/jobs: next due times and recent runs; every run, paged; start a job now."""

from __future__ import annotations

from flask import Response, jsonify

from feedsvc import jobs, schedule
from feedsvc.repo import jobs as job_repo
from feedsvc.schemas import ListQuery, RunListQuery
from feedsvc.web import ctx
from feedsvc.web.api import cursor_key, in_order_after, page, query, require_token, route
from feedsvc.web.api import responses as shapes
from feedsvc.web.api.serialize import jobs_json, run_json


@route(
    "GET",
    "/jobs",
    operation_id="listJobs",
    summary="Every job: next due time, lease, its ten latest runs",
    tag="jobs",
    ok=200,
    response=shapes.Page[shapes.Job],
    query=ListQuery,
)
def list_jobs() -> Response:
    require_token()
    args = query(ListQuery)
    start = cursor_key("jobs", args.cursor, (str,))
    rows = in_order_after(jobs_json(ctx()), lambda job: (job["name"],), start, args.limit)
    return page("jobs", rows, args.limit, lambda job: (job["name"],), lambda job: job)


@route(
    "GET",
    "/jobs/runs",
    operation_id="listRuns",
    summary="Every recorded run, newest first (?job= for one job's)",
    tag="jobs",
    ok=200,
    response=shapes.Page[shapes.Run],
    query=RunListQuery,
)
def list_runs() -> Response:
    require_token()
    args = query(RunListQuery)
    start = cursor_key("runs", args.cursor, (int,))
    before_id = None if start is None else int(str(start[0]))
    with ctx().db.read() as session:
        rows = job_repo.list_runs(session, job=args.job, before_id=before_id, limit=args.limit + 1)
        return page(
            "runs", rows, args.limit, lambda run: (run.id,), lambda run: run_json(ctx(), run)
        )


@route(
    "POST",
    "/jobs/<name>/run",
    operation_id="runJob",
    summary="Ask the scheduler process to run a job at its next tick (202 with the run's id)",
    tag="jobs",
    ok=202,
    response=shapes.JobRequested,
    errors=(404,),
)
def run_job(name: str) -> tuple[Response, int]:
    require_token()
    spec = schedule.job(name)
    # Handed to the scheduler process, never run here: a related run in a web worker would
    # build and keep the index in that worker. Asking while a request waits returns it.
    run_id = jobs.request_run(ctx(), spec)
    return jsonify({"job": name, "status": "requested", "run": run_id}), 202
