"""Log lines: one UTC ISO 8601 format everywhere, one record per line whatever the input, JSON.

The formatters alone first (feedsvc/logs.py), then the real output of `feedsvc serve` (master,
workers, access log, scheduler) captured from a subprocess, in text and in JSON.
"""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gunicorn.glogging import SafeAtoms
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from feedsvc import __version__, create_app, logs
from feedsvc.config import load_settings
from tests.conftest import overrides_for
from tests.processes import config_env, feedsvc, free_port, stop, wait_for

TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) \[\d+\] [\w.]+: "
)
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FORGED = "2026-11-30T04:50:00.123Z ERROR [1] feedsvc.web: forged"


def record(message: str, *args: Any, name: str = "feedsvc.web", **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.WARNING, __file__, 1, message, args or None, None)
    made.__dict__.update(extra)
    return made


# -- the formatters ------------------------------------------------------------------------


def test_timestamp_is_utc_iso_8601_with_milliseconds() -> None:
    assert logs.timestamp(0.5) == "1970-01-01T00:00:00.500Z"
    assert logs.timestamp(1796014200.123456) == "2026-11-30T04:50:00.123Z"


def test_a_message_cannot_forge_a_second_record() -> None:
    hostile = record("GET %s: 503", f"/feeds/\n{FORGED}\r\x1b[31m\u2028x\udcff\x85\x7f")
    text = logs.TextFormatter().format(hostile)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text
    assert "\\x0a" + FORGED + "\\x0d\\x1b[31m\\u2028x\\udcff\\x85\\x7f" in text
    assert TEXT_LINE.match(text)
    line = logs.JsonFormatter().format(hostile)
    assert "\n" not in line and "\u2028" not in line and "\x85" not in line
    parsed = json.loads(line)
    assert parsed["message"] == f"GET /feeds/\n{FORGED}\r\x1b[31m\u2028x\udcff\x85\x7f: 503"
    assert parsed["level"] == "WARNING" and parsed["logger"] == "feedsvc.web"
    assert ISO_UTC.fullmatch(parsed["ts"])
    line.encode("utf-8")  # a lone surrogate never reaches the stream


@given(st.text(), st.text())
def test_any_text_stays_one_record(path: str, agent: str) -> None:
    """Whatever a client sends: one line (as str.splitlines sees lines), and JSON gives it back."""
    for formatter in (logs.TextFormatter(), logs.JsonFormatter()):
        line = formatter.format(record("GET %s", path))
        assert len(line.splitlines()) == 1
        line.encode("utf-8")
        hit = formatter.format(
            access("", path.replace(",", ""), U=path, **{"{user-agent}i": agent})
        )
        assert len(hit.splitlines()) == 1
    assert json.loads(logs.JsonFormatter().format(record("GET %s", path)))["message"] == (
        f"GET {path}"
    )
    fields = json.loads(
        logs.JsonFormatter().format(access("", "", U=path, **{"{user-agent}i": agent}))
    )
    assert (fields["path"], fields["user_agent"]) == (path, agent)


def test_a_traceback_is_indented_so_no_line_looks_like_a_record() -> None:
    try:
        raise ValueError(f"bad\n{FORGED}")
    except ValueError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    lines = logs.TextFormatter().format(failed).splitlines()
    assert TEXT_LINE.match(lines[0])
    assert len(lines) > 2 and all(line.startswith("    ") for line in lines[1:])
    assert any(line == "    " + FORGED for line in lines)
    parsed = json.loads(logs.JsonFormatter().format(failed))
    assert "ValueError: bad" in parsed["exc"] and parsed["message"] == "failed"


def access(peer: str, forwarded: str = "", **atoms: Any) -> logging.LogRecord:
    values: dict[str, Any] = {
        "h": peer,
        "m": "GET",
        "U": "/feeds/\nfake",
        "q": "",
        "{raw_uri}e": "/feeds/%0Afake",
        "H": "HTTP/1.1",
        "s": "404",
        "B": 220,
        "D": 1500,
        "{user-agent}i": "阅读器/1.0",
        **atoms,
    }
    if forwarded:
        values["{x-forwarded-for}i"] = forwarded
    # As gunicorn passes them: wrapped in its SafeAtoms (which writes '"' as '\\"').
    atoms_ = SafeAtoms(values)
    return logging.LogRecord("gunicorn.access", logging.INFO, "", 0, "%(r)s", (atoms_,), None)


def test_access_fields_and_the_trusted_front() -> None:
    trusting = logs.JsonFormatter(forwarded_allow_ips=["127.0.0.1", "10.0.0.0/8"])
    fields = json.loads(trusting.format(access("127.0.0.1", "198.51.100.1, 203.0.113.5")))
    assert fields["client"] == "203.0.113.5"  # the address the front saw, not one it was told
    assert fields["path"] == "/feeds/\nfake" and fields["uri"] == "/feeds/%0Afake"
    assert (fields["status"], fields["bytes"], fields["duration_ms"]) == (404, 220, 1.5)
    assert fields["user_agent"] == "阅读器/1.0" and fields["method"] == "GET"
    # A chain of trusted fronts is skipped; a peer that is not trusted is taken as it is.
    assert (
        json.loads(trusting.format(access("10.1.1.1", "203.0.113.5, 10.2.2.2")))["client"]
        == "203.0.113.5"
    )
    assert json.loads(trusting.format(access("192.0.2.9", "203.0.113.5")))["client"] == "192.0.2.9"
    # What a trusted front passed on is logged as it came, if it is not an address.
    assert json.loads(trusting.format(access("127.0.0.1", "unknown")))["client"] == "unknown"
    # A Unix socket has no peer address: its front is trusted (as gunicorn does).
    assert json.loads(trusting.format(access("", "203.0.113.5")))["client"] == "203.0.113.5"
    everyone = logs.TextFormatter(forwarded_allow_ips=["*"])
    line = everyone.format(access("192.0.2.9", "203.0.113.5"))
    assert '203.0.113.5 "GET /feeds/%0Afake HTTP/1.1" 404 220 1.5ms "-" "阅读器/1.0"' in line


def test_quotes_in_an_access_line() -> None:
    quoting = access("127.0.0.1", **{"{user-agent}i": 'say "hi" \\x0a', "U": '/a"b'})
    fields = json.loads(logs.JsonFormatter().format(quoting))
    assert (fields["user_agent"], fields["path"]) == ('say "hi" \\x0a', '/a"b')
    line = logs.TextFormatter().format(quoting)
    assert line.endswith(' "-" "say \\"hi\\" \\\\x0a"')  # unambiguous between the quotes


def test_database_url_password_is_hidden() -> None:
    shown = logs.hide_password("postgresql+psycopg://feeds:s3cret@db.internal:5432/feeds")
    assert shown == "postgresql+psycopg://feeds:***@db.internal:5432/feeds"


def test_app_logs_escape_a_request_path(tmp_path: Path) -> None:
    """A 503 logs the request path (decoded: %0A is a newline): it stays one record.

    The 503 comes from a database never migrated (an SQLite file: the logging is the same
    on both backends, the fault only has to be real).
    """
    url = f"sqlite:///{tmp_path / 'never-migrated.db'}"
    app = create_app(settings=load_settings(overrides_for(url), environ={}))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.TextFormatter())
    web = logging.getLogger("feedsvc.web")
    web.addHandler(handler)
    try:
        response = app.test_client().get("/feeds/%0A2026-11-30T04:50:00.123Z%20ERROR.rss")
    finally:
        web.removeHandler(handler)
        app.extensions["feedsvc"].db.dispose()
    assert response.status_code == 503
    written = stream.getvalue()
    assert written.count("\n") == 1 and TEXT_LINE.match(written), written
    assert "GET /feeds/\\x0a2026-11-30T04:50:00.123Z ERROR.rss: 503" in written


# -- real output of `feedsvc serve` --------------------------------------------------------


def get(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def with_password(db_url: str) -> str:
    """The PostgreSQL URL with a password (trust auth ignores it) to see it hidden."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        return db_url
    return url.set(password="s3cret-pw").render_as_string(hide_password=False)


class Served:
    def __init__(self, db_url: str, tmp_path: Path, *args: str, scheduler: bool = True) -> None:
        self.env = config_env(tmp_path, with_password(db_url))
        self.env["HOME"] = str(tmp_path / "home")
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        extra = [] if scheduler else ["--no-scheduler"]
        command = ["serve", "--bind", f"127.0.0.1:{self.port}", "--workers", "1", *args, *extra]
        self.process = feedsvc(command, self.env, self.log)
        wait_for(lambda: get(self.url("/healthz")) == 200, 60, "/healthz to answer 200")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == 0
        return self.log.read_text(encoding="utf-8")


@pytest.fixture
def serving(db_url: str, tmp_path: Path) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:
        stop(served.process)


def wait_for_line(served: Served, needle: str, timeout: float = 30) -> None:
    wait_for(lambda: needle in served.log.read_text(encoding="utf-8"), timeout, repr(needle))


@pytest.mark.usefixtures("backend")
def test_serve_text_logs(db_url: str, tmp_path: Path, serving: list[Served]) -> None:
    served = Served(db_url, tmp_path)
    serving.append(served)
    assert get(served.url("/feeds/%0A" + FORGED.replace(" ", "%20"))) == 404
    wait_for_line(served, "sources-poll: run")
    wait_for_line(served, "/feeds/%0A")
    time.sleep(1.5)  # a few more scheduler ticks: none of them may say a word
    output = served.stop()
    lines = output.splitlines()
    bad = [line for line in lines if not TEXT_LINE.match(line)]
    assert not bad, output
    # Start-up: version, config path, database with the password hidden.
    start = next(line for line in lines if "feedsvc.server: feedsvc " in line)
    assert f"feedsvc {__version__}: config {tmp_path / 'feedsvc.toml'}, database " in start
    assert "s3cret" not in output
    if "postgresql" in db_url:
        assert ":***@" in start
    # gunicorn's own lines, the access log, the app and the scheduler share the format.
    assert any(" gunicorn.error: Booting worker with pid: " in line for line in lines)
    assert any(" feedsvc.jobs: scheduler: feedsvc " in line for line in lines)
    (hit,) = [line for line in lines if " gunicorn.access: " in line and "/feeds/" in line]
    assert '127.0.0.1 "GET /feeds/%0A' in hit and '" 404 ' in hit
    assert not any(line.startswith(FORGED) for line in lines)
    # APScheduler's per-tick lines are gone; the scheduler says what it ran, once per run.
    assert "Running job" not in output and "executed successfully" not in output
    assert re.search(
        r"feedsvc\.jobs: sources-poll: run \d+ \(schedule\) succeeded, 0 items, ", output
    )
    assert not (tmp_path / "home" / ".gunicorn").exists()  # no control socket under $HOME


@pytest.mark.usefixtures("backend")
def test_serve_json_logs(db_url: str, tmp_path: Path, serving: list[Served]) -> None:
    served = Served(db_url, tmp_path, "--log-format", "json", "--forwarded-allow-ips", "10.0.0.0/8")
    serving.append(served)
    headers = {"X-Forwarded-For": "203.0.113.5"}
    assert get(served.url("/feeds/%0Afake?limit=2"), headers) == 404
    wait_for_line(served, "/feeds/%0Afake")
    wait_for_line(served, "sources-poll: run")
    entries = [json.loads(line) for line in served.stop().splitlines()]
    for entry in entries:
        assert ISO_UTC.fullmatch(entry["ts"]) and entry["level"] in ("INFO", "WARNING")
        assert {"ts", "level", "logger", "pid", "message"} <= entry.keys()
    (hit,) = [e for e in entries if e["logger"] == "gunicorn.access" and "fake" in e["path"]]
    assert hit["path"] == "/feeds/\nfake" and hit["query"] == "limit=2"
    assert hit["status"] == 404 and hit["method"] == "GET" and hit["bytes"] > 0
    assert hit["duration_ms"] >= 0
    # 127.0.0.1 is not among the trusted fronts here: its X-Forwarded-For is not believed.
    assert hit["client"] == "127.0.0.1"
    loggers = {entry["logger"] for entry in entries}
    assert {"feedsvc.server", "gunicorn.error", "feedsvc.jobs"} <= loggers
    assert not any("Running job" in entry["message"] for entry in entries)


@pytest.mark.usefixtures("backend")
def test_no_access_log(db_url: str, tmp_path: Path, serving: list[Served]) -> None:
    served = Served(db_url, tmp_path, "--no-access-log", scheduler=False)
    serving.append(served)
    assert get(served.url("/feeds/all.rss")) == 200
    assert get(served.url("/nothing-here")) == 404
    output = served.stop()
    assert "gunicorn.access" not in output and "/nothing-here" not in output
    assert "gunicorn.error: Booting worker" in output
    assert "feedsvc.jobs" not in output  # --no-scheduler: no scheduler started
