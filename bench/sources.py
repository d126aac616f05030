"""Source polling benchmark: a first poll of fresh feeds vs a second poll answered by 304s.

The script serves 200 distinct upstream RSS feeds itself, from a threaded HTTP server on
127.0.0.1 (20 Chinese entries each, dated within 30 days of the frozen clock, gzip when
asked, a strong ETag per representation, 304 when If-None-Match matches). 100 of them are
polled as `related` sources (external items) and 100 as `posts` sources (posts of a
category); each mode has its own SQLite database and child processes, so neither the other
mode's memory nor the server's counts against it. Per mode:

- first:   create the sources and poll them all (every answer a 200 with a new body);
- second:  move the clock past the 30-minute interval and poll again in the same process
           (every answer a 304); check that nothing was stored;
- second*: one more all-304 poll, in a fresh process on the same database. Right after the
           first poll the second reuses memory the first freed, so its RSS growth reads ~0;
           this row shows what a 304 poll needs on its own.

Peak memory is RSS growth over the poll: VmHWM, reset through /proc/self/clear_refs before
the poll, minus the RSS then (elsewhere: the ru_maxrss delta, which stays 0 until a poll
beats the process's earlier peak). `--trace` adds tracemalloc peaks, but tracemalloc slows
the polls about 4x and adds its own memory, so wall times and RSS are then not comparable.
Every run checks what the upstream server answered and what the database holds.

Run: `make bench` (or `.venv/bin/python bench/sources.py`).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import random
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import TemporaryDirectory
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"  # the only address this benchmark ever listens on
FEEDS = 200
ENTRIES = 20
MODES = ("related", "posts")  # FEEDS // len(MODES) sources each
NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
CONCURRENCY = 8
TRACE = False  # --trace

TOPICS = [
    ("指数基金", ["定投", "宽基", "估值", "止盈"]),
    ("国债", ["储蓄国债", "票面利率", "到期", "兑付"]),
    ("房贷", ["提前还款", "等额本息", "公积金", "LPR"]),
    ("养老金", ["个人养老金", "缴费年限", "退休", "年金险"]),
    ("信用卡", ["免息期", "账单日", "分期", "征信"]),
    ("存款", ["大额存单", "定期存款", "存款利率", "降息"]),
    ("保险", ["重疾险", "医疗险", "保额", "现金价值"]),
    ("黄金", ["金价", "积存金", "避险", "美元"]),
]
SENTENCES = [
    "定投的核心不是择时，而是用纪律对抗情绪，每月固定日期买入固定金额。",
    "市场下跌时同样的钱买到更多份额，上涨时买到更少，长期下来平均成本被拉平。",
    "储蓄国债不能上市流通，提前兑取要按持有时间扣除一部分利息，并收取手续费。",
    "等额本息前期还的多是利息，提前还款越早，省下的利息越多，但要留足应急金。",
    "个人养老金每年缴存上限一万二千元，缴存时可以税前扣除，领取时按百分之三纳税。",
    "信用卡的免息期从记账日算到到期还款日，最长可达五十多天，逾期会影响征信。",
    "大额存单起存金额通常为二十万元，利率比同期限定期存款略高，也受存款保险保障。",
    "重疾险的保额要覆盖治疗费用和几年的收入损失，医疗险则负责报销实际花费。",
    "黄金不产生现金流，更适合作为资产配置里的避险部分，而不是全部押注的对象。",
    "再平衡的意思是每年把偏离目标的仓位调回原比例，卖出涨多的，买入跌多的。",
    "货币基金的七日年化收益率只是过去七天的表现折算成一年，并不代表未来收益。",
    "理财有风险，投资需谨慎，任何承诺保本高收益的产品都值得多问几个为什么。",
]


# -- the upstream feeds -----------------------------------------------------------------


@dataclass(frozen=True)
class Representation:
    body: bytes
    etag: str  # strong (RFC 9110 §8.8.3): it changes whenever these bytes do


@dataclass(frozen=True)
class UpstreamFeed:
    identity: Representation
    gzipped: Representation


def _representation(body: bytes) -> Representation:
    return Representation(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _description(rng: random.Random, topic: str, words: list[str]) -> str:
    """About 500 characters of HTML: a few paragraphs, a list, a link."""
    paragraphs = []
    for _ in range(3):
        text = "".join(rng.sample(SENTENCES, 3))
        word = rng.choice(words)
        paragraphs.append(f"<p>关于<strong>{word}</strong>：{text}</p>")
    items = "".join(f"<li>{word}</li>" for word in rng.sample(words, 3))
    link = f'<p>延伸阅读：<a href="https://example.com/{topic}">{topic}专题</a></p>'
    return "".join(paragraphs) + f"<ul>{items}</ul>" + link


def make_feed(number: int) -> bytes:
    """RSS 2.0 feed ``number``: its own blog, topic, entries and dates."""
    rng = random.Random(number)
    topic, words = TOPICS[number % len(TOPICS)]
    base = f"https://blog{number}.example.com"
    items = []
    for entry in range(ENTRIES):
        # Newest first, all within the last 30 days (never pruned: the limit is 90).
        published = NOW - timedelta(days=30 * entry / ENTRIES, minutes=rng.randrange(600))
        title = f"{topic}笔记（{number}-{entry}）：{rng.choice(words)}与{rng.choice(words)}"
        items.append(
            "<item>"
            f'<guid isPermaLink="false">tag:blog{number}.example.com,2026:entry-{entry}</guid>'
            f"<title>{escape(title)}</title>"
            f"<link>{base}/posts/{entry}.html</link>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<category>{escape(topic)}</category>"
            f"<description>{escape(_description(rng, topic, words))}</description>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{topic}博客 {number}</title><link>{base}/</link>"
        f"<description>{topic}的读书笔记</description><language>zh-CN</language>"
        f"<lastBuildDate>{format_datetime(NOW)}</lastBuildDate>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


class Upstream:
    """The 200 feeds, served at /feeds/<n>.xml, with counts of what was answered."""

    def __init__(self) -> None:
        self.feeds: dict[str, UpstreamFeed] = {}
        for number in range(FEEDS):
            body = make_feed(number)
            self.feeds[f"/feeds/{number}.xml"] = UpstreamFeed(
                _representation(body), _representation(gzip.compress(body, mtime=0))
            )
        self.lock = threading.Lock()
        self.answered: dict[int, int] = {}
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, number: int) -> str:
        return f"http://{HOST}:{self.port}/feeds/{number}.xml"

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        feed = self.feeds.get(request.path)
        if feed is None:
            self._count(404)
            request.send_error(404)
            return
        accepts_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
        chosen = feed.gzipped if accepts_gzip else feed.identity
        # RFC 9110 §13.1.2: If-None-Match uses the weak comparison; "*" matches any.
        wanted = {
            tag.strip().removeprefix("W/")
            for tag in request.headers.get("If-None-Match", "").split(",")
        }
        status = 304 if chosen.etag in wanted or "*" in wanted else 200
        self._count(status)
        request.send_response(status)
        # RFC 9110 §15.4.5: a 304 sends the ETag a 200 would have sent.
        request.send_header("ETag", chosen.etag)
        request.send_header("Vary", "Accept-Encoding")
        if status == 304:
            request.end_headers()
            return
        request.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        if accepts_gzip:
            request.send_header("Content-Encoding", "gzip")
        request.send_header("Content-Length", str(len(chosen.body)))
        request.end_headers()
        request.wfile.write(chosen.body)

    def _count(self, status: int) -> None:
        with self.lock:
            self.answered[status] = self.answered.get(status, 0) + 1

    def counts(self) -> dict[int, int]:
        with self.lock:
            return dict(self.answered)

    def __enter__(self) -> Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- one mode, in a child process ---------------------------------------------------------


def _kib(line: str) -> int:
    return int(line.split()[1])


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return _kib(line)
    except OSError:
        pass
    return None


class PeakRss:
    """Peak RSS growth over one phase, in KiB (see the module docstring)."""

    def __init__(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # Linux: reset VmHWM to the current RSS
            self.start = _status_kib("VmRSS")
            self.how = "VmHWM"
        except OSError:
            self.start = None
        if self.start is None:
            self.start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.how = "ru_maxrss"

    def growth(self) -> int:
        if self.how == "VmHWM":
            peak = _status_kib("VmHWM") or 0
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(0, peak - self.start)


def run_child_phase(
    phase: str, mode: str, urls: list[str], db_path: str, trace: bool
) -> dict[str, object]:
    """``setup``: create the sources, poll (200s), move the clock, poll (304s).
    ``again``: a fresh process on that database polls once more (304s)."""
    from sqlalchemy import func, select

    from feedsvc import create_app, migrate
    from feedsvc.clock import FrozenClock
    from feedsvc.config import load_settings
    from feedsvc.models import ExternalItem, Post, SourceEntry
    from feedsvc.schemas import CategoryCreate, SourceCreate
    from feedsvc.services.categories import create_category
    from feedsvc.services.sources import create_source
    from feedsvc.sources.poll import poll_sources

    def stored() -> dict[str, int]:
        with ctx.db.read() as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Post, SourceEntry, ExternalItem)
            }

    def poll(label: str) -> dict[str, object]:
        before = stored()
        if trace:
            tracemalloc.reset_peak()
            traced_before = tracemalloc.get_traced_memory()[0]
        rss = PeakRss()
        start = time.perf_counter()
        outcomes = poll_sources(ctx, None)
        wall = time.perf_counter() - start
        result: dict[str, object] = {
            "wall": wall,
            "rss_kib": rss.growth(),
            "rss_how": rss.how,
            "polled": len(outcomes),
            "statuses": sorted({str(outcome.status) for outcome in outcomes}),
            "errors": [outcome.error for outcome in outcomes if outcome.error][:3],
            "new": sum(outcome.report.new for outcome in outcomes),
            "updated": sum(outcome.report.updated for outcome in outcomes),
            "before": before,
            "stored": stored(),
        }
        if trace:
            result["traced_kib"] = (tracemalloc.get_traced_memory()[1] - traced_before) // 1024
        print(f"  {mode:<8}{label:<7} poll: {wall:6.2f}s", file=sys.stderr, flush=True)
        return result

    settings = load_settings(
        {
            "database": {"url": f"sqlite:///{db_path}"},
            "scheduler": {"enabled": False},
            "sources": {"allow_hosts": [HOST], "concurrency": CONCURRENCY},
        },
        environ={},
    )
    # Sources are due every 30 minutes: each poll after the first is 31 minutes later.
    clock = FrozenClock(NOW if phase == "setup" else NOW + timedelta(minutes=62))
    app = create_app(settings=settings, clock=clock)
    ctx = app.extensions["feedsvc"]
    migrate.upgrade(ctx.db)
    results = {}
    if phase == "setup":
        create_category(ctx, CategoryCreate(slug="jijin", name="基金"))
        for url in urls:
            create_source(
                ctx, SourceCreate(url=url, category="jijin", mode=mode, interval_minutes=30)
            )
    else:
        stored()  # what the setup phase's create_source calls did: warm the ORM up
    if trace:
        tracemalloc.start()
    if phase == "setup":
        results["first"] = poll("first")
        clock.advance(minutes=31)
        results["second"] = poll("second")
    else:
        results["again"] = poll("again")
    if trace:
        tracemalloc.stop()
    ctx.db.dispose()
    return results


# -- the parent: serve, run the children, check, print ------------------------------------

LABELS = {"first": "first", "second": "second", "again": "second*"}


def run_child(upstream: Upstream, phase: str, mode: str, numbers: range, db_path: str) -> dict:
    before = upstream.counts()
    command = [sys.executable, __file__, "--child", phase, "--mode", mode, "--db", db_path]
    command += ["--port", str(upstream.port), "--feeds", f"{numbers.start}:{numbers.stop}"]
    if TRACE:
        command.append("--trace")
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    results = json.loads(done.stdout.strip().splitlines()[-1])
    after = upstream.counts()
    served = {str(k): after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    expected = (
        {"200": len(numbers), "304": len(numbers)} if phase == "setup" else {"304": len(numbers)}
    )
    problems = [] if served == expected else [f"upstream answered {served}, not {expected}"]
    for label, run in results.items():
        problems += check(label, mode, len(numbers), run)
    if problems:
        raise SystemExit(f"bench/sources.py: {mode}: " + "; ".join(problems))
    return results


def check(label: str, mode: str, count: int, run: dict) -> list[str]:
    """What is wrong with one poll's figures, if anything."""
    problems = []
    status = "200" if label == "first" else "304"
    if run["polled"] != count or run["statuses"] != [status] or run["errors"]:
        problems.append(
            f"{label} poll: {run['polled']} polled, statuses {run['statuses']}, not {count} "
            f"x {status}; errors {run['errors']}"
        )
    if label == "first":
        expected = count * ENTRIES
        table = "posts" if mode == "posts" else "external_items"
        if run["new"] != expected or run["stored"][table] != expected:
            problems.append(f"first poll: {run['new']} new, {run['stored']}, not {expected}")
    elif run["new"] or run["updated"] or run["stored"] != run["before"]:
        problems.append(
            f"{label} poll stored something: {run['new']} new, {run['updated']} updated, "
            f"rows {run['before']} -> {run['stored']}"
        )
    return problems


def main() -> None:
    per_mode = FEEDS // len(MODES)
    results: dict[str, dict] = {}
    with Upstream() as upstream, TemporaryDirectory() as tmp:
        size = sum(len(feed.identity.body) for feed in upstream.feeds.values()) // FEEDS
        zipped = sum(len(feed.gzipped.body) for feed in upstream.feeds.values()) // FEEDS
        print(f"sources: serving {FEEDS} feeds on {HOST}:{upstream.port}", file=sys.stderr)
        for index, mode in enumerate(MODES):
            numbers = range(index * per_mode, (index + 1) * per_mode)
            db_path = f"{tmp}/{mode}.db"
            results[mode] = run_child(upstream, "setup", mode, numbers, db_path)
            results[mode] |= run_child(upstream, "again", mode, numbers, db_path)

    print(
        f"sources: {FEEDS} RSS feeds x {ENTRIES} entries served from {HOST} (~{size // 1024} KiB "
        f"each, {zipped // 1024} KiB gzipped); {per_mode} sources per mode, each mode in its own "
        f"processes and database; concurrency {CONCURRENCY}; SQLite"
    )
    columns = ["mode", "poll", "answers", "wall", "per source", "rss peak +"]
    columns += ["traced peak"] if TRACE else []
    print(f"{columns[0]:<9}{columns[1]:<9}" + "".join(f"{c:>12}" for c in columns[2:]) + "  stored")
    for mode in MODES:
        for label, run in results[mode].items():
            figures = [
                f"{run['polled']} x {'/'.join(run['statuses'])}",
                f"{run['wall']:.2f}s",
                f"{run['wall'] / run['polled'] * 1e3:.1f}ms",
                f"{run['rss_kib'] / 1024:.1f}MiB",
            ]
            figures += [f"{run['traced_kib'] / 1024:.1f}MiB"] if TRACE else []
            rows = ", ".join(f"{name} {count}" for name, count in run["stored"].items() if count)
            print(
                f"{mode:<9}{LABELS[label]:<9}"
                + "".join(f"{figure:>12}" for figure in figures)
                + f"  {run['new']} new; rows: {rows}"
            )
    ratios = ", ".join(
        f"{mode} {results[mode]['second']['wall'] / results[mode]['first']['wall']:.3f}"
        for mode in MODES
    )
    print(f"second/first wall time: {ratios}; the 304 polls stored nothing (checked)")
    print(
        f"rss peak +: peak RSS growth during the poll ({results[MODES[0]]['first']['rss_how']});"
        " second: same process, right after the first poll (reusing memory the first freed);"
    )
    print("second*: one more all-304 poll, in a fresh process on the same database")
    if TRACE:
        print(
            "traced peak: tracemalloc peak above the poll's start; with --trace, wall times and"
            " RSS include tracemalloc's own cost"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trace",
        action="store_true",
        help="also report tracemalloc peaks (about 4x slower; wall and RSS then skewed)",
    )
    parser.add_argument("--child", choices=("setup", "again"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--feeds", help=argparse.SUPPRESS)
    args = parser.parse_args()
    TRACE = args.trace
    if args.child:
        # Before create_app, whose basicConfig would log every migration at INFO.
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        first, stop = (int(part) for part in args.feeds.split(":"))
        urls = [f"http://{HOST}:{args.port}/feeds/{number}.xml" for number in range(first, stop)]
        print(json.dumps(run_child_phase(args.child, args.mode, urls, args.db, args.trace)))
    else:
        main()
