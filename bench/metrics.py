"""What /metrics costs the hot path: warm feed polls through a real `feedsvc serve`, metrics
off vs on (multiprocess mode, as deployed), side by side in one run.

In-process as well (the WSGI app called directly, CPU time of the calling thread, so other
processes on the machine add no noise): the same warm requests on an app with metrics off and
one with metrics on (multiprocess files), in alternating rounds.

Two serves on one SQLite database (2 workers x 4 threads each, no scheduler), measured in
turns with wrk (-t2 -c16), a few rounds each so that drift on a shared machine hits both
alike; the median round of each is compared. Also the cost of the hooks left in the feed path
when metrics are off (a function call that tests a global), per call.

Run: `.venv/bin/python bench/metrics.py` (needs wrk).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from typing import Any  # noqa: E402

from flask import Response  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from feedsvc import create_app, metrics, migrate  # noqa: E402
from feedsvc.config import load_settings  # noqa: E402
from feedsvc.schemas import CategoryCreate, PostCreate  # noqa: E402
from feedsvc.services.categories import create_category  # noqa: E402
from feedsvc.services.posts import create_post  # noqa: E402
from feedsvc.web import metrics as web_metrics  # noqa: E402

ROUNDS = 5
SECONDS = 4
IN_PROCESS_ROUNDS = 40
IN_PROCESS_CALLS = 50
PARAGRAPH = (
    "定投的核心不是择时，而是用纪律对抗情绪。每月固定日期买入固定金额，"
    "市场下跌时同样的钱买到更多份额，上涨时买到更少，长期下来平均成本被拉平。"
)


def seed(url: str) -> None:
    settings = load_settings({"database": {"url": url}}, environ={})
    app = create_app(settings=settings)
    ctx = app.extensions["feedsvc"]
    migrate.upgrade(ctx.db)
    create_category(ctx, CategoryCreate(slug="jijin", name="基金"))
    body = "\n\n".join(f"## 第{n}节\n\n{PARAGRAPH}" for n in range(1, 8))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(20):
        create_post(
            ctx,
            PostCreate(
                title=f"定投笔记第{n}篇",
                category="jijin",
                content=body,
                tags=["定投"],
                published_at=start + timedelta(days=n),
            ),
        )
    ctx.db.dispose()


def start_serve(folder: Path, url: str, port: int, enabled: bool) -> subprocess.Popen[bytes]:
    config = folder / f"feedsvc-{port}.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[scheduler]\nenabled = false\n'
        f"[metrics]\nenabled = {'true' if enabled else 'false'}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update(FEEDSVC_CONFIG=str(config), PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(folder))
    log = (folder / f"serve-{port}.log").open("ab")
    command = [sys.executable, "-m", "feedsvc.cli", "serve", "--port", str(port), "--workers", "2"]
    return subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=ROOT)


def wait_ready(port: int) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/feeds/jijin.rss") as response:
                return str(response.headers["ETag"])
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"serve on port {port} did not start")


def server_cpu(master: int) -> float:
    """CPU seconds used so far by the serve's workers (/proc: utime + stime)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    ticks = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(port: int, etag: str | None, master: int) -> tuple[float, float]:
    """Requests per second, and the workers' CPU seconds per request (what other processes
    on a shared machine do is not in it)."""
    command = ["wrk", "-t2", "-c16", f"-d{SECONDS}s", f"http://127.0.0.1:{port}/feeds/jijin.rss"]
    if etag:
        command[1:1] = ["-H", f"If-None-Match: {etag}"]
    cpu = server_cpu(master)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = server_cpu(master) - cpu
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    assert rate and count, out
    return float(rate.group(1)), cpu / int(count.group(1))


def in_process(url: str) -> dict[tuple[str, str], float]:
    """Median CPU seconds of this thread per warm request, straight through the WSGI app
    (no network, and CPU time: what other processes on the machine do is not counted)."""
    apps = {
        name: create_app(
            settings=load_settings(
                {"database": {"url": url}, "metrics": {"enabled": name == "on"}}, environ={}
            )
        )
        for name in ("off", "on")
    }
    etag = apps["off"].test_client().get("/feeds/jijin.rss").headers["ETag"]
    environs = {
        kind: EnvironBuilder(path="/feeds/jijin.rss", headers=headers).get_environ()
        for kind, headers in (("200", {}), ("304", {"If-None-Match": etag}))
    }

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        return None

    samples: dict[tuple[str, str], list[float]] = {}
    for turn in range(IN_PROCESS_ROUNDS):
        for kind, environ in environs.items():
            for name in ("on", "off") if turn % 2 else ("off", "on"):
                metrics.configure(name == "on")  # the process-wide switch create_app sets
                app = apps[name]
                start = time.thread_time()
                for _ in range(IN_PROCESS_CALLS):
                    body = app(dict(environ), start_response)
                    for _chunk in body:
                        pass
                    body.close()  # type: ignore[attr-defined]
                elapsed = (time.thread_time() - start) / IN_PROCESS_CALLS
                samples.setdefault((kind, name), []).append(elapsed)
    medians = {key: statistics.median(values) for key, values in samples.items()}
    # Python function calls per warm 304: exact, whatever the machine is doing.
    for name, app in apps.items():
        metrics.configure(name == "on")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(IN_PROCESS_CALLS):
            body = app(dict(environs["304"]), start_response)
            for _chunk in body:
                pass
            body.close()  # type: ignore[attr-defined]
        profile.disable()
        medians[("calls", name)] = pstats.Stats(profile).total_calls / IN_PROCESS_CALLS  # type: ignore[attr-defined]
    for app in apps.values():
        app.extensions["feedsvc"].db.dispose()
    return medians


def hooks_of_one_poll(url: str) -> float:
    """Seconds that every metrics hook of one conditional feed poll adds (request hooks and
    the cache call), metrics on, multiprocess files, inside a real request context."""
    settings = load_settings({"database": {"url": url}, "metrics": {"enabled": True}}, environ={})
    app = create_app(settings=settings)
    not_modified = Response(status=304)
    path, headers = "/feeds/jijin.rss", {"If-None-Match": '"x"'}
    with app.test_request_context(path, headers=headers):

        def poll() -> None:
            web_metrics._start_clock()
            metrics.feed_cache_hit()
            web_metrics._count(not_modified)

        calls = 20_000
        best = min(timeit.repeat(poll, number=calls, repeat=7)) / calls
    app.extensions["feedsvc"].db.dispose()
    return best


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench/metrics.py needs wrk (apt-get install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="feedsvc-bench-metrics-"))
    url = f"sqlite:///{folder}/bench.db"
    seed(url)
    # As under serve: the files folder is named before prometheus_client is first imported.
    (folder / "mp").mkdir()
    os.environ[metrics.MULTIPROC_ENV] = str(folder / "mp")
    local = in_process(url)
    hooks_on = hooks_of_one_poll(url)
    del os.environ[metrics.MULTIPROC_ENV]
    ports = {"off": 18431, "on": 18432}
    serves = {name: start_serve(folder, url, port, name == "on") for name, port in ports.items()}
    try:
        etags = {name: wait_ready(port) for name, port in ports.items()}
        results: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for _ in range(ROUNDS):
            for kind in ("200", "304"):
                for name, port in ports.items():
                    etag = etags[name] if kind == "304" else None
                    rate, seconds = wrk(port, etag, serves[name].pid)
                    results.setdefault((kind, name), []).append(rate)
                    cpu.setdefault((kind, name), []).append(seconds)
    finally:
        for serve in serves.values():
            serve.send_signal(signal.SIGTERM)
        for serve in serves.values():
            serve.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)

    metrics.configure(False)
    hook = min(timeit.repeat(metrics.feed_cache_hit, number=1_000_000, repeat=5)) / 1_000_000

    print(
        f"warm feed polls through `feedsvc serve` (2 workers x 4 threads, wrk -t2 -c16), "
        f"median of {ROUNDS} rounds of {SECONDS} s"
    )
    print(f"{'measure':<12}{'metrics off':>14}{'metrics on':>14}{'ratio':>8}")
    for kind in ("200", "304"):
        off = statistics.median(results[(kind, "off")])
        on = statistics.median(results[(kind, "on")])
        print(f"warm {kind:<7}{off:>10.0f} r/s{on:>10.0f} r/s{on / off:>8.3f}")
    for kind in ("200", "304"):
        print(f"  rounds {kind}: off {results[(kind, 'off')]} on {results[(kind, 'on')]}")
    print("the workers' CPU time per request (median of the rounds):")
    for kind in ("200", "304"):
        off = statistics.median(cpu[(kind, "off")])
        on = statistics.median(cpu[(kind, "on")])
        print(
            f"warm {kind:<7}{off * 1e6:>10.1f} us {on * 1e6:>10.1f} us{off / on:>8.3f} "
            f"(+{(on - off) * 1e6:.1f} us per request)"
        )
    print("in-process (the WSGI app called directly), median CPU time per request:")
    for kind in ("200", "304"):
        off, on = local[(kind, "off")], local[(kind, "on")]
        print(
            f"warm {kind:<7}{off * 1e6:>10.1f} us {on * 1e6:>10.1f} us{off / on:>8.3f} "
            f"(+{(on - off) * 1e6:.1f} us per request)"
        )
    calls_off, calls_on = local[("calls", "off")], local[("calls", "on")]
    print(f"python function calls per warm 304: {calls_off:.0f} off, {calls_on:.0f} on")
    share = hooks_on / local[("304", "off")]
    print(
        f"every metrics hook of one 304 poll, metrics on (multiprocess): {hooks_on * 1e6:.1f} us"
        f" = {share:.1%} of an in-process warm 304 with metrics off"
    )
    print(f"a metrics hook with metrics off: {hook * 1e9:.0f} ns per call")


if __name__ == "__main__":
    main()
