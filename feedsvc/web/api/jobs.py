"""/api/v1/jobs: recent runs and next due times; start a job now (202, or 409 if running)."""

from __future__ import annotations

from flask import Response, jsonify

from feedsvc import jobs
from feedsvc.errors import Conflict, NotFound
from feedsvc.web import ctx
from feedsvc.web.api import bp, require_token
from feedsvc.web.api.serialize import jobs_json


@bp.get("/jobs")
def list_jobs() -> Response:
    require_token()
    return jsonify({"items": jobs_json(ctx()), "next_cursor": None})


@bp.post("/jobs/<name>/run")
def run_job(name: str) -> tuple[Response, int]:
    require_token()
    if name not in jobs.specs():
        raise NotFound(f"no job {name!r}; jobs are: {', '.join(sorted(jobs.specs()))}")
    # The same lease as the scheduler's runs: taken here, so a busy job is a 409 right away.
    if not jobs.start_in_background(ctx(), name, trigger="manual"):
        raise Conflict(f"job {name!r} is running already")
    return jsonify({"job": name, "status": "started"}), 202
