"""/admin/jobs: every job (next due time in Beijing time, lease holder, backlog, recent runs
with status and error) and 立即运行, which only records a requested run (as the API's)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from feedsvc.repo import jobs as job_repo
from feedsvc.schedule import JOBS
from tests.admin.conftest import form_token

pytestmark = pytest.mark.usefixtures("backend")


def job_section(page: str, name: str) -> str:
    found = re.search(rf'<section id="job-{name}">.*?</section>', page, re.S)
    assert found, name
    return found.group(0)


def all_runs(ctx) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        return [(run.job, run.status) for run in job_repo.recent_runs(session, 100)]


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/admin/jobs"), ("post", "/admin/jobs/related-refresh/run")]
)
def test_signed_out_goes_to_login(client, ctx, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    data = {"csrf_token": form_token(client)}
    answer = client.get(path) if method == "get" else client.post(path, data=data)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login?next=/admin/jobs")
    assert all_runs(ctx) == []


def test_run_now_without_csrf_is_400_and_requests_nothing(signed_in, ctx) -> None:  # type: ignore[no-untyped-def]
    assert signed_in.post("/admin/jobs/related-refresh/run").status_code == 400
    assert all_runs(ctx) == []


def test_every_job_with_lease_runs_and_errors(signed_in, ctx, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    with ctx.db.write() as session:
        run = job_repo.start_run(session, "sources-poll", "schedule", "worker-7", now)
        job_repo.finish_run(
            session, run, now + timedelta(minutes=1), status="failed", items=3, error="超时了"
        )
        spec = JOBS["related-refresh"]
        job_repo.ensure_job(session, spec.name, spec.lease_name, now + timedelta(hours=1))
        job_repo.take_lease(session, spec.lease_name, "host-a:123", now, timedelta(minutes=5))
        job_repo.start_run(session, "related-refresh", "schedule", "host-a:123", now)
    answer = signed_in.get("/admin/jobs")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    page = answer.get_data(as_text=True)
    for name in JOBS:
        assert "立即运行" in job_section(page, name)
    poll = job_section(page, "sources-poll")
    assert "失败" in poll and "超时了" in poll and "定时" in poll
    assert "<td>3</td>" in poll  # its items (a run is a dict: run.items was dict.items)
    refresh = job_section(page, "related-refresh")
    assert "host-a:123" in refresh and "运行中" in refresh
    due = (now + timedelta(hours=1)).astimezone(ctx.settings.site.tz).strftime("%Y-%m-%d %H:%M")
    assert f"下次运行：{due}" in refresh
    assert "Asia/Shanghai" in page
    websub = job_section(page, "websub")
    assert "积压：0" in websub  # websub keeps a backlog; the related jobs keep none
    assert "积压" not in job_section(page, "related-rebuild")


def test_run_now_requests_a_run_the_api_shows(signed_in, ctx, auth) -> None:  # type: ignore[no-untyped-def]
    answer = signed_in.post(
        "/admin/jobs/related-rebuild/run", data={"csrf_token": form_token(signed_in)}
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/admin/jobs#job-related-rebuild"
    # Requested, not run: the web worker hands it to the scheduler process.
    assert all_runs(ctx) == [("related-rebuild", "requested")]
    listing = signed_in.get("/api/v1/jobs", headers=auth).json["items"]
    job = next(job for job in listing if job["name"] == "related-rebuild")
    assert job["requested_run"] == job["runs"][0]["id"]
    assert job["runs"][0]["status"] == "requested"

    page = signed_in.get("/admin/jobs").get_data(as_text=True)
    assert f"运行编号 {job['requested_run']}" in page
    assert "已请求，等待运行" in job_section(page, "related-rebuild")


def test_unknown_job_is_404(signed_in, ctx) -> None:  # type: ignore[no-untyped-def]
    answer = signed_in.post("/admin/jobs/nope/run", data={"csrf_token": form_token(signed_in)})
    assert answer.status_code == 404
    assert all_runs(ctx) == []
