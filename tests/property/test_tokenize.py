"""The related tokenizer (related/tokenize.py) on any text: never raises, gives clean terms."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import example, given

from feedsvc.related.tokenize import STOP_WORDS, char_bigrams, tag_terms, tokenize
from tests.property.strategies import hostile_text

REGRESSIONS = (
    "a\ud800b 理财",  # a lone surrogate: rjieba (Rust) raised UnicodeEncodeError
    "\udbff\udc00定投",
    "\x00\ufffe\uffff",
    "ＥＴＦ１０ 指数基金 3.5% 2021年",
)


def _examples(test: Callable[[str], None]) -> Callable[[str], None]:
    for text in REGRESSIONS:
        test = example(text)(test)
    return test


@given(hostile_text())
@_examples
def test_tokenize_gives_terms_without_space_or_stop_words(text: str) -> None:
    terms = tokenize(text)
    assert isinstance(terms, list)
    for term in terms:
        assert isinstance(term, str) and term
        assert not any(char.isspace() for char in term), term
        assert term == term.lower() and term not in STOP_WORDS
        term.encode("utf-8")  # no lone surrogate reaches the index


@given(hostile_text(), hostile_text())
def test_a_finance_word_between_spaces_is_always_found(before: str, after: str) -> None:
    # The other side of "never raises": hostile neighbours do not make it read nothing.
    assert "定投" in tokenize(f"{before} 定投 {after}")


@given(hostile_text())
@_examples
def test_char_bigrams_are_pairs_of_chinese_characters(text: str) -> None:
    for pair in char_bigrams(text):
        assert len(pair) == 2 and all("\u3400" <= char <= "\ufaff" for char in pair), pair


@given(hostile_text(max_pieces=3))
@_examples
def test_tag_terms_lead_with_the_whole_tag(tag: str) -> None:
    terms = tag_terms(tag)
    assert all(isinstance(term, str) and term for term in terms)
    if terms and terms[0].startswith("#"):
        assert terms[1:] == tokenize(tag)
        terms[0].encode("utf-8")
