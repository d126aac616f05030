"""Turn post text into index terms: segmented Chinese words, lowercased Latin words, numbers.

Segmenter: rjieba 0.2.2 (Rust port of jieba), chosen over jieba 0.42.1 on these figures from
`python bench/related.py --segmenters` (test corpus of 63 posts; 2-core machine):

    agreement       identical output on 63/63 posts in cut, cut_for_search, and
                    cut_for_search with our FINANCE_WORDS added to both (5,660/5,660 tokens)
    throughput      ~1 MB of post text: jieba 0.82 s, rjieba 0.03 s (~30x); tokenize() with
                    its filters 0.18 s
    start-up        jieba 0.66 s and 92 MiB (dictionary cache warm; a cold start also writes
                    a 9 MB cache to the temp dir), rjieba 0.10-0.13 s and 42 MiB

Same segmentation, far cheaper, and no unmaintained dependency: rjieba.

Mode: search-engine mode (cut_for_search), which adds a long word's dictionary sub-words
(存量房贷利率 -> 存量, 房贷, 利率, 房贷利率), so one post's 房贷 meets another's 房贷利率.
Strict precision@5 on the test corpus (tests/related/test_precision.py), engine defaults:

    cut                                     0.863     + character bigrams   0.880
    cut_for_search                          0.913     + character bigrams   0.887
    cut_for_search without FINANCE_WORDS    0.890

Character bigrams help plain cut a little but cost search mode 2.6 points, so none are
added; `char_bigrams()` stays for re-measuring.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator

from feedsvc.content import clean_xml_text

# Finance terms the general jieba dictionary lacks and cuts badly: "定投" comes out as 定/投
# (or glued to the previous character: 看定/投), "年金险" as 年/金险, "久期" as 看久期.
FINANCE_WORDS: tuple[str, ...] = (
    "定投", "止盈", "止损", "年金险", "消费贷", "网贷", "债基", "纯债", "久期",
    "月供", "提额", "宽基", "折溢价", "账单日", "还款日", "犹豫期", "利率债", "信用债",
)  # fmt: skip

# Function words and filler that say nothing about a topic. Finance words that merely recur
# everywhere (理财, 风险, 投资) are deliberately absent: IDF pushes them down, and a stop list
# that grows with the corpus would need maintaining.
STOP_WORDS_ZH: frozenset[str] = frozenset(
    """
    的 地 得 了 着 过 是 在 和 与 及 或 也 就 都 而 并 又 还 再 才 很 更
    最 太 挺 不 没 没有 有 会 要 能 可 可以 可能 让 给 把 被 对 从 向 往 到
    于 为 以 之 其 此 该 各 每 某 这 那 这个 那个 这些 那些 这样 那样 这种
    那种 这里 那里 一个 一种 一些 一下 一点 一直 一般 我 你 您 他 她 它 我们
    你们 他们 她们 它们 大家 自己 别人 人 什么 怎么 怎样 如何 为什么 哪 哪些 哪里
    吗 呢 吧 啊 呀 嘛 哦 如果 因为 所以 因此 但 但是 而且 或者 还是 虽然 即便
    即使 然后 之后 以后 之前 以前 时 时候 已经 正在 就是 只是 只有 只 比 比较
    非常 通常 往往 常常 其实 当然 等 等等 个 上 下 中 里 后 前 来 去 说 看 做
    用 则 即 如 若 由 将 已 当 需 需要 应该 不是 多 少 好 些 几 同样 所谓
    觉得 知道 起来 出来 一 两 年 月 日 天 元 次
    """.split()  # noqa: SIM905  (a literal list would be one word per line)
)
STOP_WORDS_EN: frozenset[str] = frozenset(
    """
    a an the of to in on at for from by with and or but not no nor is are was were be been being
    it its this that these those as if then than so such do does did have has had i you he she
    we they my your his her our their me him them us what which who whom how why when where can
    could will would should may might must there here all any some each per via vs etc about
    into over under also just only very more most
    """.split()  # noqa: SIM905
)
STOP_WORDS: frozenset[str] = STOP_WORDS_ZH | STOP_WORDS_EN

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_ONLY = re.compile(f"[{_CJK}]+")
_CJK_RUN = re.compile(f"[{_CJK}]{{2,}}")
# Segmenter tokens that mix CJK with Latin or digits ("a股", "h股") are dictionary words: keep.
_CJK_MIXED = re.compile(f"(?=.*[{_CJK}])[{_CJK}a-z0-9]+")
# Decimals stay whole ("3.5"); "3.5%" and "2021年" lose their unit.
_LATIN_OR_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)*[a-z]*|[a-z]+[a-z0-9]*")


@functools.cache
def _segmenter() -> Callable[[str], list[str]]:
    """Load rjieba once per process, on first use (import costs ~0.1 s and ~40 MiB)."""
    import rjieba

    # rjieba builds a default instance at import; a second one would cost another ~25 MiB,
    # so the domain words go into that one. Nothing else in feedsvc uses rjieba.
    for word in FINANCE_WORDS:
        rjieba.add_word(word, None, None)
    # Search-engine mode: long words come with their dictionary sub-words (房贷利率 -> 房贷,
    # 利率, 房贷利率), so "房贷" in one post matches "房贷利率" in another. See the docstring.
    return rjieba.cut_for_search


def _fold_width(text: str) -> str:
    """NFKC folds full-width Latin and digits ("ＥＴＦ１０" -> "ETF10").

    Case is kept for the segmenter: its dictionary has "A股", not "a股". What no feed can
    carry goes first (clean_xml_text): rjieba is Rust, and a lone surrogate, which a Python
    str can hold but UTF-8 cannot, made it raise UnicodeEncodeError mid-refresh.
    """
    return unicodedata.normalize("NFKC", clean_xml_text(text))


def _terms(token: str) -> Iterator[str]:
    token = token.strip().lower()
    if _CJK_ONLY.fullmatch(token) or _CJK_MIXED.fullmatch(token):
        yield token
        return
    for match in _LATIN_OR_NUMBER.finditer(token):
        term = match.group()
        # A lone Latin letter is noise ("A 类份额" -> "a"); lone digits are kept as numbers.
        if len(term) > 1 or term.isdigit():
            yield term


@functools.lru_cache(maxsize=1 << 16)
def _token_terms(token: str) -> tuple[str, ...]:
    # Tokens repeat across posts: a rebuild of 100,000 posts filters each distinct one once
    # (the cache is bounded: 65,536 tokens, a few MiB).
    return tuple(term for term in _terms(token) if term not in STOP_WORDS)


def tokenize(text: str) -> list[str]:
    """Index terms of `text` in order, stop words removed; compounds also yield sub-words."""
    return [term for token in _segmenter()(_fold_width(text)) for term in _token_terms(token)]


def char_bigrams(text: str) -> list[str]:
    """Overlapping character pairs of each Chinese run: a segmentation-free signal."""
    return [
        run[i : i + 2] for run in _CJK_RUN.findall(_fold_width(text)) for i in range(len(run) - 1)
    ]


def tag_terms(tag: str) -> list[str]:
    """A tag's words plus the whole tag as one term ("#指数基金"): tags are chosen by hand,
    so an exact tag match says more than its words do separately."""
    words = tokenize(tag)
    whole = _fold_width(tag).strip().lower()
    return [f"#{whole}", *words] if whole else words
