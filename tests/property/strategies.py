"""Hostile text for the property tests: any code point, and the ones that break things.

``st.characters(codec=None)`` with no category excluded draws from the whole of Unicode,
lone surrogates (category Cs) included: a Python ``str`` can hold them, UTF-8 cannot.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st

# Characters and fragments each known to break some layer: XML 1.0 §2.2 illegal ones (NUL,
# C0 controls, U+FFFE/U+FFFF, lone surrogates), C1 controls (read as cp1252 by feedparser),
# bidi controls (RLO U+202E, RLM U+200F), line ends XML normalizes (CR, CRLF, NEL), a BOM,
# markup and entities that must stay text, and a CDATA end.
NASTY: tuple[str, ...] = (
    "\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\x7f", "\x80", "\x85", "\x9f",
    "\ufffe", "\uffff", "\ud800", "\udbff\udc00", "\udfff", "\ufeff", "\u202e", "\u200f",
    "\u200b", "\u2028", "\r", "\r\n", "\t", "\n", " ", "\u3000", "&", "&amp;", "&#0;",
    "<", "<b>粗体</b>", "</p>", "]]>", "<![CDATA[", '"', "'", "Ã©", "\U0010ffff", "\U0001f4b0",
)  # fmt: skip
CHINESE = "定投指数基金的三个误区，理财有风险。债券基金为什么也会亏？存量房贷利率下调"

any_char = st.characters(codec=None, exclude_categories=())
chinese_words = st.text(st.sampled_from(CHINESE), min_size=1, max_size=12)
fragment = st.one_of(
    st.text(any_char, max_size=20),
    st.sampled_from(NASTY),
    chinese_words,
)


def hostile_text(*, max_pieces: int = 12) -> st.SearchStrategy[str]:
    """Short hostile strings, and now and then one of 10,000 characters."""
    short = st.lists(fragment, max_size=max_pieces).map("".join)
    long = st.tuples(short, st.sampled_from(NASTY), chinese_words).map(
        lambda parts: ("".join(parts) * 10_000)[:10_000]
    )
    return st.one_of(short, short, short, long)


def fewer(divisor: int) -> int:
    """A share of the loaded profile's examples, for properties that touch a database."""
    return max(5, settings().max_examples // divisor)  # settings() inherits the loaded profile
