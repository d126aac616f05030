"""Running: `serve` (gunicorn web workers and one scheduler process) and `scheduler`.

Every option of `serve` is checked here, before gunicorn sees it: a bad value is a usage
error (one line, exit 2), never a gunicorn traceback or a master that retries forever.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import stat
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from feedsvc.commands.base import CommandFailed, WholeNumber, current_context
from feedsvc.errors import Invalid
from feedsvc.schemas import parse_whole_number

# An RFC 1123 host name (ASCII letters, digits, hyphens; dot-separated labels).
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(\.{_LABEL})*\.?")
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes, NUL included (unix(7))


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:60] + "…")


class BindAddress(click.ParamType[str, Any]):
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``unix:PATH``, as gunicorn's ``bind`` takes them."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        try:
            return unix_bind(text[5:]) if text.startswith("unix:") else tcp_bind(text)
        except ValueError as exc:
            self.fail(f"{_shown(text)}: {exc}", param, ctx)


def _port(text: str) -> int:
    number = parse_whole_number(text)
    if number is None or not 1 <= number <= 65535:
        raise ValueError(f"port {_shown(text)} is not a whole number from 1 to 65535")
    return number


def tcp_bind(text: str) -> str:
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError("write an IPv6 address as [ADDRESS]:PORT")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{_shown(host)} is not an IPv6 address") from None
        return f"[{host}]:{_port(port)}"
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError("use HOST:PORT, [IPv6]:PORT or unix:/path/to.sock")
    if ":" in host:
        raise ValueError("write an IPv6 address in brackets: [ADDRESS]:PORT")
    if not _HOSTNAME.fullmatch(host):
        raise ValueError(f"{_shown(host)} is not an IPv4 address or host name")
    number = _port(port)
    try:
        socket.getaddrinfo(host, number, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ValueError(f"cannot resolve the host {_shown(host)}") from None
    return f"{host}:{number}"


def unix_bind(text: str) -> str:
    if not text:
        raise ValueError("no socket path after unix:")
    path = Path(text).absolute()
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise ValueError(f"the socket path is longer than {_SUN_PATH_MAX} bytes")
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):  # pragma: no cover - root may write anywhere
        raise ValueError(f"the folder {folder} is not writable")
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISSOCK(mode):
        # gunicorn removes a stale socket, and refuses anything else: say so now.
        raise ValueError(f"{path} exists and is not a socket")
    return f"unix:{path}"


def unavailable(bind: str) -> str | None:
    """Why gunicorn could not listen on ``bind`` now, or None (checked so that a taken port
    is one line at once, not gunicorn's five retries; a socket file whose server is gone is
    fine: gunicorn replaces it)."""
    if bind.startswith("unix:"):
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(bind[5:])
            except OSError:
                return None
        return "a server is listening on this socket already"
    host, _, port = bind.rpartition(":")
    for family, kind, proto, _name, address in socket.getaddrinfo(
        host.strip("[]"), int(port), type=socket.SOCK_STREAM
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
            try:
                probe.bind(address)
            except OSError as exc:
                return exc.strerror or str(exc)
    return None


class AddressList(click.ParamType[tuple[str, ...], Any]):
    """``--forwarded-allow-ips``: comma-separated addresses or networks, or ``*``."""

    name = "addresses"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        for item in items:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item)  # strict: 10.0.0.1/8 (host bits set) is a mistake
            except ValueError:
                self.fail(f"{_shown(item)} is not an IP address or network (or *)", param, ctx)
        if not items:
            self.fail("give at least one address, or * to trust every peer", param, ctx)
        return tuple(items)


def _socket_path(value: str | None) -> Path | None:
    if value is None:
        return None
    try:
        return Path(unix_bind(value)[5:])
    except ValueError as exc:
        hint = "'--control-socket'"
        raise click.BadParameter(f"{_shown(value)}: {exc}", param_hint=hint) from None


@click.command("serve")
@click.option(
    "--bind",
    "binds",
    multiple=True,
    type=BindAddress(),
    help="HOST:PORT, [IPv6]:PORT or unix:/path/to.sock; repeatable. [default: 127.0.0.1:8000]",
)
@click.option("--host", default=None, help="Shorthand: --host H --port P is --bind H:P.")
@click.option("--port", default=None, type=WholeNumber(1, 65535), help="See --host.")
@click.option(
    "--workers", default=2, show_default=True, type=WholeNumber(1, 64), help="Web processes."
)
@click.option(
    "--threads", default=8, show_default=True, type=WholeNumber(1, 256), help="Per web process."
)
@click.option(
    "--timeout", default=30, show_default=True, type=WholeNumber(1, 3600),
    help="Seconds a worker may be silent (a request) before it is restarted.",
)  # fmt: skip
@click.option(
    "--graceful-timeout", default=10, show_default=True, type=WholeNumber(1, 3600),
    help="Seconds workers get to finish requests on stop or reload.",
)  # fmt: skip
@click.option(
    "--keep-alive", default=2, show_default=True, type=WholeNumber(0, 3600),
    help="Seconds an idle connection stays open (behind nginx: above its keepalive_timeout).",
)  # fmt: skip
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1,::1",
    show_default=True,
    type=AddressList(),
    help="Fronts (addresses, networks, or *) whose X-Forwarded-Proto/-For are trusted.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.option(
    "--reuse-port/--no-reuse-port", default=True, show_default=True,
    help="TCP: a listening socket per worker, the kernel spreading connections over them.",
)  # fmt: skip
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--control-socket",
    default=None,
    metavar="PATH",
    help="gunicorn's control socket (for gunicornc); off unless given.",
)
@click.option("--no-scheduler", is_flag=True, help="Start no scheduler process beside.")
def serve_command(
    binds: tuple[str, ...],
    host: str | None,
    port: int | None,
    workers: int,
    threads: int,
    timeout: int,
    graceful_timeout: int,
    keep_alive: int,
    forwarded_allow_ips: tuple[str, ...],
    access_log: bool,
    reuse_port: bool,
    log_format: str,
    control_socket: str | None,
    no_scheduler: bool,
) -> None:
    """Serve with gunicorn, and one scheduler process beside the web workers."""
    from feedsvc.config import load_settings
    from feedsvc.server import ServeOptions, serve

    if binds and (host is not None or port is not None):
        raise click.UsageError("give either --bind or --host/--port, not both")
    if not binds:
        try:
            binds = (tcp_bind(f"{host or '127.0.0.1'}:{port or 8000}"),)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--host'") from None
    if len(set(binds)) != len(binds):
        raise click.BadParameter("the same address is given twice", param_hint="'--bind'")
    socket_path = _socket_path(control_socket)
    for bind in binds:
        problem = unavailable(bind)
        if problem is not None:
            raise CommandFailed(f"cannot listen on {bind}: {problem}")
    settings = load_settings()  # fail here, in one line, not in every worker
    options = ServeOptions(
        binds=binds,
        workers=workers,
        threads=threads,
        timeout=timeout,
        graceful_timeout=graceful_timeout,
        keep_alive=keep_alive,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=access_log,
        reuse_port=reuse_port,
        log_format=log_format,
        control_socket=socket_path,
        scheduler=settings.scheduler.enabled and not no_scheduler,
    )
    serve(settings, options)


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the background jobs in the foreground (SIGTERM stops it between batches; SIGHUP
    reads the configuration again)."""
    from feedsvc.config import load_settings
    from feedsvc.jobs import run_scheduler
    from feedsvc.schedule import JOBS
    from feedsvc.server import start_line

    ctx = current_context()
    if not ctx.settings.scheduler.enabled:
        raise Invalid(
            "the scheduler is disabled (scheduler.enabled = false or FEEDSVC_SCHEDULER=0)"
        )
    logging.getLogger("feedsvc.jobs").info("scheduler: %s", start_line(ctx.settings))
    environ = dict(os.environ)
    if ctx.settings.config_file is not None:  # SIGHUP reads the file we started with
        environ["FEEDSVC_CONFIG"] = str(ctx.settings.config_file)
    run_scheduler(
        ctx,
        list(JOBS.values()),
        tick_seconds=ctx.settings.scheduler.tick_seconds,
        read_settings=lambda: load_settings(environ=environ),
    )
