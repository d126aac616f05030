"""WebSub benchmark: one change to a feed with N subscribers (default 1,000), delivered to all.

What is measured, per configuration, in a fresh database and a fresh process (so that one
configuration's memory does not count against the next):

1. site: a migrated database, ``websub.hub = "builtin"``, ``websub.allow_hosts =
   ["127.0.0.1"]``, one category of 20 Chinese posts (bench/site.py's bodies);
2. subscribe: N subscriptions through the real endpoint (POST /websub, Flask test client),
   a third each to the category's RSS, Atom and JSON Feed, each with its own hub.secret;
3. verify: websub job runs (``jobs.run_job(ctx, WEBSUB, trigger="cli")``) until every
   subscription is verified: wall time;
4. deliver: one post created through the API (POST /api/v1/posts), then one websub job run,
   which must POST the new body to all N: wall time, deliveries/s, and the peak RSS growth
   of the process during the run (VmHWM, reset through /proc/self/clear_refs before the
   run, minus the RSS then: bench/sources.py's ``PeakRss``). The run renders the feed and
   sends; the subscribers are in another process, so only the hub is counted. Afterwards
   every subscriber must have received exactly one delivery, whose body is byte for byte
   the feed as served (GET /feeds/jijin.{fmt}) and whose X-Hub-Signature is the HMAC-SHA256
   of that body under its own secret.

The subscribers: one asyncio process serving /cb/0 … /cb/N-1 on ``--ports`` listening
ports of 127.0.0.1 (default: N, so each subscriber is its own origin, as real subscribers
are, and the hub opens a connection per delivery; ``--ports 1``: one origin whose
connections the hub keeps alive). They echo hub.challenge, count verifications and
deliveries per callback, and check each signature; a failing one answers its deliveries 500.

Configurations: each of ``--concurrency`` (default 1,16,64; websub.concurrency's default is
16), deliveries compared as a ratio to concurrency 1 (absolute times are noisy on this
shared machine; ratios from one run are what to compare). ``--failing 0.1`` (default) adds
a run at concurrency 16 in which 10% of the subscribers answer 500: their delivery is
recorded as failed (retried later, with backoff), and the healthy ones should hardly wait
for them (the ratio to the healthy run).

Budget (PASS/FAIL, exit status 1 on FAIL): at websub.concurrency 16, 1,000 deliveries
within 30 s of wall time on this 2-core machine (N deliveries within 30·N/1000 s), and every
check above holding in every configuration.

Run: `.venv/bin/python bench/websub.py [--postgres URL] [--subscribers N] [--ports P]
[--concurrency 1,16,64] [--failing 0.1]`. With --postgres the database named is emptied
(schema public dropped) for each configuration.

``--profile`` writes a cProfile of each websub run (main thread) into the log
($TMPDIR/feedsvc-bench-websub.log, which also holds the service's INFO lines).

Measured on this machine (2 shared cores; N = 1,000 on 1,000 ports; the subscribers'
process shares the cores; all checks ok in every row; subscribe: the 1,000 POST /websub;
speed-up: delivery time at c=1 / this one; RSS: peak growth in the delivery run, VmHWM;
fds: the most descriptors open during it; conns: connections the subscribers accepted),
with the run as it is now (feedsvc/websub/pump.py: a slot is refilled as each exchange ends;
one query reads eight slots' worth ahead; what ended is recorded a slot's worth at a time):

    SQLite          subscribe  verify  deliver  deliv/s  speed-up  RSS MiB  fds  conns
    c=1                 2.47s   4.53s    3.53s      283     1.00x      0.7   74   1000
    c=16                2.54s   3.81s    1.90s      526     1.86x      1.3   85   1000
    c=64                2.45s   3.65s    1.84s      543     1.92x      3.1  100   1000
    c=16, 100 fail      2.54s   3.65s    1.92s      521  (x1.01 the healthy c=16 run)
    PASS: 1.90 s against 30 s

    PostgreSQL      subscribe  verify  deliver  deliv/s  speed-up  RSS MiB  fds  conns
    c=1                 4.74s   6.59s    4.59s      218     1.00x      0.6   72   1000
    c=16                4.55s   5.33s    2.12s      472     2.17x      1.1   82   1000
    c=64                4.60s   5.17s    2.10s      477     2.19x      3.2   95   1000
    c=16, 100 fail      4.79s   5.70s    2.22s      450  (x1.05 the healthy c=16 run)
    PASS: 2.12 s against 30 s

The verification runs peaked at 9-13 MiB of RSS growth and 72-91 descriptors; the delivery
run comes after them in the same process and reuses what they freed, so its RSS growth reads
low. Concurrency stops paying at about 16: on 127.0.0.1 a delivery waits on no network, so
the hub is bound by CPU (one Python process, its GIL, two cores shared with the subscribers'
process), not by waiting; against real subscribers, whose answers take tens of milliseconds,
concurrency pays much more.

History of this bench (c=16, deliver): fixed batches of 128 (each batch waited for its
slowest exchange) took 2.22 s (SQLite) and 2.88 s (PostgreSQL) with a SELECT and an UPDATE
per delivered row, every client kept for the whole run (verification held 1,009 descriptors:
1,100 subscribers under a 1,024-descriptor limit left 84 unverified) and answers unread; 1.61
and 1.82 s once those were fixed. The refilled slots (so that one subscriber taking the
whole time-out holds up nobody: tests/websub/test_hub_flow.py) first cost 2.04 and 2.66 s,
a query and a transaction per exchange; reading ahead and recording a slot at a time brought
that to the figures above. Verification: three transactions per request before they were
stored a batch at a time (3.9 of 6.0 s under the profiler).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import hmac
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
CATEGORY = "jijin"
FORMATS = ("rss", "atom", "json")
POSTS = 20
DEFAULT_CONCURRENCY = 16
BUDGET_SECONDS_PER_1000 = 30.0
CONTROL = "/_control"


def secret_for(index: int, salt: str) -> str:
    return f"订阅者密钥-{salt}-{index:05d}"


# -- the subscribers (their own process) -----------------------------------------------------


class _Subscribers:
    """What the callbacks saw since the last reset (touched by the event loop only)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.reset({"salt": "", "failing": []})

    def reset(self, config: dict[str, Any]) -> None:
        self.salt = str(config["salt"])
        self.failing = set(config["failing"])
        self.keys = [secret_for(i, self.salt).encode("utf-8") for i in range(self.count)]
        self.verified = [0] * self.count
        self.deliveries = [0] * self.count
        self.bad_signatures = 0
        self.digests: list[list[str]] = [[] for _ in range(self.count)]
        self.stray = 0
        self.connections = 0

    def stats(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "deliveries": self.deliveries,
            "bad_signatures": self.bad_signatures,
            "digests": self.digests,
            "stray": self.stray,
            "connections": self.connections,
        }

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        parts = urlsplit(target)
        if parts.path.startswith(CONTROL):
            self.connections -= 1  # urllib's, one per control request: not the hub's
            if parts.path == CONTROL + "/reset":
                self.reset(json.loads(body))
                return 200, b"ok"
            return 200, json.dumps(self.stats()).encode()
        try:
            index = int(parts.path.removeprefix("/cb/"))
            if not 0 <= index < self.count:
                raise ValueError(index)
        except ValueError:
            self.stray += 1
            return 404, b"no such callback"
        if method == "GET":
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if params.get("hub.mode") in ("subscribe", "unsubscribe"):
                self.verified[index] += 1
            return 200, params.get("hub.challenge", "").encode()
        self.deliveries[index] += 1
        expected = hmac.new(self.keys[index], body, hashlib.sha256).hexdigest()
        if headers.get("x-hub-signature") != f"sha256={expected}":
            self.bad_signatures += 1
        self.digests[index].append(hashlib.sha256(body).hexdigest())
        return (500, b"failing on purpose") if index in self.failing else (200, b"")


async def _connection(
    subscribers: _Subscribers, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A minimal HTTP/1.1 server side: Content-Length bodies, keep-alive."""
    subscribers.connections += 1
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers = {}
            while True:
                header = await reader.readline()
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            status, payload = subscribers.answer(method, target, headers, body)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode("ascii")
                + payload
            )
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _serve_subscribers(count: int, ports: int) -> None:
    # A listening socket per port and the hub's connections: as many descriptors as allowed.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    subscribers = _Subscribers(count)
    servers = [
        await asyncio.start_server(
            lambda r, w: _connection(subscribers, r, w), HOST, 0, backlog=1024
        )
        for _ in range(ports)
    ]
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    # Stopped by the parent (SIGTERM) or when its end of stdin closes.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


class SubscriberProcess:
    """The parent's handle on the subscribers' process."""

    def __init__(self, count: int, ports: int) -> None:
        command = [sys.executable, __file__, "--serve-subscribers", str(count)]
        command += ["--ports", str(ports)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.ports: list[int] = json.loads(self.process.stdout.readline())
        self.count = count

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass(frozen=True)
class Callbacks:
    """What a configuration's process needs to know of the subscribers."""

    ports: list[int]
    count: int

    def url(self, index: int) -> str:
        return f"http://{HOST}:{self.ports[index % len(self.ports)]}/cb/{index}"

    def _control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = Request(f"http://{HOST}:{self.ports[0]}{CONTROL}/{path}", data=data)
        with urlopen(request, timeout=30) as response:
            return json.loads(response.read()) if body is None else None

    def reset(self, salt: str, failing: list[int]) -> None:
        self._control("reset", {"salt": salt, "failing": failing})

    def stats(self) -> dict[str, Any]:
        return dict(self._control("stats"))


# -- one configuration (its own process) -----------------------------------------------------


def _database_url(folder: Path, postgres: str | None) -> str:
    from bench.site import _empty_postgres

    if postgres:
        _empty_postgres(postgres)
        return postgres
    return f"sqlite:///{folder}/bench.db"


def _count(ctx: Any, model: Any) -> int:
    from sqlalchemy import func, select

    with ctx.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


class PeakFds:
    """The most file descriptors this process held at once during a phase (sampled every
    5 ms by a thread): the hub keeps a client, so a connection, per callback origin."""

    def __init__(self) -> None:
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            try:
                self.peak = max(self.peak, len(os.listdir("/proc/self/fd")))
            except OSError:  # EMFILE: the limit itself was reached
                self.peak = max(self.peak, resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def run_configuration(config: dict[str, Any]) -> dict[str, Any]:
    from bench.site import post_body
    from bench.sources import PeakRss
    from feedsvc import create_app, jobs, migrate
    from feedsvc.config import load_settings
    from feedsvc.models import WebSubIntent, WebSubSubscription
    from feedsvc.schemas import CategoryCreate, PostCreate
    from feedsvc.services.categories import create_category
    from feedsvc.services.posts import create_post
    from feedsvc.services.tokens import create_token
    from feedsvc.websub.jobs import WEBSUB

    callbacks = Callbacks(config["ports"], config["count"])
    count, failing = callbacks.count, list(config["failing"])
    salt = os.urandom(4).hex()
    callbacks.reset(salt, failing)
    results: dict[str, Any] = {"problems": []}
    problems: list[str] = results["problems"]

    def run_websub(what: str) -> float:
        profile = cProfile.Profile() if config["profile"] else None
        start = time.perf_counter()
        if profile is not None:
            outcome = profile.runcall(jobs.run_job, ctx, WEBSUB, trigger="cli")
        else:
            outcome = jobs.run_job(ctx, WEBSUB, trigger="cli")
        seconds = time.perf_counter() - start
        if profile is not None:
            print(f"--- profile of a {what} run (main thread)", file=sys.stderr)
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        if outcome is not jobs.Outcome.SUCCEEDED:
            problems.append(f"websub job: {outcome}")
        return seconds

    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-websub-") as tmp:
        url = _database_url(Path(tmp), config["postgres"])
        websub = {
            "hub": "builtin",
            "allow_hosts": [HOST],
            "concurrency": config["concurrency"],
        }
        settings = load_settings(
            {"database": {"url": url}, "scheduler": {"enabled": False}, "websub": websub},
            environ={},
        )
        app = create_app(settings=settings)
        ctx = app.extensions["feedsvc"]
        try:
            migrate.upgrade(ctx.db)
            create_category(ctx, CategoryCreate(slug=CATEGORY, name="基金"))
            for n in range(POSTS):
                create_post(
                    ctx,
                    PostCreate(
                        title=f"定投笔记第{n}篇",
                        category=CATEGORY,
                        content=post_body(),
                        tags=["定投", "指数基金"],
                    ),
                )
            client = app.test_client()
            base = settings.site.base_url

            # Subscribe, through the endpoint.
            start = time.perf_counter()
            for index in range(count):
                form = {
                    "hub.mode": "subscribe",
                    "hub.topic": f"{base}/feeds/{CATEGORY}.{FORMATS[index % 3]}",
                    "hub.callback": callbacks.url(index),
                    "hub.secret": secret_for(index, salt),
                }
                answer = client.post("/websub", data=form)
                if answer.status_code != 202:
                    problems.append(f"POST /websub: {answer.status_code} {answer.data[:200]!r}")
                    break
            results["subscribe_s"] = time.perf_counter() - start

            # Verify, until every subscription is.
            results["verify_s"], runs = 0.0, 0
            rss, fds = PeakRss(), PeakFds()
            while runs < 5:
                results["verify_s"] += run_websub("verification")
                runs += 1
                if _count(ctx, WebSubIntent) == 0:
                    break
            results["verify_runs"] = runs
            results["verify_rss_kib"], results["verify_fds"] = rss.growth(), fds.stop()
            verified = _count(ctx, WebSubSubscription)
            if verified != count:
                problems.append(f"{verified} of {count} subscriptions verified")
            seen = callbacks.stats()
            results["verify_connections"] = seen["connections"]
            if seen["verified"] != [1] * count:
                problems.append("not exactly one verification per callback")
            if any(seen["deliveries"]):
                problems.append("deliveries before any change")

            # One change, through the API; one run delivers it.
            token = create_token(ctx, "bench")[1]
            post = {"title": "指数基金的再平衡", "category": CATEGORY, "content": post_body()}
            answer = client.post(
                "/api/v1/posts", json=post, headers={"Authorization": f"Bearer {token}"}
            )
            if answer.status_code != 201:
                problems.append(f"POST /api/v1/posts: {answer.status_code}")
            rss, fds = PeakRss(), PeakFds()
            results["deliver_s"] = run_websub("delivery")
            results["rss_kib"], results["rss_how"] = rss.growth(), rss.how
            results["fds"] = fds.stop()

            served = {
                fmt: hashlib.sha256(client.get(f"/feeds/{CATEGORY}.{fmt}").data).hexdigest()
                for fmt in FORMATS
            }
            seen = callbacks.stats()
            wrong = [i for i in range(count) if seen["digests"][i] != [served[FORMATS[i % 3]]]]
            if wrong:
                problems.append(
                    f"{len(wrong)} callbacks without exactly one delivery of the feed as "
                    f"served (first: /cb/{wrong[0]}: {seen['deliveries'][wrong[0]]} received)"
                )
            if seen["bad_signatures"]:
                problems.append(f"{seen['bad_signatures']} deliveries with a wrong signature")
            if seen["stray"]:
                problems.append(f"{seen['stray']} requests to no callback")
            results["delivered"] = sum(seen["deliveries"])
            results["connections"] = seen["connections"] - results["verify_connections"]
            with ctx.db.read() as session:
                from sqlalchemy import func, select

                failed = session.scalar(
                    select(func.count())
                    .select_from(WebSubSubscription)
                    .where(WebSubSubscription.failures > 0)
                )
            if failed != len(failing):
                problems.append(f"{failed} subscriptions recorded failing, {len(failing)} fail")
        finally:
            ctx.db.dispose()
    return results


# -- the parent: configurations side by side -------------------------------------------------


def run_child(config: dict[str, Any], log: Path) -> dict[str, Any]:
    """One configuration in a fresh process; its log (the service's INFO lines, which it
    writes as in production, one per request sent) goes to ``log``."""
    command = [sys.executable, __file__, "--child", json.dumps(config)]
    with log.open("a") as output:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=output, text=True)
    if done.returncode != 0:
        raise SystemExit(f"a configuration failed (exit {done.returncode}): see {log}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database to use (emptied)")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--ports", type=int, help="listening ports (default: one per subscriber)")
    parser.add_argument("--concurrency", default="1,16,64", help="websub.concurrency values")
    parser.add_argument(
        "--failing", type=float, default=0.1, help="share answering 500 in one more run (0: none)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the websub runs (into the log)"
    )
    parser.add_argument("--serve-subscribers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_subscribers is not None:
        asyncio.run(_serve_subscribers(args.serve_subscribers, args.ports or 1))
        return
    if args.child is not None:
        print(json.dumps(run_configuration(json.loads(args.child))))
        return

    count = args.subscribers
    ports = args.ports or count
    levels = sorted({int(c) for c in args.concurrency.split(",")} | {DEFAULT_CONCURRENCY})
    runs: list[tuple[str, int, list[int]]] = [(f"c={c}", c, []) for c in levels]
    if args.failing > 0:
        step = round(1 / args.failing)
        failing = list(range(step - 1, count, step))
        runs.append((f"c={DEFAULT_CONCURRENCY}, {len(failing)} fail", DEFAULT_CONCURRENCY, failing))
    backend = "PostgreSQL" if args.postgres else "SQLite"
    budget = BUDGET_SECONDS_PER_1000 * count / 1000
    print(f"{backend}: one change to a feed with {count} subscribers on {ports} ports of {HOST}")
    log = Path(tempfile.gettempdir()) / "feedsvc-bench-websub.log"
    log.write_text("")
    subscribers = SubscriberProcess(count, ports)
    results: dict[str, dict[str, Any]] = {}
    try:
        for label, concurrency, failing in runs:
            config = {
                "ports": subscribers.ports,
                "count": count,
                "concurrency": concurrency,
                "failing": failing,
                "postgres": args.postgres,
                "profile": args.profile,
            }
            results[label] = run_child(config, log)
            print(f"  {label}: done", file=sys.stderr, flush=True)
    finally:
        subscribers.stop()

    base = results[f"c={levels[0]}"]["deliver_s"]
    healthy = results[f"c={DEFAULT_CONCURRENCY}"]["deliver_s"]
    print(
        f"{'configuration':<16}{'subscribe':>11}{'verify':>9}{'deliver':>9}{'deliv/s':>9}"
        f"{'speed-up':>10}{'RSS MiB':>9}{'fds':>6}{'conns':>7}  checks"
    )
    for label, figures in results.items():
        speedup = base / figures["deliver_s"]
        note = f" (×{figures['deliver_s'] / healthy:.2f} healthy)" if "fail" in label else ""
        print(
            f"{label:<16}{figures['subscribe_s']:>10.2f}s{figures['verify_s']:>8.2f}s"
            f"{figures['deliver_s']:>8.2f}s{count / figures['deliver_s']:>9.0f}"
            f"{speedup:>9.2f}x{figures['rss_kib'] / 1024:>9.1f}"
            f"{figures['fds']:>6}{figures['connections']:>7}  "
            + ("ok" if not figures["problems"] else "; ".join(figures["problems"]))
            + note
        )
    verify = "/".join(
        f"{f['verify_rss_kib'] / 1024:.1f} MiB, {f['verify_fds']} fds, "
        f"{f['verify_connections']} conns"
        for f in results.values()
    )
    print(
        f"(speed-up: deliver time at c={levels[0]} / this one; RSS: peak growth during the "
        f"delivery run, by {results[f'c={levels[0]}']['rss_how']}; fds: the most file "
        f"descriptors open during it; conns: connections the subscribers accepted during it; "
        f"verification runs: {verify})"
    )
    ok = healthy <= budget and not any(figures["problems"] for figures in results.values())
    print(
        f"{'PASS' if ok else 'FAIL'}: budget {count} deliveries within {budget:g} s at "
        f"websub.concurrency {DEFAULT_CONCURRENCY}: {healthy:.2f} s"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
