"""SIGHUP to a scheduler in the middle of a run: the run finishes, the next one uses the new file.

A real `feedsvc scheduler` (both backends) with the related rebuild slowed on purpose (the
same slow checkpoint as test_scheduler_kill.py), HUPed while the run is half-way.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from feedsvc.context import Context
from feedsvc.models import Job, JobRun
from feedsvc.related.refresh import REFRESH_JOB
from tests.factories import Factory
from tests.processes import config_env, feedsvc, stop, wait_for
from tests.test_scheduler_kill import SLOW_REBUILD, TOPICS

pytestmark = pytest.mark.usefixtures("backend")


def statuses(ctx: Context) -> list[str]:
    with ctx.db.read() as session:
        rows = session.scalars(select(JobRun.status).where(JobRun.job == REFRESH_JOB))
        return list(rows)


def test_sighup_mid_run_drops_nothing(
    db_url: str, ctx: Context, factory: Factory, tmp_path: Path
) -> None:
    for n in range(24):
        topic, words = TOPICS[n % len(TOPICS)]
        factory.post("jijin", title=f"{topic}第{n}篇", content=f"{words}。例{n}。", tags=[topic])
    env = config_env(tmp_path, db_url)
    log = tmp_path / "scheduler.log"
    scheduler = feedsvc(["scheduler"], env, log, code=SLOW_REBUILD)
    said = lambda: log.read_text(encoding="utf-8")  # noqa: E731
    try:
        wait_for(lambda: statuses(ctx) == ["running"], 60, "the rebuild to be running")
        config_env(tmp_path, db_url, scheduler={"related_interval_minutes": 45})
        scheduler.send_signal(signal.SIGHUP)
        wait_for(lambda: "scheduler: reload: settings read again" in said(), 30, "the reload")
        assert statuses(ctx) == ["running"]  # the reload did not stop the run
        wait_for(lambda: statuses(ctx) == ["succeeded"], 120, "the run to finish")
        with ctx.db.read() as session:
            due_after_run = session.scalar(select(Job.next_due_at).where(Job.name == REFRESH_JOB))
        # Disabled by a reload: a job made due is not run.
        config_env(tmp_path, db_url, scheduler={"enabled": False})
        scheduler.send_signal(signal.SIGHUP)
        wait_for(lambda: "scheduler.enabled = false: no runs" in said(), 30, "the second reload")
        with ctx.db.write() as session:
            session.execute(
                update(Job)
                .where(Job.name == REFRESH_JOB)
                .values(next_due_at=datetime(2020, 1, 1, tzinfo=UTC))
            )
        time.sleep(3)  # three ticks (tick_seconds = 1)
        assert statuses(ctx) == ["succeeded"]
        config_env(tmp_path, db_url)  # enabled again: the due job runs
        scheduler.send_signal(signal.SIGHUP)
        wait_for(lambda: statuses(ctx) == ["succeeded"] * 2, 120, "the run after enabling")
        # Another HUP with a file that no longer parses: one error line, the process runs on.
        (tmp_path / "feedsvc.toml").write_text("[site\n", encoding="utf-8")
        scheduler.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the previous settings" in said(), 30, "the error line")
        assert scheduler.poll() is None
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=60) == 0
    finally:
        stop(scheduler)
    errors = [line for line in said().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "scheduler: reload: config: " in errors[0], said()
    assert "Traceback" not in said()
    # The run that was going on when the first HUP came is whole: every post has its list.
    with ctx.db.read() as session:
        run = session.scalars(
            select(JobRun).where(JobRun.job == REFRESH_JOB).order_by(JobRun.id)
        ).first()
        assert run is not None
        assert run.items == 24 and run.error is None
        assert run.finished_at is not None
    # It kept the settings it started with to its end, its next due time included (the
    # interval was 10 min then, 45 after the first reload): read before the test moved it.
    assert due_after_run is not None
    assert 9 * 60 < (due_after_run - run.finished_at).total_seconds() < 11 * 60
