"""The wheel, installed as a user would: built from the source, installed into a fresh venv
outside the checkout, then `new-site`, `init` and `serve` from another folder, a feed and a
page fetched over HTTP, and the server stopped.

Cost: the wheel is built from a copy of the source (nothing is written into the checkout);
the venv is created without pip and filled by this venv's pip (`pip --python`), whose cache and
configured indexes serve the dependencies, so nothing is downloaded twice.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from importlib import metadata
from pathlib import Path

import feedparser
import pytest

from tests.processes import alive, children, free_port, kill_all, wait_for

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=400, check=False
    )
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
        return response.status, response.headers.get("Content-Type", ""), response.read()


@pytest.mark.timeout(900)
def test_wheel_installs_and_serves_a_new_site(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*cache",
            ".hypothesis",
            ".coverage*",
            "*.db",
            "*.db-*",
            "tests",
            "bench",
        ),
    )
    # Nothing of the checkout may leak in: no PYTHONPATH, no FEEDSVC_*, no coverage hooks.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FEEDSVC_", "COVERAGE_", "PYTHON", "VIRTUAL_ENV"))
    }
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        tmp_path,
        env,
    )
    (wheel,) = (tmp_path / "dist").glob("feedsvc-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python, feedsvc = venv / "bin" / "python", str(venv / "bin" / "feedsvc")
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)],
        tmp_path,
        env,
    )

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run([str(python), "-c", "import feedsvc; print(feedsvc.__file__)"], work, env)
    assert where.stdout.strip().startswith(str(venv))
    version = run([feedsvc, "--version"], work, env)
    assert version.stdout == f"feedsvc {metadata.version('feedsvc')}\n"  # pyproject's version

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    run([feedsvc, "new-site", "site", "--samples", "--base-url", base], work, env)
    site = work / "site"
    init = run([feedsvc, "init"], site, env)
    assert f"config: {site}/feedsvc.toml" in init.stdout
    assert f"database: sqlite:///{site}/feedsvc.db" in init.stdout
    assert "sample posts: 16 loaded" in init.stdout
    assert not any(venv.rglob("feedsvc.db"))  # never inside the installed package

    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [feedsvc, "serve", "--port", str(port), "--workers", "1"],
        cwd=site,
        env=env,
        stdout=log,
        stderr=log,
    )
    started: list[int] = []
    try:

        def up() -> bool:
            started[:] = children(server.pid)
            try:
                return get(f"{base}/healthz")[0] == 200
            except OSError:
                return False

        wait_for(up, 120, "feedsvc serve to answer /healthz", step=0.5)
        status, content_type, body = get(f"{base}/feeds/all.atom")
        assert status == 200 and content_type.startswith("application/atom+xml")
        parsed = feedparser.parse(body)
        assert not parsed.bozo and len(parsed.entries) == 16
        assert parsed.feed.title and all(e.link.startswith(base) for e in parsed.entries)
        status, content_type, page = get(parsed.entries[0].link)
        assert status == 200 and content_type.startswith("text/html")
        assert parsed.entries[0].title in page.decode("utf-8")
        # The package carries its static files: the stylesheet and the sample posts' image.
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.decode("utf-8"))
        assert stylesheet is not None
        for url, media in (
            (stylesheet[1], "text/css"),
            (f"{base}/static/img/chart.png", "image/png"),
        ):
            status, content_type, _ = get(url)
            assert status == 200 and content_type.startswith(media), url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        finally:
            stop_all = [pid for pid in started if alive(pid)]
            kill_all(stop_all + ([server.pid] if server.poll() is None else []))
            log.close()
    assert server.returncode == 0, (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
    wait_for(lambda: not any(alive(pid) for pid in started), 30, "serve's children to exit")
