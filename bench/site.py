"""What the HTTP benchmarks share: a bench site, real server processes, and wrk.

- ``build_site``: a database with one 20-post Chinese category feed (SQLite, or PostgreSQL);
- ``start_feedsvc``: the real `feedsvc serve` (gunicorn, 2 workers × 8 gthreads) on it;
- ``start_constant``: a Flask app answering constant bytes, started by the same gunicorn
  configuration (``GUNICORN_FLAGS`` mirrors feedsvc/server.py), the baseline of bench/feeds.py;
- ``wrk``: requests per second of one URL with given headers (wrk -t2 -c16).

Every process started here is stopped by pid by the caller's ``finally`` (``stop``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ITEMS = 20
CATEGORY = "jijin"
PARAGRAPH = (
    "定投的核心不是择时，而是用纪律对抗情绪。每月固定日期买入固定金额，"
    "市场下跌时同样的钱买到更多份额，上涨时买到更少，长期下来平均成本被拉平。"
    "需要注意的是，定投并不能保证盈利，选择长期向上的宽基指数更为重要。"
)
# What feedsvc/server.py gives gunicorn for `feedsvc serve --workers 2`.
GUNICORN_FLAGS = [
    "--workers", "2", "--threads", "8", "--worker-class", "gthread", "--reuse-port",
    "--timeout", "30",
    "--access-logfile", "-", "--error-logfile", "-",
]  # fmt: skip
WRK_THREADS, WRK_CONNECTIONS = 2, 16


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post_body() -> str:
    return "\n\n".join(f"## 第{n}节\n\n{PARAGRAPH}" for n in range(1, 8))


def write_config(folder: Path, db_url: str) -> Path:
    path = folder / "feedsvc.toml"
    path.write_text(
        '[site]\nbase_url = "http://127.0.0.1:8000"\ntitle = "基金笔记"\n'
        f'[database]\nurl = "{db_url}"\n'
        "[scheduler]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def build_site(folder: Path, db_url: str | None = None) -> tuple[Path, str]:
    """A migrated database holding one category of ITEMS posts; returns (config, db url)."""
    from feedsvc import create_app, migrate
    from feedsvc.config import load_settings
    from feedsvc.schemas import CategoryCreate, PostCreate
    from feedsvc.services.categories import create_category
    from feedsvc.services.posts import create_post

    url = db_url or f"sqlite:///{folder}/bench.db"
    if db_url is not None and db_url.startswith("postgresql"):
        _empty_postgres(db_url)
    settings = load_settings(
        {"database": {"url": url}, "scheduler": {"enabled": False}}, environ={}
    )
    app = create_app(settings=settings)
    ctx = app.extensions["feedsvc"]
    migrate.upgrade(ctx.db)
    create_category(ctx, CategoryCreate(slug=CATEGORY, name="基金"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(ITEMS):
        create_post(
            ctx,
            PostCreate(
                title=f"定投笔记第{n}篇",
                category=CATEGORY,
                content=post_body(),
                tags=["定投", "指数基金"],
                published_at=start + timedelta(days=n),
            ),
        )
    ctx.db.dispose()
    return write_config(folder, url), url


def _empty_postgres(url: str) -> None:
    from sqlalchemy import text

    from feedsvc.db import Database

    db = Database(url)
    with db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    db.dispose()


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env["FEEDSVC_CONFIG"] = str(config)
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_feedsvc(
    config: Path,
    port: int,
    log: Path,
    *,
    workers: int = 2,
    threads: int | None = None,
    shared_socket: bool = False,
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "feedsvc.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--no-scheduler"]
    if threads is not None:  # else serve's default
        command += ["--threads", str(threads)]
    if shared_socket:  # one listening socket for all workers, as before --reuse-port
        command += ["--no-reuse-port"]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env=_env(config), cwd=ROOT, stdout=output, stderr=output
        )
    wait_http(f"http://127.0.0.1:{port}/healthz", process)
    return process


def start_constant(payload: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """gunicorn, configured as `feedsvc serve`, serving bench.constant's app over ``payload``."""
    app = f"bench.constant:create_app({str(payload)!r})"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        *GUNICORN_FLAGS,
        "--bind",
        f"127.0.0.1:{port}",
        app,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
    wait_http(f"http://127.0.0.1:{port}/constant", process)
    return process


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def wrk(url: str, headers: dict[str, str], seconds: float) -> float:
    """Requests per second; any error or non-2xx/3xx answer fails the benchmark."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    # --timeout 10s: on a shared machine a request can stall a second or two; that is load
    # from elsewhere, not an error of the server measured.
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if _NON_2XX.search(out) or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors on {url}:\n{out}")
    match = _RPS.search(out)
    if match is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:  # 304 lands here
        return error.code, dict(error.headers.items()), error.read()
