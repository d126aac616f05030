"""Real feedsvc processes for tests: a config file, start, find children, wait, clean up.

Every process a test starts is killed in its ``finally`` by pid (never by name).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import BASE_URL

ROOT = Path(__file__).resolve().parent.parent


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return repr(value)


def config_env(tmp_path: Path, db_url: str, **sections: dict[str, Any]) -> dict[str, str]:
    """An environment whose only feedsvc settings come from a fresh config file."""
    config: dict[str, dict[str, Any]] = {
        "site": {"base_url": BASE_URL, "title": "测试理财站", "author": "测试编辑部"},
        "database": {"url": db_url},
        "scheduler": {"enabled": True, "tick_seconds": 1, "lease_seconds": 10},
        "sources": {"allow_hosts": ["127.0.0.1"], "read_timeout": 30.0},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path = tmp_path / "feedsvc.toml"
    lines = []
    for name, values in config.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("FEEDSVC_")}
    env["FEEDSVC_CONFIG"] = str(path)
    env["PYTHONPATH"] = str(ROOT)
    return env


def feedsvc(
    args: list[str], env: dict[str, str], log: Path, *, code: str | None = None
) -> subprocess.Popen[bytes]:
    """`python -m feedsvc.cli ARGS`, or ``code`` (which must call the CLI) with those args."""
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "feedsvc.cli"]
    if not code:
        command += args
    with log.open("ab") as output:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((line for line in status.splitlines() if line.startswith("State:")), "")
    return "Z" not in state.split()[1:2]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
