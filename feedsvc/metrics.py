"""Prometheus metrics: what feedsvc counts, and how several processes add up to one answer.

Processes. `feedsvc serve` runs gunicorn workers and a scheduler process; each counts what it
does. prometheus_client's multiprocess mode adds them up: every process writes its values to
mmap'd files in one folder (PROMETHEUS_MULTIPROC_DIR) and whichever worker answers a scrape
reads them all. The library chooses its storage when it is first imported, hence:
- `serve` calls ``prepare_multiprocess_dir()`` in the master before anything imports
  prometheus_client: a fresh, empty folder per serve (files left by an earlier run would add
  its counts), named in the environment that workers (forked) and the scheduler (spawned)
  inherit, and removed when serve ends;
- this module imports prometheus_client only in ``configure()`` (create_app, once per
  process) and only when metrics are enabled: with metrics off nothing is imported and every
  hook below costs one test of a module global;
- gunicorn's child_exit calls ``worker_exited(pid)``, so a dead worker's live gauges go away
  (its counters stay: totals never go down while serve runs).
Without the variable (the Flask test client, `flask run`) one in-process registry is used.

Cost on the hot path. A write to the metric files is a lock, a getpid and a struct pack
behind a few layers of checks: five of them per feed poll cost about 8% of an in-process
warm poll (bench/metrics.py). So requests are tallied in memory instead (a dict under a lock,
per route, method, status and latency bucket) and each process adds its tally to the files
once a second, at exit (atexit: a worker replaced, serve stopping) and before answering a
scrape. A scrape is thus exact for the process that answers it and at most FLUSH_SECONDS
behind for the others; a process killed by SIGKILL loses at most that much. Jobs and fetches
are rare: they are written at once.

Bounded labels, whatever clients send: routes are URL rules, never raw paths ("unmatched"
for what no rule matches), methods outside a fixed set are "other", fetch failures are one of
a fixed set of kinds (``fetch_outcome``).
"""

from __future__ import annotations

import atexit
import bisect
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedsvc.config import ConfigError

if TYPE_CHECKING:  # imported for real only once metrics are enabled (see the module doc)
    from prometheus_client import Counter, Gauge
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger("feedsvc.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Feed polls answer in about a millisecond: finer low buckets than the library's defaults.
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_HTTP_BOUNDS = (*HTTP_BUCKETS, math.inf)
# How often each process adds its request tally to the metric files (see the module doc).
FLUSH_SECONDS = 1.0
HIT, MISS, NOT_MODIFIED, MODIFIED = "hit", "miss", "304", "200"
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


# -- processes ---------------------------------------------------------------------------------


def prepare_multiprocess_dir() -> Path:
    """A fresh, empty folder for this serve's metric files, named in our environment.

    In $XDG_RUNTIME_DIR (a tmpfs on systemd hosts) when it can be, else in the temp dir.
    Call it in the master before workers and the scheduler start.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    try:
        path = Path(tempfile.mkdtemp(prefix="feedsvc-metrics-", dir=runtime or None))
    except OSError:  # not a folder, or not ours to write: the temp dir will do
        path = Path(tempfile.mkdtemp(prefix="feedsvc-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def remove_multiprocess_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if os.environ.get(MULTIPROC_ENV) == str(path):
        del os.environ[MULTIPROC_ENV]


def worker_exited(pid: int) -> None:
    """A worker is gone: drop its live gauges (gunicorn's child_exit, in the master)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def gunicorn_child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` server hook."""
    worker_exited(int(worker.pid))


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


# -- the instruments -----------------------------------------------------------------------------


class _Instruments:
    """Every metric object of this process, built once, with its label children kept."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self.requests = Counter(
            "feedsvc_http_requests",
            "HTTP requests answered, by URL rule, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "feedsvc_http_request_duration_seconds",
            "Time from the request's arrival in the app to its response, by URL rule",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        cache = Counter(
            "feedsvc_feed_cache_lookups",
            "Rendered-feed cache look-ups, by result (hit: no query, no rendering)",
            ["result"],
            registry=registry,
        )
        conditional = Counter(
            "feedsvc_feed_conditional_requests",
            "Feed requests with If-None-Match or If-Modified-Since, by status (304 or 200)",
            ["status"],
            registry=registry,
        )
        self._tallied: dict[str, Counter] = {
            HIT: cache.labels("hit"),
            MISS: cache.labels("miss"),
            NOT_MODIFIED: conditional.labels("304"),
            MODIFIED: conditional.labels("200"),
        }
        self.job_runs = Counter(
            "feedsvc_job_runs",
            "Background job runs, by job and outcome (succeeded, failed, cancelled)",
            ["job", "status"],
            registry=registry,
        )
        self.job_duration = Histogram(
            "feedsvc_job_run_duration_seconds",
            "Duration of background job runs, by job",
            ["job"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.job_running: Gauge = Gauge(
            "feedsvc_job_running",
            "Job runs in progress now, by job (processes that died are not counted)",
            ["job"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.job_last_success: Gauge = Gauge(
            "feedsvc_job_last_success_timestamp_seconds",
            "Unix time of the last successful run of each job since serve started",
            ["job"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.source_fetches = Counter(
            "feedsvc_source_fetches",
            "Upstream source polls, by outcome (fetched, not_modified, or the kind of failure)",
            ["outcome"],
            registry=registry,
        )
        # The tally: what requests counted since the last flush (see ``flush``).
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, list[float]] = {}  # per bucket, then the sum

    def request(self, route: str, method: str, status: int, seconds: float | None) -> None:
        key = (route, method, status)
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            if seconds is not None:
                latency = self._latency.get(route)
                if latency is None:
                    latency = self._latency[route] = [0.0] * (len(_HTTP_BOUNDS) + 1)
                # Histogram.observe's rule: the first bucket whose bound is >= the value.
                latency[bisect.bisect_left(_HTTP_BOUNDS, seconds)] += 1
                latency[-1] += seconds

    def count(self, what: str) -> None:
        with self._lock:
            self._counts[what] = self._counts.get(what, 0) + 1

    def flush(self) -> None:
        """Add the tally to the metric objects (the files, in multiprocess mode)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            requests, self._requests = self._requests, {}
            latency, self._latency = self._latency, {}
        for what, n in counts.items():
            self._tallied[what].inc(n)
        for (route, method, status), n in requests.items():
            self.requests.labels(route, method, str(status)).inc(n)
        for route, buckets in latency.items():
            # What ``observe()`` would have written for each value, once per bucket: its
            # child keeps one value per bucket and the sum (prometheus_client's own layout,
            # checked against observe() by tests/test_metrics.py).
            child = self.latency.labels(route)
            child._sum.inc(buckets[-1])
            for index, observed in enumerate(buckets[:-1]):
                if observed:
                    child._buckets[index].inc(observed)


_built: _Instruments | None = None
_active: _Instruments | None = None  # None: metrics are off, every hook returns at once


def configure(enabled: bool) -> None:
    """Turn metrics on or off in this process (create_app calls it)."""
    global _built, _active
    if not enabled:
        _active = None
        return
    folder = multiprocess_dir()
    if folder is not None and not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
        raise ConfigError(f"metrics: {MULTIPROC_ENV}={folder} is not a writable folder")
    if _built is None:
        from prometheus_client import CollectorRegistry, disable_created_metrics

        # `*_created` series double the output and say only when this process started.
        disable_created_metrics()  # type: ignore[no-untyped-call]

        # Multiprocess: values go to the files, and a scrape reads the files, not a registry.
        _built = _Instruments(None if folder else CollectorRegistry(auto_describe=True))
    _active = _built
    _start_flushing()


def flush() -> None:
    """Add this process's request tally to the metric files now."""
    if _built is not None:
        _built.flush()


_flushing_in: int | None = None  # the pid whose flusher thread runs (a fork has none)


def _start_flushing() -> None:
    global _flushing_in
    if _flushing_in == os.getpid():
        return
    _flushing_in = os.getpid()
    atexit.register(flush)  # a graceful exit (a worker replaced, serve stopping) loses nothing

    def every_second() -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            try:
                flush()
            except Exception:  # pragma: no cover - a full disk: that tally is lost, logged
                log.exception("metrics: cannot write the metric files")

    threading.Thread(target=every_second, name="feedsvc-metrics-flush", daemon=True).start()


def enabled() -> bool:
    return _active is not None


# -- hooks: one call where each thing is decided ---------------------------------------------


def request_finished(route: str, method: str, status: int, seconds: float | None) -> None:
    instruments = _active
    if instruments is not None:
        instruments.request(route, method if method in METHODS else "other", status, seconds)


def feed_cache_hit() -> None:
    instruments = _active
    if instruments is not None:
        instruments.count(HIT)


def feed_cache_miss() -> None:
    instruments = _active
    if instruments is not None:
        instruments.count(MISS)


def conditional_feed_request(status: int) -> None:
    """A feed request that carried a validator was answered ``status`` (304 or 200)."""
    instruments = _active
    if instruments is not None:
        instruments.count(NOT_MODIFIED if status == 304 else MODIFIED)


@dataclass(frozen=True)
class JobTimer:
    job: str
    started: float


def job_started(job: str) -> JobTimer | None:
    instruments = _active
    if instruments is None:
        return None
    instruments.job_running.labels(job).inc()
    return JobTimer(job, time.perf_counter())


def job_finished(timer: JobTimer | None, status: str) -> None:
    instruments = _active
    if timer is None or instruments is None:
        return
    instruments.job_running.labels(timer.job).dec()
    instruments.job_runs.labels(timer.job, status).inc()
    instruments.job_duration.labels(timer.job).observe(time.perf_counter() - timer.started)
    if status == "succeeded":
        instruments.job_last_success.labels(timer.job).set(time.time())


def source_polled(status: int | None, error: str | None) -> None:
    instruments = _active
    if instruments is not None:
        instruments.source_fetches.labels(fetch_outcome(status, error)).inc()


# The messages are ours (feedsvc/sources: fetch, guard, body, parse, poll); a new message
# that matches none of these is counted as "other", never as a new label value.
_FETCH_FAILURES = (
    ("timeout", ("timeout", "took longer than")),
    ("dns", ("cannot resolve", "has no address")),
    ("connect", ("cannot connect",)),
    ("refused", ("address", "only http and https", "invalid url", "url has no host")),
    ("redirect", ("redirect", "without a location")),
    ("too_large", ("larger than",)),
    ("bad_body", ("corrupt", "content-encoding")),
)


def fetch_outcome(status: int | None, error: str | None) -> str:
    """One of a fixed set of label values for a poll's outcome (bounded cardinality)."""
    if error is None:
        return "not_modified" if status == 304 else "fetched"
    if error.startswith("parse:"):
        return "parse_error"
    if error.startswith("store:"):
        return "store_error"
    text = error.lower()
    if status is not None and status >= 400 and text.startswith("fetch: http "):
        return "http_4xx" if status < 500 else "http_5xx"
    for kind, markers in _FETCH_FAILURES:
        if any(marker in text for marker in markers):
            return kind
    return "other"


# -- scraping ----------------------------------------------------------------------------------


class Scrape:
    """What one scrape exports: this process's registry or every process's files, plus
    ``extra`` collectors computed at scrape time (e.g. freshness read from the database)."""

    def __init__(self, extra: Iterable[Collector] = ()) -> None:
        self._extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        flush()  # this process's own counts are exact; others' at most FLUSH_SECONDS old
        folder = multiprocess_dir()
        if folder is not None:
            from prometheus_client.multiprocess import MultiProcessCollector

            files = MultiProcessCollector(None, path=folder)  # type: ignore[no-untyped-call]
            yield from files.collect()  # type: ignore[no-untyped-call]
        elif _active is not None and _active.registry is not None:
            yield from _active.registry.collect()
        for extra in self._extra:
            yield from extra.collect()


def exposition(scrape: Scrape, accept: str | None) -> tuple[bytes, str]:
    """The scrape in the format the scraper asked for (Prometheus text, or OpenMetrics)."""
    from prometheus_client.exposition import choose_encoder, generate_latest

    try:
        encoder, content_type = choose_encoder(accept or "")
    except (TypeError, ValueError):  # prometheus_client 0.26 fails on version=abc in Accept
        encoder, content_type = generate_latest, "text/plain; version=0.0.4; charset=utf-8"
    return encoder(scrape), content_type
