"""/metrics under a real `feedsvc serve`: two gunicorn workers and the scheduler process.

Every process writes its own files in the serve's metrics folder (prometheus_client's
multiprocess mode); whichever worker answers a scrape must report the sum. The folder is made
under $XDG_RUNTIME_DIR, which each test points at its tmp_path to look inside.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from pytest_httpserver import HTTPServer

from feedsvc import create_app, metrics
from feedsvc.config import load_settings
from feedsvc.schemas import SourceCreate
from feedsvc.services import sources as source_service
from tests.conftest import overrides_for
from tests.factories import Factory
from tests.metrics_scrape import Samples, parse_samples, total, value
from tests.processes import ROOT, children, cmdline, config_env, feedsvc, free_port, stop, wait_for

pytestmark = pytest.mark.usefixtures("backend")

FEED_ROUTE = "/feeds/<slug>.<fmt>"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def scrape(port: int) -> Samples:
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, body
    return parse_samples(body.decode())


def start_serve(tmp_path: Path, db_url: str, **sections: dict[str, Any]) -> tuple[Any, int, Path]:
    sections.setdefault("metrics", {"enabled": True})
    env = config_env(tmp_path, db_url, **sections)
    runtime = tmp_path / "run"
    runtime.mkdir()
    env["XDG_RUNTIME_DIR"] = str(runtime)
    port = free_port()
    master = feedsvc(["serve", "--port", str(port), "--workers", "2"], env, tmp_path / "serve.log")
    return master, port, runtime


def workers(master: Any) -> list[int]:
    return [pid for pid in children(master.pid) if "feedsvc.cli scheduler" not in cmdline(pid)]


def per_process(folder: Path, name: str, **labels: str) -> dict[int, float]:
    """Each process's own count: its file alone, read by the library's collector."""
    counts = {}
    for path in sorted(folder.glob("counter_*.db")):
        alone = Path(tempfile.mkdtemp(dir=folder.parent))
        shutil.copy(path, alone / path.name)
        collector = MultiProcessCollector(None, path=str(alone))  # type: ignore[no-untyped-call]
        counts[int(path.stem.split("_")[1])] = sum(
            sample.value
            for family in collector.collect()  # type: ignore[no-untyped-call]
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )
    return counts


def test_totals_are_the_same_whichever_worker_answers(tmp_path: Path, db_url: str) -> None:
    master, port, runtime = start_serve(tmp_path, db_url, scheduler={"enabled": False})
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 60, "serve")
        wait_for(lambda: len(workers(master)) == 2, 30, "two workers")
        (folder,) = runtime.glob("feedsvc-metrics-*")

        feed = f"http://127.0.0.1:{port}/feeds/all.rss"
        sent: list[int] = []
        answers: list[Samples] = []

        def both_answered(route: str) -> bool:
            counts = per_process(folder, "feedsvc_http_requests_total", route=route)
            return len([n for n in counts.values() if n > 0]) == 2

        def poll_batch() -> bool:
            with ThreadPoolExecutor(max_workers=16) as pool:  # a new connection per request
                sent.extend(pool.map(lambda _: get(feed)[0], range(40)))
            return both_answered(FEED_ROUTE)

        def scrape_batch() -> bool:
            with ThreadPoolExecutor(max_workers=4) as pool:
                answers.extend(pool.map(lambda _: scrape(port), range(4)))
            return both_answered("/metrics")

        # Batches until each worker has answered some (which one accepts is the kernel's say).
        wait_for(poll_batch, 60, "feed polls answered by both workers", step=0)
        requests = len(sent)
        assert sent == [200] * requests
        # Each process adds its tally to the files every FLUSH_SECONDS: after that, every
        # scrape, whichever worker answers it, has the same totals.
        time.sleep(metrics.FLUSH_SECONDS + 0.5)
        answers.clear()
        wait_for(scrape_batch, 60, "scrapes answered by both workers", step=0)
        for samples in answers:  # every scrape, whichever worker answered it: the same totals
            assert (
                value(
                    samples,
                    "feedsvc_http_requests_total",
                    route=FEED_ROUTE,
                    method="GET",
                    status="200",
                )
                == requests
            )
            assert total(samples, "feedsvc_feed_cache_lookups_total") == requests
        counts = per_process(folder, "feedsvc_http_requests_total", route=FEED_ROUTE)
        assert sum(counts.values()) == requests

        # A worker that dies takes nothing with it: gunicorn's child_exit hook runs, a new
        # worker starts, the counts stay.
        gone = workers(master)[0]
        master_pid = master.pid
        os.kill(gone, signal.SIGTERM)
        wait_for(lambda: gone not in workers(master) and len(workers(master)) == 2, 30, "respawn")
        assert master.pid == master_pid
        for _ in range(4):
            assert (
                value(
                    scrape(port),
                    "feedsvc_http_requests_total",
                    route=FEED_ROUTE,
                    method="GET",
                    status="200",
                )
                == requests
            )
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        finally:
            stop(master)
    assert not list(runtime.glob("feedsvc-metrics-*")), "serve removes its metrics folder"


RSS = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>合作博客</title>'
    "<link>http://partner.test/</link><description>基金与理财</description>"
    '<item><guid isPermaLink="false">p-1</guid><title>债券基金怎么选</title>'
    "<link>http://partner.test/p-1</link><pubDate>Mon, 02 Mar 2026 09:00:00 +0800</pubDate>"
    "<description>久期、信用与费率，三件事看清楚再买。</description></item>"
    "</channel></rss>"
)


def test_scheduler_runs_and_fetches_are_counted(
    tmp_path: Path, db_url: str, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/good.xml").respond_with_data(
        RSS, content_type="application/rss+xml; charset=utf-8"
    )
    httpserver.expect_request("/broken.xml").respond_with_data("维护中", status=500)
    settings = load_settings(overrides_for(db_url), environ={})
    app = create_app(settings=settings)
    ctx = app.extensions["feedsvc"]
    Factory(ctx).ensure_category("jijin")
    for path in ("/good.xml", "/broken.xml"):
        source_service.create_source(
            ctx, SourceCreate(url=httpserver.url_for(path), category="jijin", mode="related")
        )
    ctx.db.dispose()

    loopback = {"allow_hosts": ["127.0.0.1", "localhost"], "read_timeout": 5.0}
    master, port, _ = start_serve(tmp_path, db_url, sources=loopback)
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 60, "serve")

        def counted() -> Samples | None:
            samples = scrape(port)
            fetches = "feedsvc_source_fetches_total"
            done = (
                value(samples, fetches, outcome="fetched") >= 1
                and value(samples, fetches, outcome="http_5xx") >= 1
                and value(samples, "feedsvc_job_runs_total", job="sources-poll", status="succeeded")
                >= 1
                and value(
                    samples, "feedsvc_job_runs_total", job="related-refresh", status="succeeded"
                )
                >= 1
            )
            return samples if done else None

        samples = wait_for(counted, 60, "the scheduler's runs in /metrics", step=0.5)
        assert value(samples, "feedsvc_job_run_duration_seconds_count", job="sources-poll") >= 1
        assert value(samples, "feedsvc_job_last_success_timestamp_seconds", job="sources-poll") > 0
        assert total(samples, "feedsvc_source_fetches_total", outcome="timeout") == 0
        assert "feedsvc_related_refreshed_age_seconds" in {name for name, _ in samples}
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        finally:
            stop(master)


_DYING_WORKER = """
import os, sys
from feedsvc import metrics
metrics.configure(True)
metrics.feed_cache_hit()  # tallied: the exit adds it to the files (atexit)
for seconds in (0.0001, 0.0005, 0.00051, 0.003, 0.7, 7.5):
    metrics.request_finished("/feeds/<slug>.<fmt>", "GET", 200, seconds)
metrics.job_started("sources-poll")  # and never finished: the process dies mid-run
print(os.getpid(), flush=True)
sys.exit(0)
"""


def test_a_dead_worker_keeps_its_counts_and_loses_its_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, metrics.MULTIPROC_ENV: str(folder), "PYTHONPATH": str(ROOT)}
    pids = [
        int(
            subprocess.run(
                [sys.executable, "-c", _DYING_WORKER], env=env, capture_output=True, text=True
            ).stdout
        )
        for _ in range(2)
    ]
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(folder))

    def read() -> Samples:
        return parse_samples(metrics.exposition(metrics.Scrape(), None)[0].decode())

    before = read()
    assert value(before, "feedsvc_job_running", job="sources-poll") == 2
    assert value(before, "feedsvc_feed_cache_lookups_total", result="hit") == 2
    # The tallied latencies, added per bucket, read back across processes as observe()'d.
    reference = Histogram("r", "r", buckets=metrics.HTTP_BUCKETS, registry=CollectorRegistry())
    for seconds in (0.0001, 0.0005, 0.00051, 0.003, 0.7, 7.5) * 2:
        reference.observe(seconds)
    for sample in next(iter(reference.collect())).samples:
        if sample.name.endswith(("_bucket", "_count", "_sum")):
            name = sample.name.replace("r_", "feedsvc_http_request_duration_seconds_", 1)
            labels = {**sample.labels, "route": FEED_ROUTE}
            assert value(before, name, **labels) == pytest.approx(sample.value), sample
    metrics.worker_exited(pids[0])  # what gunicorn's child_exit hook calls in the master
    after = read()
    assert value(after, "feedsvc_job_running", job="sources-poll") == 1
    assert value(after, "feedsvc_feed_cache_lookups_total", result="hit") == 2


_OFF = """
import sys
from feedsvc import create_app
from feedsvc.config import load_settings
app = create_app(settings=load_settings({"database": {"url": sys.argv[1]}}, environ={}))
response = app.test_client().get("/feeds/all.rss")
assert response.status_code == 200, response.status_code
print(sorted(name for name in sys.modules if name.startswith("prometheus_client")))
"""


def test_metrics_off_imports_nothing(db_url: str) -> None:
    """Off, the library is never imported: a feed poll pays one test of a global per hook."""
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", _OFF, db_url], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
