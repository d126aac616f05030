"""Hostile text through the real write path, on every backend: PostCreate -> create_post ->
GET /feeds/<category>.rss and .atom. Both parse (lxml, feedparser bozo 0) and show the text
as stored: cleaned (oracle.cleaned) and stripped on write, cleaned again on render.
"""

from __future__ import annotations

import itertools
from html import unescape
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedsvc.schemas import CategoryCreate, PostCreate
from feedsvc.services.categories import create_category
from feedsvc.services.posts import create_post
from tests.feedcheck import parse
from tests.property import oracle
from tests.property.strategies import fewer, hostile_text

ATOM = "{http://www.w3.org/2005/Atom}"
SITE_AUTHOR = "测试编辑部"  # tests/conftest.py overrides_for

pytestmark = pytest.mark.usefixtures("backend")


def _stored(text: str) -> str:
    """What PostCreate keeps of a text field (schemas._clean_text): cleaned, then stripped."""
    return oracle.cleaned(text).strip()


def _fits(limit: int) -> Any:
    return hostile_text().map(lambda text: text[:limit])


titles = _fits(300).filter(lambda text: _stored(text) != "")
tag_names = st.lists(_fits(50).filter(lambda text: _stored(text) != ""), max_size=4)


@st.composite
def posts(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "title": draw(titles),
        "author": draw(_fits(200)),
        "summary": draw(_fits(2000)),
        "tags": draw(tag_names),
        # A word first, so the body is never empty once sanitized (that is a 422).
        "content": "正文：" + draw(hostile_text()),
        "format": draw(st.sampled_from(["markdown", "html"])),
    }


HOSTILE_POST = {
    "title": "\u202e标题\x00\ud800\x85\ufffe",
    "author": "\x7f作者\uffff",
    "summary": "摘要\r\n<b>&amp;</b>\x9f",
    "tags": ["标签\x01", " 标签 ", "Ã©"],
    "content": "正文：\x00<script>x</script>" + "长" * 10_000,
    "format": "markdown",
}


@settings(
    max_examples=fewer(5),
    # One app and database per test: each example adds its own category and post to it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(post=posts())
@example(post=HOSTILE_POST)
def test_hostile_post_reaches_both_feeds_intact(
    ctx: Any, client: Any, post: dict[str, Any]
) -> None:
    slug, category = _next_category(ctx)
    created = create_post(ctx, PostCreate(category=slug, **post))

    title = _stored(post["title"])
    author = _stored(post["author"]) or SITE_AUTHOR
    summary = _stored(post["summary"])
    # Each tag once, after the category (render.py), in the database's collation order of
    # names (models.Post.tags), which differs between backends: compared sorted.
    tags = sorted({_stored(tag) for tag in post["tags"]} - {category})
    assert created.title == title

    rss = client.get(f"/feeds/{slug}.rss")
    assert rss.status_code == 200
    seen, root = parse(rss.data)
    (item,) = root.findall("channel/item")
    assert item.findtext("title") == title
    assert sorted(c.text for c in item.findall("category")[1:]) == tags
    (entry,) = seen.entries
    assert entry.id == created.guid
    if not oracle.guessed_html_by_feedparser(title):
        assert entry.title == oracle.seen_by_feedparser(title)
    assert entry.author == oracle.seen_by_feedparser(author)
    if summary:
        assert unescape(entry.summary) == oracle.seen_by_feedparser_as_html(summary)

    atom = client.get(f"/feeds/{slug}.atom")
    assert atom.status_code == 200
    seen, root = parse(atom.data)
    (item,) = root.findall(f"{ATOM}entry")
    assert item.findtext(f"{ATOM}title") == title
    (entry,) = seen.entries
    assert entry.title == oracle.seen_by_feedparser(title)
    assert entry.author == oracle.seen_by_feedparser_as_name(author)
    assert sorted(t.term for t in entry.tags[1:]) == tags
    if summary:
        assert entry.summary == oracle.seen_by_feedparser(summary)


_categories = itertools.count(1)


def _next_category(ctx: Any) -> tuple[str, str]:
    """A new category per example, so its feed holds exactly the example's post."""
    slug = f"c{next(_categories)}"
    name = f"分类{slug}"
    create_category(ctx, CategoryCreate(slug=slug, name=name))
    return slug, name
