"""`feedsvc serve` options: refused in one line before gunicorn starts, or served as asked.

Bad values go through the real CLI (click's runner) with serve() replaced by a trap; the good
ones start real `feedsvc serve` processes: a Unix socket, IPv6 loopback, X-Forwarded-* from a
trusted front, and no gunicorn control socket under $HOME.
"""

from __future__ import annotations

import http.client
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from feedsvc.cli import cli
from feedsvc.server import ServeOptions, gunicorn_settings
from tests.feedcheck import parse
from tests.processes import config_env, feedsvc, free_port, stop, wait_for


@pytest.fixture
def trapped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[ServeOptions]:
    """serve() records its options instead of starting gunicorn."""
    calls: list[ServeOptions] = []
    monkeypatch.setattr("feedsvc.server.serve", lambda _settings, options: calls.append(options))
    config = tmp_path / "feedsvc.toml"
    config.write_text("[scheduler]\nenabled = false\n", encoding="utf-8")
    monkeypatch.setenv("FEEDSVC_CONFIG", str(config))
    return calls


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["serve", *args])


def bad_cases(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "plain-file").write_text("x", encoding="utf-8")
    return [
        (["--bind", "nonsense"], "use HOST:PORT, [IPv6]:PORT or unix:/path/to.sock"),
        (["--bind", "127.0.0.1"], "use HOST:PORT"),
        (["--bind", "127.0.0.1:0"], "is not a whole number from 1 to 65535"),
        (["--bind", "127.0.0.1:99999999999999999999999"], "from 1 to 65535"),
        (["--bind", "127.0.0.1:٨٠٠٠"], "from 1 to 65535"),
        (["--bind", "127.0.0.1:+80"], "from 1 to 65535"),
        (["--bind", "::1:8000"], "write an IPv6 address in brackets"),
        (["--bind", "[::g]:8000"], "is not an IPv6 address"),
        (["--bind", "[::1]"], "write an IPv6 address as [ADDRESS]:PORT"),
        (["--bind", "主机.example:80"], "is not an IPv4 address or host name"),
        (["--bind", "bad_host:80"], "is not an IPv4 address or host name"),
        (["--bind", "no-such-host.invalid:80"], "cannot resolve the host"),
        (["--bind", "unix:"], "no socket path after unix:"),
        (["--bind", f"unix:{tmp}/missing/feedsvc.sock"], f"the folder {tmp}/missing does not"),
        (["--bind", f"unix:{tmp}/plain-file"], "exists and is not a socket"),
        (["--bind", "unix:/tmp/" + "长" * 40 + ".sock"], "longer than 107 bytes"),
        (["--bind", "127.0.0.1:8000", "--bind", "127.0.0.1:8000"], "given twice"),
        (["--bind", "127.0.0.1:8000", "--port", "8001"], "either --bind or --host/--port"),
        (["--host", "::1"], "write an IPv6 address in brackets"),
        (["--port", "65536"], "from 1 to 65535"),
        (["--workers", "0"], "from 1 to 64"),
        (["--workers", "٣"], "from 1 to 64"),
        (["--threads", "99999999999999999999999"], "from 1 to 256"),
        (["--timeout", "١٠"], "from 1 to 3600"),
        (["--graceful-timeout", "3601"], "from 1 to 3600"),
        (["--keep-alive", "-1"], "from 0 to 3600"),
        (["--forwarded-allow-ips", "10.0.0.1/8"], "is not an IP address or network"),
        (["--forwarded-allow-ips", "nginx"], "is not an IP address or network"),
        (["--forwarded-allow-ips", ","], "give at least one address"),
        (["--log-format", "xml"], "'xml' is not one of 'text', 'json'"),
        (["--control-socket", f"{tmp}/missing/ctl.sock"], "does not exist"),
    ]


def test_bad_options_are_usage_errors(trapped: list[ServeOptions], tmp_path: Path) -> None:
    for args, needle in bad_cases(tmp_path):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        error = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(error) == 1 and needle in error[0], (args, result.stderr)
        assert result.stdout == ""
    assert trapped == []  # never started
    assert not list(tmp_path.glob("**/*.sock"))


def test_nul_in_an_argument_is_one_line(trapped: list[ServeOptions]) -> None:
    # The CLI-wide rule (feedsvc/cli.py): refused before any option is read.
    result = invoke("--bind", "unix:/tmp/a\x00b.sock")
    assert result.exit_code == 1
    assert result.stderr == "feedsvc: error: argument 3 contains a NUL character\n"
    assert trapped == []


def test_good_options_reach_gunicorn(trapped: list[ServeOptions], tmp_path: Path) -> None:
    sock = tmp_path / "feedsvc.sock"
    result = invoke(
        "--bind", f"unix:{sock}", "--bind", "[::1]:8443", "--bind", "localhost:8001",
        "--workers", "3", "--threads", "8", "--timeout", "60", "--graceful-timeout", "20",
        "--keep-alive", "75", "--forwarded-allow-ips", "10.0.0.0/8, 127.0.0.1",
        "--no-access-log", "--log-format", "json", "--control-socket", str(tmp_path / "ctl"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (options,) = trapped
    assert options.binds == (f"unix:{sock}", "[::1]:8443", "localhost:8001")
    assert options.scheduler is False  # scheduler.enabled = false in the config
    settings = gunicorn_settings(options)
    assert settings["bind"] == [f"unix:{sock}", "[::1]:8443", "localhost:8001"]
    assert (settings["workers"], settings["threads"], settings["timeout"]) == (3, 8, 60)
    assert (settings["graceful_timeout"], settings["keepalive"]) == (20, 75)
    assert settings["forwarded_allow_ips"] == "10.0.0.0/8,127.0.0.1"
    assert settings["logconfig_dict"]["loggers"]["gunicorn.access"]["handlers"] == []
    assert options.control_socket == tmp_path / "ctl"
    # A Unix socket among the addresses: one shared socket (the kernel spreads only TCP).
    assert settings["worker_class"] == "feedsvc.server.ReusePortWorker"
    assert settings["reuse_port"] is False
    # The shorthand still works, and nothing given means 127.0.0.1:8000.
    assert invoke("--host", "127.0.0.1", "--port", "8002").exit_code == 0
    assert invoke().exit_code == 0
    assert [o.binds for o in trapped[1:]] == [("127.0.0.1:8002",), ("127.0.0.1:8000",)]
    assert gunicorn_settings(trapped[1])["reuse_port"] is True  # TCP only: a socket per worker
    assert invoke("--port", "8003", "--no-reuse-port").exit_code == 0
    assert gunicorn_settings(trapped[3])["reuse_port"] is False


def test_an_address_in_use_is_one_line_at_once(trapped: list[ServeOptions], tmp_path: Path) -> None:
    with socket.socket() as taken, socket.socket(socket.AF_UNIX) as live:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("--bind", f"127.0.0.1:{port}")
        assert result.exit_code == 1
        assert result.stderr == (
            f"feedsvc: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
        )
        # A socket file with a server behind it is not taken over; a stale one is replaced.
        live_path, stale_path = tmp_path / "live.sock", tmp_path / "stale.sock"
        live.bind(str(live_path))
        live.listen()
        result = invoke("--bind", f"unix:{live_path}")
        assert result.exit_code == 1 and "a server is listening on this socket already" in (
            result.stderr
        )
        with socket.socket(socket.AF_UNIX) as gone:
            gone.bind(str(stale_path))
        assert invoke("--bind", f"unix:{stale_path}").exit_code == 0
    assert [options.binds for options in trapped] == [(f"unix:{stale_path}",)]


# -- real processes ------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(self.path))


def fetch(connection: http.client.HTTPConnection, path: str, **headers: str) -> tuple[int, bytes]:
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.usefixtures("backend")
def test_serves_on_a_unix_socket_and_ipv6(db_url: str, tmp_path: Path) -> None:
    if not ipv6_loopback():  # pragma: no cover - depends on the machine
        pytest.skip("no IPv6 loopback here")
    env = config_env(tmp_path, db_url)
    env["HOME"] = str(tmp_path / "home")
    env.pop("XDG_RUNTIME_DIR", None)
    sock = tmp_path / "run" / "feedsvc.sock"
    sock.parent.mkdir()
    port = free_port()
    log = tmp_path / "serve.log"
    args = ["serve", "--bind", f"unix:{sock}", "--bind", f"[::1]:{port}", "--workers", "1"]
    control = tmp_path / "run" / "gunicorn.ctl"
    args += ["--control-socket", str(control)]
    master = feedsvc([*args, "--no-scheduler", "--log-format", "json"], env, log)
    try:
        wait_for(lambda: fetch(UnixHTTPConnection(sock), "/healthz")[0] == 200, 60, "socket")
        status, body = fetch(http.client.HTTPConnection("::1", port, timeout=10), "/healthz")
        assert status == 200, body
        # X-Forwarded-Proto from the front is trusted on the socket, yet feed URLs come from
        # site.base_url only: a reader gets the same links however the front was reached.
        status, body = fetch(
            UnixHTTPConnection(sock), "/feeds/all.rss", **{"X-Forwarded-Proto": "https"}
        )
        assert status == 200
        parsed, _ = parse(body)
        assert parsed.feed.link == "http://feeds.example.test/"
        # The control socket is where it was asked to be, and nowhere under $HOME.
        wait_for(control.is_socket, 30, "the control socket")
        assert not (tmp_path / "home" / ".gunicorn").exists()
        master.send_signal(signal.SIGTERM)
        assert master.wait(timeout=60) == 0
        assert not sock.exists()  # gunicorn removes its socket on a clean stop
    finally:
        stop(master)


def tcp_healthy(port: int) -> bool:
    return fetch(http.client.HTTPConnection("127.0.0.1", port, timeout=10), "/healthz")[0] == 200


@pytest.mark.usefixtures("backend")
def test_forwarded_for_is_believed_only_from_a_trusted_front(db_url: str, tmp_path: Path) -> None:
    env = config_env(tmp_path, db_url)
    runs = []
    for trusted in ("127.0.0.1", "10.0.0.0/8"):
        port = free_port()
        log = tmp_path / f"serve-{trusted.replace('/', '_')}.log"
        master = feedsvc(
            ["serve", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--no-scheduler",
             "--forwarded-allow-ips", trusted],
            env, log,
        )  # fmt: skip
        try:
            wait_for(lambda port=port: tcp_healthy(port), 60, "healthz")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            status, _ = fetch(connection, "/feeds/all.atom", **{"X-Forwarded-For": "203.0.113.7"})
            assert status == 200
            master.send_signal(signal.SIGTERM)
            assert master.wait(timeout=60) == 0
        finally:
            stop(master)
        (line,) = [
            line
            for line in log.read_text(encoding="utf-8").splitlines()
            if "gunicorn.access" in line and "/feeds/all.atom" in line
        ]
        runs.append(line)
    assert " gunicorn.access: 203.0.113.7 " in runs[0]  # the front on 127.0.0.1 is trusted
    assert " gunicorn.access: 127.0.0.1 " in runs[1]  # a client cannot claim an address
