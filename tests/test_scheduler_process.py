"""The scheduler process beside `feedsvc serve`: it dies with its master, never orphaned.

Real processes: `feedsvc serve` (gunicorn master, workers, scheduler), SIGKILL to the master,
and /proc to see who is left. A scheduler started by hand has no master and keeps running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from feedsvc.lifeline import PARENT_PID_ENV
from tests.processes import (
    alive,
    children,
    cmdline,
    config_env,
    feedsvc,
    free_port,
    kill_all,
    stop,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("backend")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_scheduler_exits_when_the_serve_master_is_killed(db_url: str, tmp_path: Path) -> None:
    env = config_env(tmp_path, db_url)
    port = free_port()
    log = tmp_path / "serve.log"
    master = feedsvc(
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"], env, log
    )
    spawned: list[int] = []
    try:
        wait_for(lambda: _healthy(port), 60, "/healthz to answer 200")
        kids = wait_for(
            lambda: len(children(master.pid)) == 3 and children(master.pid), 30, "3 kids"
        )
        spawned += kids
        schedulers = [pid for pid in kids if "feedsvc.cli scheduler" in cmdline(pid)]
        assert len(schedulers) == 1, [cmdline(pid) for pid in kids]
        scheduler = schedulers[0]
        # Past start-up, its lifeline held and ticking (a loaded machine boots it slowly).
        wait_for(lambda: ", tick 1s" in log.read_text(encoding="utf-8"), 60, "the scheduler")
        assert alive(scheduler)

        master.send_signal(signal.SIGKILL)
        master.wait(timeout=10)
        killed = time.monotonic()
        wait_for(lambda: not alive(scheduler), 10, "the orphaned scheduler to exit")
        took = time.monotonic() - killed
        wait_for(lambda: not any(alive(pid) for pid in kids), 10, "the workers to exit")
        print(f"scheduler exited {took:.2f} s after the master's SIGKILL")
        # Stopped by its lifeline: the kernel's SIGTERM (PDEATHSIG) or the parent watch.
        said = log.read_text(encoding="utf-8", errors="replace")
        assert "scheduler: signal 15" in said or "scheduler: parent" in said, said
        assert "died before we started" not in said
    finally:
        stop(master)
        kill_all(spawned)


_STARTER = """
import os, subprocess, sys
env = dict(os.environ)
if sys.argv[1] == "watched":
    env[{env!r}] = str(os.getpid())
child = subprocess.Popen([sys.executable, "-m", "feedsvc.cli", "scheduler"], env=env)
print(child.pid, flush=True)
import time; time.sleep(3600)
""".replace("{env!r}", repr(PARENT_PID_ENV))


@pytest.mark.parametrize("started", ["watched", "by-hand"])
def test_only_a_scheduler_started_by_serve_follows_its_parent(
    started: str, db_url: str, tmp_path: Path
) -> None:
    env = config_env(tmp_path, db_url)
    parent = subprocess.Popen(
        [sys.executable, "-c", _STARTER, started], env=env, stdout=subprocess.PIPE
    )
    scheduler = 0
    try:
        assert parent.stdout is not None
        scheduler = int(parent.stdout.readline())
        log_seen = wait_for(lambda: alive(scheduler), 10, "the scheduler")
        assert log_seen
        time.sleep(2.0)  # past start-up: the lifeline (if any) is held
        parent.kill()
        parent.wait(timeout=10)
        if started == "watched":
            wait_for(lambda: not alive(scheduler), 10, "the scheduler to follow its parent")
        else:
            time.sleep(3.0)
            assert alive(scheduler), "a scheduler started by hand must keep running"
    finally:
        stop(parent)
        if scheduler:
            kill_all([scheduler])


def test_parent_pid_is_read_strictly() -> None:
    from feedsvc.lifeline import expected_parent

    assert expected_parent({PARENT_PID_ENV: "1234"}) == 1234
    for bad in ("", "1", "0", "-5", "１２３", "12a", " 12"):
        assert expected_parent({PARENT_PID_ENV: bad}) is None, bad
    assert expected_parent({}) is None
    assert os.getpid() > 1


def test_scheduler_outlives_a_database_that_is_away(
    backend: str, tmp_path: Path, db_url: str
) -> None:
    # SQLite: a file never migrated; PostgreSQL: nothing listening on the port.
    if backend == "sqlite":
        url, says = f"sqlite:///{tmp_path / 'empty.db'}", "no schema yet"
    else:
        url, says = "postgresql+psycopg://postgres@127.0.0.1:1/feedsvc", "unreachable"
    log = tmp_path / "scheduler.log"
    scheduler = feedsvc(["scheduler"], config_env(tmp_path, url), log)
    try:
        wait_for(lambda: log.read_text(encoding="utf-8").count("tick skipped") >= 6, 30, "ticks")
        assert scheduler.poll() is None  # still running, trying at every tick
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=30) == 0
    finally:
        stop(scheduler)
    said = log.read_text(encoding="utf-8")
    assert says in said
    assert "Traceback" not in said, said


def test_without_prctl_the_watcher_alone_stops_an_orphan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where PR_SET_PDEATHSIG is missing (not Linux, or a libc without prctl), the watcher
    thread notices the parent is gone, stops the scheduler, and exits hard after the grace.

    In this process: os._exit and logging.shutdown are replaced, or the test run would end.
    """
    import ctypes

    from feedsvc import lifeline

    monkeypatch.setattr(sys, "platform", "darwin")
    assert lifeline._ask_kernel_for_sigterm() is False

    def no_prctl(*_args: object, **_kwargs: object) -> None:
        raise OSError("libc without prctl")

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", no_prctl)
    assert lifeline._ask_kernel_for_sigterm() is False
    # A parent that is not ours is gone already: hold() says so and starts no watcher.
    assert lifeline.hold(os.getppid() + 100_000, lambda: None) is False

    events: list[str] = []
    monkeypatch.setattr(lifeline, "GRACE_SECONDS", 0.01)
    monkeypatch.setattr(lifeline.logging, "shutdown", lambda: events.append("logs flushed"))
    monkeypatch.setattr(lifeline.os, "_exit", lambda code: events.append(f"exit {code}"))
    lifeline._watch(os.getppid() + 100_000, lambda: events.append("stop after the batch"))
    assert events == ["stop after the batch", "logs flushed", "exit 1"]
