"""Benchmark the related-posts engine on synthetic Chinese finance corpora.

    python bench/related.py               # 1,000 and 10,000 documents
    python bench/related.py --big         # and 50,000 (a few minutes on 2 cores)
    python bench/related.py --huge        # and 100,000
    python bench/related.py --segmenters  # jieba vs rjieba on the test corpus
    python bench/related.py --db 1000 10000 100000 [--root /work/main]
        # the jobs on a real SQLite site (build/bench-related-*.db): `refresh.rebuild`, then a
        # new process (a restarted scheduler) adding 10 posts and running `refresh.refresh`;
        # --root measures another checkout (e.g. main) with the same corpus, side by side

Each corpus size runs in its own child process, so peak RSS (VmHWM) belongs to that size
alone; "base" is the RSS after generating the documents and loading the segmenter, before
the index exists. Incremental time is the median over 5 batches of 10 new documents upserted
into the rebuilt index. The engine bounds that work by a constant ((candidate_terms + pairs)
x posting_cap), so the 10k/1k ratio must stay <= 3. Quality columns compare the lists with
brute force over every document (40 sampled posts): overlap, and topic precision@5.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if "--root" in sys.argv:  # measure another checkout's feedsvc (before/after)
    ROOT = Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
sys.path.insert(0, str(ROOT))

from feedsvc.related.engine import RelatedDoc, RelatedIndex  # noqa: E402
from feedsvc.related.tokenize import FINANCE_WORDS, tokenize  # noqa: E402

# Vocabulary for synthetic posts: common Chinese personal-finance words.
FINANCE_VOCAB = """
国债 储蓄国债 凭证式 电子式 记账式 票面利率 付息 兑付 到期 提前兑取 债券
债券基金 纯债 短债 长债 久期 信用债 利率债 可转债 二级债基 回撤 净值 赎回
申购 费率 管理费 托管费 销售服务费 养老保险 社保 缴费基数 缴费年限 个人账户
统筹 养老金 退休 延迟退休 灵活就业 个人养老金 年金险 保单 现金价值 预定利率
万能账户 结算利率 犹豫期 退保 保费 终身 领取 寿险 重疾险 医疗险 意外险 保额
受益人 房贷 房贷利率 月供 等额本息 等额本金 提前还款 公积金 商业贷款 组合贷款
首付 存量房贷 重定价 基点 加点 存款 存款利率 定期存款 活期 大额存单 存款保险
降息 加息 利息 本金 货币基金 零钱 理财产品 结构性存款 指数基金 定投 止盈 止损
估值 市盈率 市净率 股息率 沪深 中证 创业板 科创板 宽基 行业指数 红利 场内
场外 联接基金 证券账户 券商 佣金 折价 溢价 跟踪误差 流动性 成交量 限价单
信用卡 免息期 账单日 还款日 最低还款 分期 手续费 积分 额度 提额 征信 逾期
消费贷 网贷 年化利率 借款 贷款 还款 罚息 用途 装修 汇率 美元 黄金 白银 外汇
通胀 通缩 人民币 资产配置 再平衡 仓位 波动 风险偏好 复利 收益率 现金流 预算
记账 储蓄率 应急金 负债 资产 净资产 工资 奖金 个税 专项扣除 退税 房租 房产税
契税 遗产 赠与 信托 股票 分红 除息 配股 增发 回购 上市 退市 牛市 熊市 震荡
反弹 抄底 追高 割肉 套牢 杠杆 融资 融券 期货 期权 对冲 套利 基金经理 季报
年报 持仓 重仓 调仓 换手率 规模 清盘 封闭期 开放式 子女教育 教育金 养老规划
家庭保障 财务自由
""".split()  # noqa: SIM905  (one word per line otherwise)
LATIN = ["ETF", "LPR", "REITs", "AI", "QDII", "FOF", "CPI", "GDP"]
FILLER = "的 了 和 我 也 可以 就 都 还是 因为 所以 如果 比较 一些 这个 我们 其实 每年 每月".split()  # noqa: SIM905
BOILERPLATE = "理财有风险，投资需谨慎。"
TOPICS = 80
START = datetime(2015, 1, 1, tzinfo=UTC)


def topic_words(topic: int) -> list[str]:
    return random.Random(f"topic-{topic}").sample(FINANCE_VOCAB, 12)


def topic_of(key: str) -> int:
    """Topic of a synthetic post: the first draw of synthetic_doc(n)."""
    return random.Random(int(key.removeprefix("post:"))).randrange(TOPICS)


def synthetic_doc(n: int) -> RelatedDoc:
    """Document number n; the same n always gives the same document."""
    rng = random.Random(n)
    words = topic_words(rng.randrange(TOPICS))

    def pick() -> str:
        roll = rng.random()
        if roll < 0.45:
            # Zipf-like inside a topic: its first words are its main subject.
            return words[min(int(rng.expovariate(0.35)), len(words) - 1)]
        if roll < 0.75:
            return rng.choice(FINANCE_VOCAB)
        if roll < 0.8:
            return rng.choice((rng.choice(LATIN), f"{rng.randrange(2010, 2026)}年"))
        return rng.choice(FILLER)

    sentences = [
        "".join(pick() for _ in range(rng.randrange(5, 10))) + "。"
        for _ in range(rng.randrange(3, 7))
    ]
    return RelatedDoc(
        key=f"post:{n}",
        title="".join(rng.sample(words[:5], 2)) + rng.choice(("怎么选", "的经验", "笔记", "")),
        tags=tuple(rng.sample(words[:4], 2)),
        body="".join(sentences) + BOILERPLATE,
        published_at=START + timedelta(hours=n),
    )


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    # VmHWM rather than ru_maxrss, which Linux carries over from the parent across exec.
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status)[1]) / 1024  # type: ignore[index]


def measure(size: int) -> dict[str, float]:
    docs = [synthetic_doc(n) for n in range(size)]
    tokenize("预热分词器")  # load the segmenter outside the timings
    base = rss_mib()
    index = RelatedIndex()
    started = time.perf_counter()
    index.rebuild(docs)
    rebuild_s = time.perf_counter() - started
    quality = measure_quality(index, docs)

    upsert_s, changed = [], []
    for batch in range(5):
        new = [synthetic_doc(size + batch * 10 + i) for i in range(10)]
        started = time.perf_counter()
        changed.append(len(index.upsert(new)))
        upsert_s.append(time.perf_counter() - started)
    edits = [
        RelatedDoc(d.key, d.title, d.tags, synthetic_doc(10**7 + n).body, d.published_at)
        for n, d in enumerate(docs[:: size // 10][:10])
    ]
    started = time.perf_counter()
    index.upsert(edits)
    edit_s = time.perf_counter() - started

    return {
        "docs": size,
        "rebuild_s": rebuild_s,
        "upsert10_ms": statistics.median(upsert_s) * 1000,
        "edit10_ms": edit_s * 1000,
        "changed_lists": statistics.median(changed),
        **quality,
        "base_mib": base,
        "peak_mib": peak_rss_mib(),
    }


def measure_quality(index: RelatedIndex, docs: list[RelatedDoc]) -> dict[str, float]:
    """What bounding the candidates costs, against brute-force lists over every document:
    overlap with them, and the share of list slots holding a post of the same topic."""
    sample = docs[:: max(1, len(docs) // 40)]
    found = {d.key: [r.key for r in index.related(d.key)] for d in sample}
    exact = {d.key: exact_top(index, d.key, docs) for d in sample}

    def topic_precision(lists: dict[str, list[str]]) -> float:
        hits = sum(topic_of(key) == topic_of(other) for key in lists for other in lists[key])
        return hits / (len(lists) * index.top_k)

    return {
        "candidates": statistics.mean(len(index.candidates(d.key)) for d in sample),
        "list_len": statistics.mean(len(found[d.key]) for d in sample),
        "overlap": sum(len(set(found[k]) & set(exact[k])) for k in found)
        / max(1, sum(len(e) for e in exact.values())),
        "p5": topic_precision(found),
        "p5_exact": topic_precision(exact),
    }


def exact_top(index: RelatedIndex, key: str, docs: list[RelatedDoc]) -> list[str]:
    """Brute force: the top k by score over every document, ignoring the candidate index."""
    every = index.scores_with_all(key)
    scored = [
        (-score, -d.published_at.timestamp(), d.key)
        for d in docs
        if d.key != key and (score := every[d.key]) >= index.min_score
    ]
    return [other for _, _, other in heapq.nsmallest(index.top_k, scored)]


def run_child(size: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(size)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    row: dict[str, float] = json.loads(out.splitlines()[-1])
    return row


def bench_engine(sizes: list[int]) -> None:
    columns = (
        ("docs", "docs", "{:>8,}"),
        ("rebuild_s", "rebuild s", "{:>10.1f}"),
        ("upsert10_ms", "upsert 10 ms", "{:>13.1f}"),
        ("edit10_ms", "edit 10 ms", "{:>11.1f}"),
        ("changed_lists", "lists chg", "{:>10.0f}"),
        ("candidates", "cands/doc", "{:>10.0f}"),
        ("list_len", "list len", "{:>9.2f}"),
        ("overlap", "= exact", "{:>8.2f}"),
        ("p5", "topic p@5", "{:>10.2f}"),
        ("p5_exact", "exact p@5", "{:>10.2f}"),
        ("base_mib", "base MiB", "{:>9.0f}"),
        ("peak_mib", "peak MiB", "{:>9.0f}"),
    )
    widths = [len(fmt.format(0)) for _, _, fmt in columns]
    print(" ".join(f"{title:>{w}}" for (_, title, _), w in zip(columns, widths, strict=True)))
    results = {}
    for size in sizes:
        row = results[size] = run_child(size)
        print(" ".join(fmt.format(row[name]) for name, _, fmt in columns), flush=True)
    ratio = results[10_000]["upsert10_ms"] / results[1_000]["upsert10_ms"]
    print(f"\nincremental 10k/1k ratio: {ratio:.2f} (must be <= 3)")
    if ratio > 3:
        sys.exit("FAIL: incremental upsert grows with corpus size")


def bench_segmenters() -> None:
    """jieba vs rjieba on the test corpus: agreement, throughput, start-up cost."""
    import jieba
    import rjieba

    sys.path.insert(0, str(ROOT / "tests"))
    from related.corpus import load_corpus

    texts = [f"{p.doc.title}\n{p.doc.body}" for p in load_corpus()]
    repeated = texts * max(1, 1_000_000 // len("".join(texts).encode()))
    megabytes = len("".join(repeated).encode()) / 1e6
    print(f"test corpus: {len(texts)} posts; throughput on {megabytes:.2f} MB (corpus repeated)")
    for name, code in {
        "jieba": "import jieba; t = jieba.Tokenizer(); t.initialize(); t.lcut('定投')",
        "rjieba": "import rjieba; rjieba.cut('定投')",
    }.items():
        seconds, mib = startup_cost(code)
        print(
            f"{name:>7} start-up (import + dictionary, warm cache): {seconds:.2f} s, {mib:.0f} MiB"
        )

    jieba.setLogLevel(60)
    plain_fast, plain_slow = rjieba.Jieba(), jieba.Tokenizer()  # default dictionaries, HMM
    words_fast, words_slow = rjieba.Jieba(), jieba.Tokenizer()
    for word in FINANCE_WORDS:
        words_fast.add_word(word, None, None)
        words_slow.add_word(word)
    modes = {
        "cut": (plain_fast.cut, plain_slow.lcut),
        "cut_for_search": (plain_fast.cut_for_search, plain_slow.lcut_for_search),
        "search+our words": (words_fast.cut_for_search, words_slow.lcut_for_search),
    }
    for mode, (fast, slow) in modes.items():
        pairs = [(fast(text), slow(text)) for text in texts]
        same_posts = sum(x == y for x, y in pairs)
        same_tokens = sum(a == b for x, y in pairs for a, b in zip(x, y, strict=False))
        total_tokens = sum(max(len(x), len(y)) for x, y in pairs)
        slow_s, fast_s = seconds_to_cut(slow, repeated), seconds_to_cut(fast, repeated)
        print(
            f"{mode:>16}: identical posts {same_posts}/{len(texts)}, "
            f"tokens {same_tokens}/{total_tokens}; "
            f"jieba {slow_s:.2f} s, rjieba {fast_s:.2f} s ({slow_s / fast_s:.0f}x)"
        )
    print(f"feedsvc tokenize (rjieba + filters): {seconds_to_cut(tokenize, repeated):.2f} s")


def startup_cost(code: str) -> tuple[float, float]:
    """Seconds and peak MiB of running `code` in a fresh interpreter.

    The peak is VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would
    report this (larger) process's peak.
    """
    probe = (
        "import re, time; s = time.perf_counter(); "
        f"{code}; print(time.perf_counter() - s, "
        "re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", probe], check=True, capture_output=True, text=True
    )
    seconds, kib = map(float, out.stdout.split())
    return seconds, kib / 1024


def seconds_to_cut(cut: Callable[[str], list[str]], texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        cut(text)
    return time.perf_counter() - started


# -- the jobs on a database -------------------------------------------------------------------


def db_path(size: int) -> Path:
    tag = "main" if "--root" in sys.argv else "here"
    return Path(__file__).resolve().parent.parent / "build" / f"bench-related-{tag}-{size}.db"


def db_context(path: Path):  # type: ignore[no-untyped-def]
    from feedsvc.config import load_settings
    from feedsvc.context import Context
    from feedsvc.db import Database

    url = f"sqlite:///{path}"
    settings = load_settings({"database": {"url": url}}, environ={})
    return Context(settings=settings, db=Database(url))


def insert_posts(ctx, first: int, count: int) -> None:  # type: ignore[no-untyped-def]
    """Synthetic posts as published rows (core inserts: the bench measures the jobs)."""
    from sqlalchemy import insert

    from feedsvc.models import Category, Post, PostChange

    now = datetime.now(UTC)
    with ctx.db.write() as session:
        if session.get(Category, 1) is None:
            session.add(
                Category(
                    id=1,
                    slug="licai",
                    name="理财",
                    created_at=now,
                    updated_at=now,
                    feed_changed_at=now,
                )
            )
            session.flush()
    for start in range(first, first + count, 2000):
        rows, changes = [], []
        for n in range(start, min(start + 2000, first + count)):
            doc = synthetic_doc(n)
            rows.append(
                {
                    "id": n + 1,
                    "slug": f"p{n}",
                    "guid": f"tag:bench,2026:{n}",
                    "category_id": 1,
                    "title": doc.title,
                    "author": "",
                    "summary": "",
                    "summary_given": False,
                    "format": "html",
                    "body": doc.body,
                    "pages": [f"<p>{doc.body}</p>"],
                    "status": "published",
                    "published_at": min(doc.published_at, now),
                    "created_at": now,
                    "updated_at": now,
                    "origin_link": None,
                }
            )
            changes.append({"post_id": n + 1, "changed_at": now})
        with ctx.db.write() as session:
            session.execute(insert(Post), rows)
            if first:  # new posts after the rebuild: in the change log, as a write puts them
                session.execute(insert(PostChange), changes)


def db_child(mode: str, size: int) -> dict[str, float]:
    from feedsvc import migrate
    from feedsvc.related import refresh

    path = db_path(size)
    if mode == "rebuild":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(exist_ok=True)
        ctx = db_context(path)
        migrate.upgrade(ctx.db)
        insert_posts(ctx, 0, size)
        tokenize("预热分词器")
        base = rss_mib()
        started, cpu = time.perf_counter(), time.process_time()
        report = refresh.rebuild(ctx, None)
        return {
            "docs": report.documents,
            "seconds": time.perf_counter() - started,
            "cpu": time.process_time() - cpu,
            "base_mib": base,
            "peak_mib": peak_rss_mib(),
            "rss_mib": rss_mib(),
        }
    # A new process: the scheduler after a restart, ten posts written meanwhile.
    ctx = db_context(path)
    insert_posts(ctx, size + 10**6, 10)
    tokenize("预热分词器")
    base = rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    report = refresh.refresh(ctx, None)
    first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    insert_posts(ctx, size + 2 * 10**6, 10)
    started = time.perf_counter()
    refresh.refresh(ctx, None)
    second = time.perf_counter() - started
    return {
        "docs": report.documents,
        "seconds": first,
        "cpu": first_cpu,
        "next_s": second,
        "base_mib": base,
        "peak_mib": peak_rss_mib(),
        "rss_mib": rss_mib(),
    }


def bench_db(sizes: list[int]) -> None:
    where = ROOT
    print(f"feedsvc from {where}")
    print(
        f"{'docs':>8} {'rebuild s':>10} {'cpu s':>7} {'peak MiB':>9} | "
        f"{'restart+refresh s':>18} {'cpu s':>7} {'peak MiB':>9} {'RSS after':>10} "
        f"{'next refresh s':>15}"
    )
    for size in sizes:
        rows = {}
        for mode in ("rebuild", "restart"):
            args = [sys.executable, __file__, "--db-child", mode, str(size)]
            if "--root" in sys.argv:
                args += ["--root", str(ROOT)]
            out = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True).stdout
            rows[mode] = json.loads(out.splitlines()[-1])
        r, s = rows["rebuild"], rows["restart"]
        print(
            f"{size:>8,} {r['seconds']:>10.1f} {r.get('cpu', 0):>7.1f} {r['peak_mib']:>9.0f} | "
            f"{s['seconds']:>18.2f} {s.get('cpu', 0):>7.2f} {s['peak_mib']:>9.0f} "
            f"{s['rss_mib']:>10.0f} {s['next_s']:>15.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", action="store_true", help="also run 50,000 documents")
    parser.add_argument("--segmenters", action="store_true", help="compare jieba and rjieba")
    parser.add_argument("--huge", action="store_true", help="also run 100,000 documents")
    parser.add_argument("--db", type=int, nargs="+", help="the jobs on an SQLite site of N posts")
    parser.add_argument("--root", help="another checkout's feedsvc (with --db)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process mode
    parser.add_argument("--db-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.db_child:
        print(json.dumps(db_child(args.db_child[0], int(args.db_child[1]))))
    elif args.db:
        bench_db(args.db)
    elif args.one:
        print(json.dumps(measure(args.one)))
    elif args.segmenters:
        bench_segmenters()
    else:
        sizes = [1_000, 10_000] + ([50_000] if args.big else []) + ([100_000] if args.huge else [])
        bench_engine(sizes)


if __name__ == "__main__":
    main()
