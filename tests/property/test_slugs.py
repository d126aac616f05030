"""Slugs: any title gives a valid, bounded slug; the same title N times gives N slugs."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedsvc.content import is_url_safe_slug, slug_from_title
from feedsvc.repo.tags import get_or_create_tags
from feedsvc.schemas import CategoryCreate, PostCreate
from feedsvc.services.categories import create_category
from feedsvc.services.posts import create_post
from tests.property.strategies import NASTY, fewer, hostile_text

# models.Post.slug is String(200); a generated one is the base plus "-<n>".
MAX_BASE = 80


@given(title=hostile_text(), max_length=st.integers(1, 200))
@example(title="理财 ETF", max_length=80)
@example(title="！！！", max_length=80)
@example(title="\ud800\x00\ufffe", max_length=80)
@example(title="a" * 10_000, max_length=80)
@example(title="ab-cd", max_length=3)
def test_slug_from_any_title_is_valid_and_bounded(title: str, max_length: int) -> None:
    slug = slug_from_title(title, max_length=max_length)
    assert is_url_safe_slug(slug), slug
    assert slug == "post" or 0 < len(slug) <= max_length


def test_slug_rule_rejects_what_it_must() -> None:
    # The property above is only as strong as this check: it must say no to these.
    for bad in ("", "-a", "a-", "a--b", "A", "a b", "拼音", "a_b", "a\n", "ａ"):
        assert not is_url_safe_slug(bad), bad


_categories = itertools.count(1)
same_title = st.one_of(
    hostile_text(max_pieces=4).map(lambda text: text[:300]),
    st.sampled_from(NASTY),
    st.just("理财方法入门"),
)


@pytest.mark.usefixtures("backend")
@settings(
    max_examples=fewer(10),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(title=same_title, n=st.integers(2, 6))
@example(title="理财方法入门", n=12)
@example(title="！！！", n=3)
def test_same_title_n_times_gives_n_distinct_valid_slugs(ctx: Any, title: str, n: int) -> None:
    slug = f"s{next(_categories)}"
    create_category(ctx, CategoryCreate(slug=slug, name=f"分类{slug}"))
    try:
        data = PostCreate(title=title, category=slug, content="正文")
    except ValueError:
        return  # nothing of the title survives cleaning: a 422, not a slug question
    slugs = [create_post(ctx, data).slug for _ in range(n)]
    assert len(set(slugs)) == n, slugs
    assert all(is_url_safe_slug(s) and len(s) <= 200 for s in slugs), slugs
    base = slug_from_title(data.title)
    assert all(s == base or s.startswith(f"{base}-") for s in slugs), (base, slugs)


@pytest.mark.usefixtures("backend")
def test_tag_names_that_slug_alike_still_get_distinct_slugs(ctx: Any) -> None:
    # Was a KeyError (a 500) at the 100th: repo/tags.py tried base-2 ... base-99, then gave up.
    names = [emoji * n for emoji in "💰✨" for n in range(1, 51)]  # each slugs to "post"
    with ctx.db.write() as session:
        tags = get_or_create_tags(session, names)
        assert len({tag.slug for tag in tags}) == len(names)
        assert all(is_url_safe_slug(tag.slug) and len(tag.slug) <= 120 for tag in tags)


@pytest.mark.usefixtures("backend")
def test_a_tag_whose_every_slug_is_taken_is_a_conflict(ctx: Any, factory: Any) -> None:
    """Only a hash collision on top of ten namesakes gets here: a 409, and nothing written."""
    from feedsvc.errors import Conflict
    from feedsvc.models import Tag
    from feedsvc.repo.tags import _slug_candidates

    with ctx.db.write() as session:
        for number, slug in enumerate(_slug_candidates("储蓄")):
            session.add(Tag(name=f"占位{number}", slug=slug))
    before = factory.counts()
    with pytest.raises(Conflict) as info, ctx.db.write() as session:
        get_or_create_tags(session, ["预算", "储蓄"])
    assert info.value.message == "no free slug for tag '储蓄'"
    assert factory.counts() == before  # 预算 was rolled back with it
