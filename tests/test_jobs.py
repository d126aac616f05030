"""Jobs: the lease, run records, failures, the API, the CLI, and two scheduler processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from feedsvc import jobs
from feedsvc.cli import cli
from feedsvc.db import Database
from feedsvc.models import Job, JobRun
from feedsvc.schedule import JOBS
from tests.conftest import BASE_URL
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")


def runs(db: Database, job: str, status: str = "succeeded") -> int:
    with db.read() as session:
        return session.scalar(
            select(func.count()).where(JobRun.job == job, JobRun.status == status)
        )


def test_lease_is_exclusive_until_it_expires(ctx, clock) -> None:
    spec = JOBS["related-refresh"]
    assert jobs.acquire(ctx, spec, "host:1:a")
    assert not jobs.acquire(ctx, spec, "host:2:b")
    assert jobs.acquire(ctx, spec, "host:1:a")  # re-entrant for its holder
    # The rebuild shares the lease: it cannot start while the refresh runs.
    assert not jobs.acquire(ctx, JOBS["related-rebuild"], "host:2:b")
    clock.advance(seconds=ctx.settings.scheduler.lease_seconds + 1)  # the holder died
    assert jobs.acquire(ctx, spec, "host:2:b")


def test_run_is_recorded_and_next_due_set(ctx, factory: Factory, clock) -> None:
    factory.post()
    assert jobs.run_job(ctx, JOBS["related-refresh"], trigger="test") is jobs.Outcome.SUCCEEDED
    with ctx.db.read() as session:
        (run,) = session.scalars(select(JobRun)).all()
        job = session.get(Job, "related-refresh")
    assert (run.status, run.trigger, run.error) == ("succeeded", "test", None)
    assert run.started_at == clock.now() and run.finished_at == clock.now()
    assert job.next_due_at == clock.now() + timedelta(minutes=10)
    assert jobs.run_job(ctx, JOBS["related-refresh"], trigger="t", only_if_due=True) is (
        jobs.Outcome.NOT_DUE
    )
    clock.advance(minutes=10)
    assert jobs.run_job(ctx, JOBS["related-refresh"], trigger="t", only_if_due=True) is (
        jobs.Outcome.SUCCEEDED
    )


def test_rebuild_is_due_by_cron(ctx) -> None:
    spec = JOBS["related-rebuild"]
    first = spec.first_due(ctx, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    # "30 3 * * *" in Asia/Shanghai: 03:30 Beijing time, 19:30 UTC the day before.
    assert first == datetime(2026, 11, 28, 19, 30, tzinfo=UTC)


def test_failing_run_is_recorded_and_releases_the_lease(ctx) -> None:
    def boom(_ctx, _lease) -> int:  # type: ignore[no-untyped-def]
        raise RuntimeError("数据库暂时不可用")

    spec = jobs.JobSpec("test-failing", "fails", boom, jobs.every(lambda c: 5), lambda c, now: now)
    assert jobs.run_job(ctx, spec, trigger="test") is jobs.Outcome.FAILED
    with ctx.db.read() as session:
        run = session.scalar(select(JobRun).where(JobRun.job == spec.name))
    assert run.status == "failed" and "数据库暂时不可用" in run.error
    assert jobs.acquire(ctx, spec, "someone-else")  # the lease was released


def _one_run(ctx, job: str) -> JobRun:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        return session.scalars(select(JobRun).where(JobRun.job == job)).one()


def test_a_run_that_lost_its_lease_stops_and_is_recorded(ctx, clock) -> None:
    """The holder was too slow: another process took the expired lease; the next checkpoint
    stops the run, which is recorded as failed and leaves the next due time to the new holder."""

    def slow(job_ctx, lease: jobs.Lease) -> int:  # type: ignore[no-untyped-def]
        clock.advance(seconds=job_ctx.settings.scheduler.lease_seconds + 1)
        assert jobs.acquire(job_ctx, spec, "其他主机:2:b")
        lease.checkpoint()
        return 1

    spec = jobs.JobSpec("test-slow", "slow", slow, jobs.every(lambda c: 5), lambda c, now: now)
    assert jobs.run_job(ctx, spec, trigger="test") is jobs.Outcome.FAILED
    run = _one_run(ctx, "test-slow")
    assert (run.status, run.error) == ("failed", "test-slow: lease lost to another process")
    with ctx.db.read() as session:
        assert session.get(Job, "test-slow").next_due_at == ctx.clock.now() - timedelta(
            seconds=ctx.settings.scheduler.lease_seconds + 1
        )
    assert not jobs.acquire(ctx, spec, "第三者:3:c")  # the new holder's lease was left alone


def test_a_cancelled_run_stops_between_batches(ctx) -> None:
    import threading

    cancel = threading.Event()
    batches: list[int] = []

    def work(_ctx, lease: jobs.Lease) -> int:  # type: ignore[no-untyped-def]
        for batch in range(3):
            lease.checkpoint()
            batches.append(batch)
            cancel.set()  # SIGTERM arrives during the first batch
        return len(batches)

    spec = jobs.JobSpec("test-cancel", "stops", work, jobs.every(lambda c: 5), lambda c, now: now)
    outcome = jobs.run_job(ctx, spec, trigger="test", cancel=cancel)
    assert outcome is jobs.Outcome.CANCELLED and batches == [0]
    run = _one_run(ctx, "test-cancel")
    assert (run.status, run.error) == ("cancelled", "test-cancel: stopped between batches")
    assert jobs.acquire(ctx, spec, "someone-else")  # released for the next run


def test_cli_job_commands_when_busy_or_failing(runner, ctx, factory: Factory, monkeypatch) -> None:
    import dataclasses

    from feedsvc.related import refresh

    factory.post()
    assert jobs.acquire(ctx, JOBS["related-rebuild"], "其他主机:9:x")
    busy = runner.invoke(cli, ["jobs", "run", "related-refresh"])
    assert busy.exit_code == 1
    assert busy.stderr == ("feedsvc: error: job 'related-refresh' is running in another process\n")
    rebuild_busy = runner.invoke(cli, ["related", "rebuild"])
    assert rebuild_busy.exit_code == 1
    assert "a related job is running in another process" in rebuild_busy.stderr
    jobs_release(ctx, "其他主机:9:x")  # the other process ends

    def boom(_ctx, _lease) -> int:  # type: ignore[no-untyped-def]
        raise RuntimeError("索引损坏")

    failing = dataclasses.replace(JOBS["related-refresh"], work=boom)
    monkeypatch.setitem(JOBS, "related-refresh", failing)
    failed = runner.invoke(cli, ["jobs", "run", "related-refresh"])
    assert failed.exit_code == 1
    assert failed.stderr == (
        "feedsvc: error: related-refresh: failed: see the log and `feedsvc jobs`\n"
    )
    monkeypatch.setattr(refresh, "rebuild", boom)
    rebuild_failed = runner.invoke(cli, ["related", "rebuild"])
    assert rebuild_failed.exit_code == 1
    assert "related rebuild failed: see the log" in rebuild_failed.stderr
    with ctx.db.read() as session:
        statuses = sorted(session.scalars(select(JobRun.status)))
    assert statuses == ["failed", "failed"]


def jobs_release(ctx, owner: str) -> None:  # type: ignore[no-untyped-def]
    from feedsvc.repo import jobs as job_repo

    with ctx.db.write() as session:
        job_repo.release_lease(session, JOBS["related-rebuild"].lease_name, owner)


def test_jobs_api(client, ctx, auth, factory: Factory) -> None:
    factory.post()
    assert client.get("/api/v1/jobs").status_code == 401
    assert client.post("/api/v1/jobs/related-refresh/run").status_code == 401
    assert client.post("/api/v1/jobs/nope/run", headers=auth).status_code == 404
    requested = client.post("/api/v1/jobs/related-refresh/run", headers=auth)
    assert requested.status_code == 202
    run_id = requested.json["run"]
    assert requested.json == {"job": "related-refresh", "status": "requested", "run": run_id}
    # Asking again while it waits is the same request.
    assert client.post("/api/v1/jobs/related-refresh/run", headers=auth).json["run"] == run_id
    listing = client.get("/api/v1/jobs", headers=auth).json
    by_name = {item["name"]: item for item in listing["items"]}
    assert by_name["related-refresh"]["requested_run"] == run_id
    assert by_name["related-refresh"]["runs"][0]["status"] == "requested"
    # The scheduler's tick runs it (the web process never does).
    tick = jobs.run_job(ctx, JOBS["related-refresh"], trigger="schedule", only_if_due=True)
    assert tick is jobs.Outcome.SUCCEEDED
    listing = client.get("/api/v1/jobs", headers=auth).json
    assert listing["next_cursor"] is None
    by_name = {item["name"]: item for item in listing["items"]}
    assert set(by_name) == {"related-refresh", "related-rebuild", "sources-poll", "websub"}
    assert by_name["related-refresh"]["backlog"] is None  # only the websub job keeps one
    assert by_name["websub"]["backlog"] == 0
    refresh_job = by_name["related-refresh"]
    assert refresh_job["requested_run"] is None
    assert refresh_job["runs"][0]["id"] == run_id
    assert refresh_job["runs"][0]["status"] == "succeeded"
    assert refresh_job["runs"][0]["trigger"] == "manual"
    assert refresh_job["next_due_at"] is not None
    # Busy: another process holds the related lease; the request waits for it.
    assert jobs.acquire(ctx, JOBS["related-rebuild"], "other-host:9:x")
    waiting = client.post("/api/v1/jobs/related-refresh/run", headers=auth)
    assert waiting.status_code == 202 and waiting.json["run"] != run_id
    tick = jobs.run_job(ctx, JOBS["related-refresh"], trigger="schedule", only_if_due=True)
    assert tick is jobs.Outcome.BUSY
    jobs_release(ctx, "other-host:9:x")
    tick = jobs.run_job(ctx, JOBS["related-refresh"], trigger="schedule", only_if_due=True)
    assert tick is jobs.Outcome.SUCCEEDED
    assert runs(ctx.db, "related-refresh") == 2


def test_api_run_builds_no_index_in_the_web_process(
    client, ctx, auth, factory: Factory, monkeypatch, clock
) -> None:
    """POST .../run only records a request: no index object, no run, in the app's process."""
    from feedsvc.related import engine, refresh

    factory.post(title="国债怎么买", content="国债 收益率 期限。", tags=["国债"])
    built: list[str] = []
    real_init = engine.RelatedIndex.__init__

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        built.append("index")
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(engine.RelatedIndex, "__init__", spy)
    for name in ("related-refresh", "related-rebuild"):
        answer = client.post(f"/api/v1/jobs/{name}/run", headers=auth)
        assert answer.status_code == 202 and answer.json["status"] == "requested"
    assert built == [] and refresh.MEMORY_KEY not in ctx.memory
    with ctx.db.read() as session:
        statuses = sorted(session.scalars(select(JobRun.status)))
    assert statuses == ["requested", "requested"]
    # Not due by schedule (the rebuild is due at 03:30): only the request makes it run.
    tick = jobs.run_job(ctx, JOBS["related-rebuild"], trigger="schedule", only_if_due=True)
    assert tick is jobs.Outcome.SUCCEEDED and built
    assert runs(ctx.db, "related-rebuild") == 1


def test_hostile_job_names_are_4xx_and_change_nothing(client, ctx, auth) -> None:
    for name in ("%00", "..%2F..%2Fetc", "x" * 5000, "related-refresh%20", "相关"):
        answer = client.post(f"/api/v1/jobs/{name}/run", headers=auth)
        assert 400 <= answer.status_code < 500, name
        assert answer.is_json and "error" in answer.json
    bad_body = client.post(
        "/api/v1/jobs/related-refresh/run", headers=auth, data=b"\xff\x00", content_type="text/x"
    )
    assert bad_body.status_code in (202, 400, 415)
    with ctx.db.read() as session:
        statuses = list(session.scalars(select(JobRun.status)))
    assert statuses in ([], ["requested"])


def test_cli_request_hands_the_run_to_the_scheduler(runner, ctx, factory: Factory) -> None:
    import threading

    factory.post(title="国债怎么买", content="国债 收益率 期限。", tags=["国债"])
    asked = runner.invoke(cli, ["jobs", "run", "related-refresh", "--request"])
    assert asked.exit_code == 0 and "requested as run" in asked.output
    assert runs(ctx.db, "related-refresh", "requested") == 1
    assert "requested" in runner.invoke(cli, ["jobs"]).output
    bad = runner.invoke(cli, ["jobs", "run", "related-refresh", "--wait"])
    assert bad.exit_code == 2

    def scheduler_tick() -> None:
        time.sleep(0.5)
        jobs.run_job(ctx, JOBS["related-refresh"], trigger="schedule", only_if_due=True)

    ticker = threading.Thread(target=scheduler_tick)
    ticker.start()
    waited = runner.invoke(cli, ["jobs", "run", "related-refresh", "--request", "--wait"])
    ticker.join()
    assert waited.exit_code == 0, waited.output
    assert "succeeded" in waited.output
    assert runs(ctx.db, "related-refresh") == 1
    assert runs(ctx.db, "related-refresh", "requested") == 0


def test_cli_related_and_jobs(runner, factory: Factory) -> None:
    post = factory.post(title="国债怎么买", content="国债 收益率 期限。", tags=["国债"])
    factory.post(title="国债期限", content="国债 期限 收益率 久期。", tags=["国债"])
    rebuilt = runner.invoke(cli, ["related", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "2 posts indexed" in rebuilt.output
    shown = runner.invoke(cli, ["related", "show", post.slug])
    assert shown.exit_code == 0 and "国债期限" in shown.output
    listing = runner.invoke(cli, ["jobs"])
    assert "related-rebuild" in listing.output and "succeeded" in listing.output
    ran = runner.invoke(cli, ["jobs", "run", "related-refresh"])
    assert ran.exit_code == 0 and "succeeded" in ran.output
    unknown = runner.invoke(cli, ["jobs", "run", "nope"])
    assert unknown.exit_code == 1 and "no job" in unknown.output


def _start_scheduler(config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "FEEDSVC_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    env.pop("FEEDSVC_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "feedsvc.cli", "scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_two_scheduler_processes_run_each_due_job_once(db_url, factory: Factory, tmp_path):
    """A deploy overlap: two schedulers on one database; every due run happens once."""
    for n in range(3):
        factory.post(title=f"国债第{n}篇", content="国债 收益率 期限 久期。", tags=["国债"])
    config = tmp_path / "feedsvc.toml"
    config.write_text(
        f'[site]\nbase_url = "{BASE_URL}"\n[database]\nurl = "{db_url}"\n'
        "[scheduler]\ntick_seconds = 1\n",
        encoding="utf-8",
    )
    db = Database(db_url)
    processes = [_start_scheduler(config), _start_scheduler(config)]
    try:
        assert _wait_for(lambda: runs(db, "related-refresh") == 1)
        for expected in (2, 3, 4):
            with db.write() as session:  # make it due again, for both processes at once
                session.execute(
                    update(Job)
                    .where(Job.name == "related-refresh")
                    .values(next_due_at=datetime.now(UTC) - timedelta(seconds=1))
                )
            assert _wait_for(lambda e=expected: runs(db, "related-refresh") == e)
            time.sleep(2.5)  # both have ticked at least twice since
            assert runs(db, "related-refresh") == expected
        with db.write() as session:
            session.execute(
                update(Job)
                .where(Job.name == "related-rebuild")
                .values(next_due_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert _wait_for(lambda: runs(db, "related-rebuild") == 1)
        time.sleep(2.5)
        assert runs(db, "related-rebuild") == 1
        with db.read() as session:
            owners = set(session.scalars(select(JobRun.owner)))
            failed = session.scalar(select(func.count()).where(JobRun.status != "succeeded"))
            errors = [(r.job, r.status, r.error) for r in session.scalars(select(JobRun))]
        assert failed == 0, errors
        assert len({owner.rsplit(":", 1)[0] for owner in owners}) <= 2  # host:pid
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=30)[0] for process in processes]
        db.dispose()
    # SIGTERM stops each cleanly.
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert all("stopped" in output for output in outputs)
