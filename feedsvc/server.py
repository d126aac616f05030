"""`feedsvc serve`: a gunicorn master, its web workers, and one scheduler process beside them.

- No ``--preload``: every worker builds its own app (and database engine) after fork.
- Configuration is read in the master: at start, and again on SIGHUP (gunicorn's reload). A
  valid file replaces the settings the next workers are built with; an invalid one is one
  error line and the old settings stay (a worker that failed to boot would halt gunicorn).
  The master forwards the SIGHUP to the scheduler, which re-reads the file itself
  (feedsvc/jobs.py).
- The scheduler is told the master's pid so that it exits when the master dies, even by
  SIGKILL (feedsvc/lifeline.py).
- gunicorn's control socket (gunicorn ≥ 25.1 creates one under $HOME by default) is off
  unless a path is given.
- On TCP addresses each worker listens on a socket of its own (SO_REUSEPORT), and the kernel
  spreads new connections over them evenly. With one shared socket, the worker whose main
  thread happened to be awake (answering its writes, say) accepted every connection a client
  such as wrk or nginx opened at once, and kept them for their keep-alive life: half the
  site's CPU then served all its polls (bench/writes.py (b): reads of idle categories fell to
  0.15× in one run of four). A stopping worker takes the connections the kernel already queued
  on its socket before it closes it (ReusePortWorker): a reload resets at most a connection
  caught in its handshake at that instant (0–1 of ~23,000 polls over five reloads, against 23
  without the hand-back). Unix sockets (the nginx front) stay shared: the kernel does not
  spread those.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import TConn, ThreadWorker

from feedsvc import logs, metrics
from feedsvc.config import ConfigError, Settings, load_settings
from feedsvc.lifeline import PARENT_PID_ENV
from feedsvc.request_body import closing_after_unread_body

log = logging.getLogger("feedsvc.server")


@dataclass(frozen=True)
class ServeOptions:
    """What `feedsvc serve` was asked for, already validated (feedsvc/commands/serve.py)."""

    binds: tuple[str, ...] = ("127.0.0.1:8000",)  # gunicorn's forms: HOST:PORT, unix:PATH
    workers: int = 2
    threads: int = 8
    timeout: int = 30
    graceful_timeout: int = 10
    keep_alive: int = 2
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    access_log: bool = True
    reuse_port: bool = True  # on TCP addresses only (the module's docstring)
    log_format: str = "text"
    control_socket: Path | None = None
    scheduler: bool = True


def gunicorn_settings(options: ServeOptions) -> dict[str, Any]:
    return {
        "bind": list(options.binds),
        "workers": options.workers,
        "threads": options.threads,
        "worker_class": "feedsvc.server.ReusePortWorker",
        # One socket per worker where the kernel balances them (the docstring).
        "reuse_port": options.reuse_port
        and not any(bind.startswith("unix:") for bind in options.binds),
        "timeout": options.timeout,
        "graceful_timeout": options.graceful_timeout,
        "keepalive": options.keep_alive,
        # gunicorn's most (its default is 4094): a long admin search or path reaches the app
        # and gets its page, instead of gunicorn's plain-text 414. nginx's default buffers
        # (large_client_header_buffers 4 8k) hold a request line as long.
        "limit_request_line": 8190,
        # Trusted for X-Forwarded-Proto (wsgi.url_scheme); the access log reads
        # X-Forwarded-For under the same rule. Feed URLs never depend on either:
        # they are built from site.base_url.
        "forwarded_allow_ips": ",".join(options.forwarded_allow_ips),
        "logconfig_dict": logs.logging_config(
            options.log_format,
            access_log=options.access_log,
            forwarded_allow_ips=options.forwarded_allow_ips,
        ),
        "proc_name": "feedsvc",
    }


class ReusePortWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker that hands its share of new connections back when it stops,
    and closes a connection whose request's body was left unread (feedsvc/request_body.py).

    With ``reuse_port`` the kernel queues some of the new connections on this worker's own
    socket; gunicorn would close it at the very end of a graceful stop, resetting whatever
    arrived in between (23 of 18,485 polls over five reloads, measured). Instead, as soon as
    the worker stops accepting, it accepts what is queued and closes the socket: new
    connections then go to the other workers' sockets.
    """

    wsgi: Any  # the application, set by gunicorn's load_wsgi

    def load_wsgi(self) -> None:
        super().load_wsgi()
        # An answer given with the request's body unread closes the connection (the module).
        self.wsgi = closing_after_unread_body(self.wsgi)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive and self.cfg.reuse_port:
            for listener in self.sockets:
                self._take_queued(listener)
                listener.close()

    def _take_queued(self, listener: Any) -> None:
        listener.setblocking(False)
        while True:
            try:
                client, address = listener.accept()
            except OSError:  # nothing queued (EAGAIN), or the socket is gone
                return
            self.nr_conns += 1
            client.setblocking(True)
            self.enqueue_req(TConn(self.cfg, client, address, listener.getsockname()))


class FeedsvcServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: ServeOptions, settings: Settings, metrics: bool = False) -> None:
        self.options = options
        self.settings = settings
        self.metrics = metrics
        self.scheduler: subprocess.Popen[bytes] | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_settings(self.options).items():
            self.cfg.set(key, value)
        if "control_socket" in self.cfg.settings:  # gunicorn >= 25.1
            if self.options.control_socket is None:
                self.cfg.set("control_socket_disable", True)
            else:
                self.cfg.set("control_socket", str(self.options.control_socket))
        self.cfg.set("on_reload", self.on_reload)
        if self.metrics:  # a dead worker's live gauges leave the multiprocess files
            self.cfg.set("child_exit", metrics.gunicorn_child_exit)

    def load(self) -> Any:
        # In the worker, after fork: the settings the master validated last.
        from feedsvc import create_app
        from feedsvc.web import writes

        return create_app(settings=writes.serving(self.settings))

    def on_reload(self, _arbiter: Any) -> None:
        """SIGHUP: read the configuration again for the next workers; tell the scheduler."""
        try:
            settings = load_settings()
        except ConfigError as exc:
            log.error("reload: %s; keeping the previous configuration", exc)
        else:
            if settings.database != self.settings.database:
                # Workers and the scheduler stay on one database: the new one at a restart.
                log.warning("reload: database.url changes at the next restart only")
                settings = settings.model_copy(update={"database": self.settings.database})
            self.settings = settings
            log.info("reload: configuration read again from %s", _config_name(settings))
        child = self.scheduler
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGHUP)


def _config_name(settings: Settings) -> str:
    return str(settings.config_file) if settings.config_file else "(no file: defaults)"


def start_line(settings: Settings) -> str:
    from feedsvc import __version__

    return (
        f"feedsvc {__version__}: config {_config_name(settings)}, "
        f"database {logs.hide_password(settings.database.url)}"
    )


def start_scheduler_process(settings: Settings, log_format: str) -> subprocess.Popen[bytes]:
    """One scheduler process beside the web workers (never inside them).

    It is told our pid so that it exits when we die, even by SIGKILL (no finally runs then):
    otherwise it would run on forever and the next `serve` would start a second one. It
    starts with SIGHUP ignored until it installs its own handler (a reload arriving while it
    boots would otherwise kill it); it reads the configuration after that anyway.
    """
    env = {**os.environ, PARENT_PID_ENV: str(os.getpid()), logs.LOG_FORMAT_ENV: log_format}
    if settings.config_file is not None:
        env["FEEDSVC_CONFIG"] = str(settings.config_file)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # an ignored signal is inherited
    try:
        return subprocess.Popen([sys.executable, "-m", "feedsvc.cli", "scheduler"], env=env)
    finally:
        signal.signal(signal.SIGHUP, previous)


def serve(settings: Settings, options: ServeOptions) -> None:
    # Until gunicorn installs its handler, a SIGHUP (an early `systemctl reload`) would kill us.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logs.configure(options.log_format)
    # Inherited by every process started below it: the write processes (web/writes.py) too.
    os.environ[logs.LOG_FORMAT_ENV] = options.log_format
    log.info("%s", start_line(settings))
    if settings.config_file is not None:
        # Workers and reloads read the same file the master was given, however it was named.
        os.environ["FEEDSVC_CONFIG"] = str(settings.config_file)
    # Before any worker or the scheduler starts: they inherit the folder (feedsvc/metrics.py).
    metrics_dir = metrics.prepare_multiprocess_dir() if settings.metrics.enabled else None
    master = os.getpid()  # a worker's sys.exit() unwinds through the finally below too
    server = FeedsvcServer(options, settings, metrics_dir is not None)
    if options.scheduler:
        server.scheduler = start_scheduler_process(settings, options.log_format)
    try:
        server.run()
    finally:
        if os.getpid() == master:  # never in an exiting worker: its copies are not its own
            _stop_scheduler(server.scheduler)
            if metrics_dir is not None:  # last: the scheduler writes to it until it ends
                metrics.remove_multiprocess_dir(metrics_dir)


def _stop_scheduler(child: subprocess.Popen[bytes] | None) -> None:
    if child is None:
        return
    child.send_signal(signal.SIGTERM)  # stops between batches
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - a run stuck for 30 s
        child.kill()
