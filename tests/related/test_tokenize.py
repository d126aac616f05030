"""Index terms: what a post's text turns into before weighting."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from feedsvc.related.engine import RelatedIndex
from feedsvc.related.tokenize import STOP_WORDS, tag_terms, tokenize

from .corpus import BOILERPLATE, load_corpus

REPO = Path(__file__).resolve().parents[2]


def test_latin_words_are_lowercased() -> None:
    assert {"etf", "ai", "reits", "lpr"} <= set(tokenize("ETF、AI投顾、REITs和LPR"))


def test_full_width_latin_and_digits_are_folded() -> None:
    assert tokenize("ＥＴＦ　２０２１") == ["etf", "2021"]


@pytest.mark.parametrize(
    ("text", "number"),
    [("2021年LPR下调", "2021"), ("利率3.5%", "3.5"), ("沪深300指数", "300")],
)
def test_numbers_are_kept_whole(text: str, number: str) -> None:
    assert number in tokenize(text)


def test_chinese_is_segmented_into_words() -> None:
    terms = tokenize("我每月定投指数基金")
    assert {"定投", "指数", "基金"} <= set(terms)
    assert "定" not in terms and "投" not in terms  # the general dictionary splits 定投


def test_compounds_also_yield_their_parts() -> None:
    # Search-engine mode: a post about 房贷利率 shares terms with one about 房贷.
    assert {"房贷利率", "房贷", "利率"} <= set(tokenize("存量房贷利率调整"))


def test_dictionary_words_mixing_latin_and_chinese_stay_whole() -> None:
    assert "a股" in tokenize("A股和港股")


def test_stop_words_and_punctuation_are_dropped() -> None:
    terms = tokenize("我的钱和你的钱，都是在银行里的。The ETF is one of the best!")
    assert terms == ["钱", "钱", "银行", "etf", "one", "best"]
    assert all(re.fullmatch(r"[\w.]+", term) for term in terms)


def test_empty_and_blank_text_give_no_terms() -> None:
    assert tokenize("") == []
    assert tokenize(" \n\t。，！") == []


def test_tag_terms_keep_the_whole_tag_beside_its_words() -> None:
    assert tag_terms("指数基金") == ["#指数基金", "指数", "基金"]
    assert tag_terms("ETF") == ["#etf", "etf"]


def test_boilerplate_is_not_stop_listed_but_idf_makes_it_weightless() -> None:
    # The blog's risk line (理财有风险，投资需谨慎。) is in every post. It is left to IDF
    # rather than a stop list: its terms end up with a tiny fraction of a topic word's weight.
    boilerplate = tokenize(BOILERPLATE)
    assert boilerplate and not set(boilerplate) & STOP_WORDS
    index = RelatedIndex()
    index.rebuild(post.doc for post in load_corpus())
    idf = index.idf_snapshot()
    median = statistics.median(idf.idf.values())
    for term in boilerplate:
        assert idf.weight(term) < 0.01 * median, term
    assert idf.weight("国债") > 0.5 * median


def test_segmenter_loads_lazily_and_once_per_process() -> None:
    probe = """
import sys
from feedsvc.related import tokenize as module
assert "rjieba" not in sys.modules, "imported eagerly"
for _ in range(3):
    module.tokenize("国债和定投")
assert "rjieba" in sys.modules
info = module._segmenter.cache_info()
assert (info.misses, info.hits) == (1, 2), info
"""
    subprocess.run([sys.executable, "-c", probe], cwd=REPO, check=True)
