"""The nginx front (deploy/nginx.conf) against nginx serving the same bytes as static files.

Starts Debian's nginx twice, side by side in one run: once with deploy/nginx.conf rendered in
front of a real `feedsvc serve` (2 workers × 8 threads, SQLite), once serving the category
feed's bytes as static files (identity, a .gz beside it with gzip_static, nginx's own ETag).
wrk -t2 -c16 loads each in alternating rounds: warm 200, warm 200 gzip and 304
(If-None-Match). Goal: the front at >= 0.8x of static nginx. The static side is given the
same worker count, buffered access log, keep-alive settings and nginx version; it keeps
sendfile with tcp_nopush (its best for files: headers and body in one segment). Then the
freshness bound: the time from a write through the API returning to the front serving it
(several samples).

Run: `make bench` (when nginx is installed) or `.venv/bin/python bench/front.py`.
``render_config`` and ``start_nginx`` are also what tests/test_front.py uses.
"""

from __future__ import annotations

import argparse
import getpass
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.site import CATEGORY, ROOT, build_site, fetch, free_port, start_feedsvc, stop, wrk

TEMPLATE = ROOT / "deploy" / "nginx.conf"
# The values deploy/nginx.conf ships with, on its lines marked CHANGE.
_LISTEN = "listen 127.0.0.1:8080;"
_UPSTREAM = "server 127.0.0.1:8000;"
_CACHE_DIR = "/var/cache/nginx/feedsvc"
_LOGS = ("/var/log/nginx/feedsvc-error.log", "/var/log/nginx/feedsvc-access.log")
_PID = "/run/nginx-feedsvc.pid"
_USER = "user www-data;"


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


def render_config(folder: Path, *, listen_port: int, upstream: str) -> Path:
    """deploy/nginx.conf with this port, upstream ("127.0.0.1:PORT" or "unix:PATH") and
    everything nginx writes under ``folder``. Each shipped value must be found exactly once."""
    text = TEMPLATE.read_text(encoding="utf-8")
    replacements = {
        _LISTEN: f"listen 127.0.0.1:{listen_port};",
        _UPSTREAM: f"server {upstream};",
        _CACHE_DIR: str(folder / "cache"),
        _LOGS[0]: str(folder / "error.log"),
        _LOGS[1]: str(folder / "access.log"),
        _PID: str(folder / "nginx.pid"),
        # Workers as ourselves: they read and write our temporary folders.
        _USER: f"user {getpass.getuser()};",
    }
    for old, new in replacements.items():
        expected = 6 if old == _CACHE_DIR else 1
        if text.count(old) != expected:
            raise SystemExit(f"{TEMPLATE}: expected {old!r} {expected} time(s): out of date?")
        text = text.replace(old, new)
    (folder / "cache").mkdir(parents=True, exist_ok=True)
    path = folder / "nginx.conf"
    path.write_text(text, encoding="utf-8")
    return path


def start_nginx(config: Path, port: int) -> subprocess.Popen[bytes]:
    """nginx in the foreground (so that its master's pid is ours to stop), ready on ``port``."""
    binary = nginx_binary()
    if binary is None:
        raise SystemExit("nginx is not installed (apt-get install nginx-light)")
    folder = config.parent
    command = [binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(config)]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"nginx -t failed:\n{check.stderr}")
    with (folder / "nginx.out").open("ab") as output:
        process = subprocess.Popen([*command, "-g", "daemon off;"], stdout=output, stderr=output)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"nginx exited: {(folder / 'error.log').read_text()}")
        try:
            fetch(f"http://127.0.0.1:{port}/")
            return process
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nginx did not start listening")


def static_config(folder: Path, port: int, root: Path) -> Path:
    """nginx serving ``root`` as static files, as tuned as the front (same workers, logs)."""
    for name in ("client_body", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    path = folder / "nginx.conf"
    path.write_text(
        f"""user {getpass.getuser()};
worker_processes auto;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/rss+xml;
    access_log {folder}/access.log combined buffer=64k flush=1s;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    server_tokens off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy_temp;
    fastcgi_temp_path {folder}/fastcgi_temp;
    uwsgi_temp_path {folder}/uwsgi_temp;
    scgi_temp_path {folder}/scgi_temp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        gzip_static on;
        gzip_vary on;
    }}
}}
""",
        encoding="utf-8",
    )
    return path


def api_post(base: str, token: str, title: str) -> None:
    body = json.dumps({"title": title, "category": CATEGORY, "content": "定投要有纪律。"})
    request = urllib.request.Request(
        f"{base}/api/v1/posts",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 201, response.status


def freshness(front: str, token: str, samples: int) -> list[float]:
    """Seconds from a write through the API returning to the front serving it."""
    feed = f"{front}/feeds/{CATEGORY}.rss"
    seen = []
    for n in range(samples):
        fetch(feed)  # the entry is cached and fresh when the write happens
        title = f"新鲜度测量第{n}篇"
        api_post(front, token, title)
        written = time.monotonic()
        while title not in fetch(feed)[2].decode():
            if time.monotonic() - written > 30:
                raise SystemExit("the front never served the write")
            time.sleep(0.01)
        seen.append(time.monotonic() - written)
        time.sleep(0.3)  # spread the writes over the validity second
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per measure")
    parser.add_argument("--samples", type=int, default=8, help="freshness samples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        config, db_url = build_site(tmp)
        token = _token(db_url)
        app_port, front_port, static_port = free_port(), free_port(), free_port()
        server = front = static = None
        try:
            server = start_feedsvc(config, app_port, tmp / "serve.log")
            front_dir, static_dir, files = tmp / "front", tmp / "static", tmp / "files"
            for folder in (front_dir, static_dir, files / "feeds"):
                folder.mkdir(parents=True)
            front_conf = render_config(
                front_dir, listen_port=front_port, upstream=f"127.0.0.1:{app_port}"
            )
            front = start_nginx(front_conf, front_port)
            base = f"http://127.0.0.1:{front_port}"
            feed_url = f"{base}/feeds/{CATEGORY}.rss"
            status, headers, body = fetch(feed_url)
            assert status == 200, status
            (files / "feeds" / f"{CATEGORY}.rss").write_bytes(body)
            (files / "feeds" / f"{CATEGORY}.rss.gz").write_bytes(
                gzip.compress(body, compresslevel=6, mtime=0)
            )
            static = start_nginx(static_config(static_dir, static_port, files), static_port)
            static_url = f"http://127.0.0.1:{static_port}/feeds/{CATEGORY}.rss"
            static_etag = fetch(static_url)[1]["ETag"]
            gz = {"Accept-Encoding": "gzip"}
            cases = [
                ("warm 200", feed_url, {}, static_url, {}),
                ("warm 200 gzip", feed_url, gz, static_url, gz),
                (
                    "warm 304",
                    feed_url,
                    {"If-None-Match": headers["ETag"]},
                    static_url,
                    {"If-None-Match": static_etag},
                ),
            ]
            rows = []
            for label, url, sent, base_url, base_sent in cases:
                _check(url, sent)
                _check(base_url, base_sent)
                wrk(url, sent, 1)
                wrk(base_url, base_sent, 1)
                ours, theirs, ratios = [], [], []
                for _ in range(args.rounds):
                    ours.append(wrk(url, sent, args.seconds))
                    theirs.append(wrk(base_url, base_sent, args.seconds))
                    ratios.append(ours[-1] / theirs[-1])
                rows.append(
                    (
                        label,
                        statistics.median(ours),
                        statistics.median(theirs),
                        statistics.median(ratios),
                        f"{min(ratios):.2f}-{max(ratios):.2f}",
                    )
                )
            bound = freshness(base, token, args.samples)
        finally:
            stop(front)
            stop(static)
            stop(server)
    print("front: deploy/nginx.conf before `feedsvc serve` (2 workers x 8 threads, SQLite)")
    print(f"{'measure':<30}{'front':>11}{'static':>11}{'ratio':>8}{'rounds':>12}")
    for label, ours_rps, static_rps, ratio, spread in rows:
        print(
            f"{label + ' vs static nginx':<30}{ours_rps:>8.0f}r/s{static_rps:>8.0f}r/s"
            f"{ratio:>8.2f}{spread:>12}"
        )
    print("ratio: front/static in speed, median of the rounds' ratios (goal >= 0.80);")
    print("rounds: the lowest and highest round's ratio")
    print(
        f"freshness: write returned -> front serves it: median {statistics.median(bound):.2f} s,"
        f" max {max(bound):.2f} s over {len(bound)} writes (documented bound: 2 s)"
    )


def _check(url: str, headers: dict[str, str]) -> None:
    status, got, _ = fetch(url, headers)
    expected = 304 if "If-None-Match" in headers else 200
    assert status == expected, (url, headers, status)
    wants_gzip = "gzip" in headers.get("Accept-Encoding", "")
    assert (got.get("Content-Encoding") == "gzip") == (wants_gzip and status == 200), (url, got)


def _token(db_url: str) -> str:
    from feedsvc import create_app
    from feedsvc.config import load_settings
    from feedsvc.services.tokens import create_token

    settings = load_settings({"database": {"url": db_url}}, environ={})
    app = create_app(settings=settings)
    ctx = app.extensions["feedsvc"]
    try:
        return create_token(ctx, "bench")[1]
    finally:
        ctx.db.dispose()


if __name__ == "__main__":
    main()
