"""deploy/feedsvc.service: a unit systemd accepts, whose command line `feedsvc serve` accepts."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.cli import cli
from feedsvc.server import ServeOptions

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "feedsvc.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    text = UNIT.read_text(encoding="utf-8").replace("\\\n", " ")  # systemd's line continuation
    parser.read_string(text)
    return parser


def test_the_unit_says_what_the_readme_promises() -> None:
    service = unit()["Service"]
    assert service["User"] == "feedsvc" and service["WorkingDirectory"] == "/srv/feedsvc"
    assert service["Environment"] == "FEEDSVC_CONFIG=/srv/feedsvc/feedsvc.toml"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["RuntimeDirectory"] == "feedsvc"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/srv/feedsvc"
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_its_command_line_is_accepted_by_serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[ServeOptions] = []
    monkeypatch.setattr("feedsvc.server.serve", lambda _settings, options: calls.append(options))
    config = tmp_path / "feedsvc.toml"
    config.write_text("[scheduler]\nenabled = true\n", encoding="utf-8")
    monkeypatch.setenv("FEEDSVC_CONFIG", str(config))
    command = shlex.split(unit()["Service"]["ExecStart"])
    assert command[0] == "/opt/feedsvc/venv/bin/feedsvc" and command[1] == "serve"
    # /run/feedsvc is systemd's RuntimeDirectory; here a folder of the test stands for it.
    args = [arg.replace("/run/feedsvc/", f"{tmp_path}/") for arg in command[1:]]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (options,) = calls
    assert options.binds == (f"unix:{tmp_path}/feedsvc.sock",)
    assert options.scheduler and options.control_socket is None


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's feedsvc.
    feedsvc = Path(shutil.which("feedsvc") or ROOT / ".venv" / "bin" / "feedsvc")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/feedsvc/venv/bin/feedsvc", str(feedsvc))
    copy = tmp_path / "feedsvc.service"
    copy.write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and "feedsvc.service" not in result.stderr, result.stderr
