"""SIGHUP to the `feedsvc serve` master: workers and the scheduler read the configuration again.

Real processes on the test database (both backends): the config file is edited, the master
gets SIGHUP (as `systemctl reload` sends it), and what readers and the scheduler do changes.
A file that became invalid is one error line per process, and everything runs on as before.
"""

from __future__ import annotations

import signal
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from feedsvc.context import Context
from feedsvc.models import Job, JobRun
from feedsvc.related.refresh import REFRESH_JOB
from tests.feedcheck import parse
from tests.processes import alive, children, cmdline, config_env, feedsvc, free_port, stop, wait_for

pytestmark = pytest.mark.usefixtures("backend")


def feed_title(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/feeds/all.rss", timeout=5) as r:
            parsed, _ = parse(r.read())
    except OSError:
        return ""
    return str(parsed.feed.title)


def succeeded_runs(ctx: Context) -> list[tuple[int, datetime]]:
    with ctx.db.read() as session:
        rows = session.execute(
            select(JobRun.id, JobRun.finished_at)
            .where(JobRun.job == REFRESH_JOB, JobRun.status == "succeeded")
            .order_by(JobRun.id)
        )
        return [(row.id, row.finished_at) for row in rows]


def next_due(ctx: Context) -> datetime | None:
    with ctx.db.read() as session:
        return session.scalar(select(Job.next_due_at).where(Job.name == REFRESH_JOB))


def test_sighup_reloads_workers_and_scheduler(db_url: str, ctx: Context, tmp_path: Path) -> None:
    env = config_env(tmp_path, db_url)
    env["HOME"] = str(tmp_path / "home")
    env.pop("XDG_RUNTIME_DIR", None)
    port = free_port()
    log = tmp_path / "serve.log"
    master = feedsvc(["serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"], env, log)
    said = lambda: log.read_text(encoding="utf-8")  # noqa: E731
    try:
        wait_for(lambda: feed_title(port) == "测试理财站", 60, "the feed")
        wait_for(lambda: succeeded_runs(ctx), 60, "the first related refresh")
        kids = wait_for(lambda: len(children(master.pid)) == 3 and children(master.pid), 30, "kids")
        (scheduler,) = [pid for pid in kids if "feedsvc.cli scheduler" in cmdline(pid)]

        # -- a valid change: the feed's title, the tick and the related interval --
        config_env(
            tmp_path,
            db_url,
            site={"title": "改版后的理财站"},
            scheduler={"tick_seconds": 2, "related_interval_minutes": 60},
            # Not applied before a restart: web and jobs must keep sharing one database.
            database={"url": f"sqlite:///{tmp_path / 'elsewhere.db'}"},
        )
        master.send_signal(signal.SIGHUP)
        wait_for(lambda: feed_title(port) == "改版后的理财站", 60, "the new title in the feed")
        wait_for(lambda: "scheduler: reload: settings read again from" in said(), 30, "the reload")
        assert "feedsvc.server: reload: configuration read again from" in said()
        assert "(tick 2s)" in said()
        assert said().count("database.url changes at the next restart only") == 2
        assert alive(scheduler) and scheduler in children(master.pid)  # the same process
        # The scheduler computes the next due time with the new interval (60 min, was 10), in
        # the database it started with.
        before = len(succeeded_runs(ctx))
        with ctx.db.write() as session:
            session.execute(
                update(Job)
                .where(Job.name == REFRESH_JOB)
                .values(next_due_at=datetime(2020, 1, 1, tzinfo=UTC))
            )
        wait_for(lambda: len(succeeded_runs(ctx)) > before, 60, "a run after the reload")
        finished = succeeded_runs(ctx)[-1][1]
        due = wait_for(lambda: next_due(ctx), 10, "the next due time")
        assert timedelta(minutes=59) < due - finished < timedelta(minutes=61)

        # -- an invalid file: one error line in each process, the old settings stay --
        lines_before = len(said().splitlines())
        (tmp_path / "feedsvc.toml").write_text(
            '[site]\ntitle = "坏配置"\n[feeds]\nmax_length = "很多"\n', encoding="utf-8"
        )
        master.send_signal(signal.SIGHUP)
        wait_for(lambda: said().count("keeping the previous") >= 2, 30, "both error lines")
        new = said().splitlines()[lines_before:]
        errors = [line for line in new if " ERROR " in line]
        assert len(errors) == 2, "\n".join(new)
        assert all("feeds.max_length" in line for line in errors)
        assert any("feedsvc.server: reload: config: " in line for line in errors)
        assert any("feedsvc.jobs: scheduler: reload: config: " in line for line in errors)
        assert "Traceback" not in said()
        wait_for(
            lambda: (
                len([p for p in children(master.pid) if p != scheduler]) == 2
                and said().count("Booting worker") >= 6
            ),
            60,
            "the workers booted again",
        )
        assert feed_title(port) == "改版后的理财站"  # the last good settings
        assert master.poll() is None and alive(scheduler)

        # Reloads rebuild gunicorn's settings: still no control socket under $HOME.
        assert not (tmp_path / "home" / ".gunicorn").exists()
        master.send_signal(signal.SIGTERM)
        assert master.wait(timeout=60) == 0
        wait_for(lambda: not alive(scheduler), 30, "the scheduler to stop")
    finally:
        stop(master)
