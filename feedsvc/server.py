"""`feedsvc serve`: gunicorn workers, each creating its own app (engines after fork)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from feedsvc import metrics
from feedsvc.config import Settings
from feedsvc.lifeline import PARENT_PID_ENV


class FeedsvcServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # No --preload: every worker opens its own database engine after fork.
        from feedsvc import create_app

        return create_app()


def start_scheduler_process() -> subprocess.Popen[bytes]:
    """One scheduler process beside the web workers (never inside them).

    It is told our pid so that it exits when we die, even by SIGKILL (no finally runs then):
    otherwise it would run on forever and the next `serve` would start a second one.
    """
    env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
    return subprocess.Popen([sys.executable, "-m", "feedsvc.cli", "scheduler"], env=env)


def serve(settings: Settings, *, host: str, port: int, workers: int, scheduler: bool) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": 4,
        "worker_class": "gthread",
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "feedsvc",
    }
    # Before any worker or the scheduler starts: they inherit the folder (feedsvc/metrics.py).
    metrics_dir = metrics.prepare_multiprocess_dir() if settings.metrics.enabled else None
    master = os.getpid()  # a worker's sys.exit() unwinds through the finally below too
    if metrics_dir is not None:
        options["child_exit"] = metrics.gunicorn_child_exit
    child = start_scheduler_process() if scheduler else None
    try:
        FeedsvcServer(options).run()
    finally:
        if child is not None:
            child.send_signal(signal.SIGTERM)  # stops between batches
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a run stuck for 30 s
                child.kill()
        if metrics_dir is not None and os.getpid() == master:  # last: the scheduler writes
            metrics.remove_multiprocess_dir(metrics_dir)  # to it until it ends
