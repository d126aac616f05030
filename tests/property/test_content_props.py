"""Post content (content.py) on any body: pages and summaries that a feed can carry."""

from __future__ import annotations

import lxml.html
from hypothesis import example, given
from hypothesis import strategies as st

from feedsvc.content import absolutize_links, derive_summary, render_pages
from tests.property import oracle
from tests.property.strategies import hostile_text


def _unsafe(page: str) -> list[str]:
    """Script elements and event-handler attributes in ``page`` as a browser would parse it
    (text that merely reads "<script>", escaped in a code block, is fine)."""
    root = lxml.html.fragment_fromstring(page, create_parent="div")
    return [
        f"<{element.tag} {name}>"
        for element in root.iter()
        for name in ["", *element.attrib]
        if element.tag == "script" or name.lower().startswith("on")
    ]


MARKUP = ("<script>alert(1)</script>", "<!--nextpage-->", "**粗**", "[链](/a)", "<p onclick=x>")
bodies = st.lists(st.one_of(hostile_text(max_pieces=4), st.sampled_from(MARKUP)), max_size=6).map(
    "".join
)


@given(body=bodies, fmt=st.sampled_from(["markdown", "html"]))
@example(body="\x00\ud800<!--nextpage-->\x85<script>x</script>", fmt="html")
@example(body="正文" * 5_000 + "<!--nextpage-->" + "\u202e第二页", fmt="markdown")
def test_pages_and_summary_are_clean_and_bounded(body: str, fmt: str) -> None:
    pages = render_pages(body, fmt)
    for page in pages:
        assert page.strip() and oracle.cleaned(page) == page
        assert _unsafe(page) == [], page
        linked = absolutize_links(page, "http://feeds.example.test/posts/p")
        assert oracle.cleaned(linked) == linked
    summary = derive_summary(pages)
    assert oracle.cleaned(summary) == summary
    assert len(summary) <= 121  # 120 characters, and an ellipsis when cut mid-sentence
