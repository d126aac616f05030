"""A new feed version renders only the entries that changed (feeds/render.py's EntryCache).

Every check compares the bytes a warm process serves after a change with the bytes a new
process (empty caches) serves for the same data: the entry cache may save work, never
change an answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask

from feedsvc import create_app
from feedsvc.feeds.document import EntryDocument
from feedsvc.feeds.render import ENTRY_OVERHEAD, EntryCache
from feedsvc.feeds.service import _ENTRIES
from feedsvc.related import refresh
from tests.factories import Factory

FEEDS = ["/feeds/licai-fangfa.rss", "/feeds/licai-fangfa.atom", "/feeds/all.rss", "/feeds/all.atom"]


def _entries(app: Flask) -> EntryCache:
    found = app.extensions["feedsvc"].memory[_ENTRIES]
    assert isinstance(found, EntryCache)
    return found


def _as_a_new_process_serves(app: Flask, path: str) -> bytes:
    fresh = create_app(
        settings=app.extensions["feedsvc"].settings, clock=app.extensions["feedsvc"].clock
    )
    try:
        response = fresh.test_client().get(path)
        assert response.status_code == 200
        return response.get_data()
    finally:
        fresh.extensions["feedsvc"].db.dispose()


def _same_as_a_new_process(app: Flask, client: Any) -> None:
    for path in FEEDS:
        assert client.get(path).get_data() == _as_a_new_process_serves(app, path), path


def test_a_new_post_renders_one_entry_per_format(app: Flask, client: Any, factory: Factory) -> None:
    for _ in range(5):
        factory.post()
    _same_as_a_new_process(app, client)
    cache = _entries(app)
    misses = cache.misses
    factory.post(title="新来的一篇：年终奖怎么分配")
    category_feeds = FEEDS[:2]
    for path in category_feeds:
        assert "年终奖怎么分配" in client.get(path).get_data(as_text=True)
    assert cache.misses == misses + 2  # the new post, once as RSS and once as Atom
    _same_as_a_new_process(app, client)


def test_edits_renames_and_related_lists_reach_the_entries(
    app: Flask, client: Any, factory: Factory, auth: dict[str, str], ctx: Any
) -> None:
    first = factory.post(title="基金定投入门")
    factory.post(title="债券基金怎么选")
    _same_as_a_new_process(app, client)

    edited = client.patch(
        f"/api/v1/posts/{first.id}", json={"title": "定投入门（修订）"}, headers=auth
    )
    assert edited.status_code == 200
    assert "定投入门（修订）" in client.get(FEEDS[0]).get_data(as_text=True)
    _same_as_a_new_process(app, client)

    renamed = client.patch(
        "/api/v1/categories/licai-fangfa", json={"name": "理财之道"}, headers=auth
    )
    assert renamed.status_code == 200
    assert "理财之道" in client.get(FEEDS[1]).get_data(as_text=True)
    _same_as_a_new_process(app, client)

    assert "相关内容" not in client.get(FEEDS[0]).get_data(as_text=True)
    refresh.rebuild(ctx, None)  # the related job: the two posts are alike
    body = client.get(FEEDS[0]).get_data(as_text=True)
    assert "相关内容" in body and "债券基金怎么选" in body
    _same_as_a_new_process(app, client)


def _entry(n: int, size: int) -> EntryDocument:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return EntryDocument(
        guid=f"tag:x.test,2026-01-01:post/{n}",
        title=f"第{n}篇",
        link=f"https://x.test/posts/{n}",
        author="",
        summary="",
        content_html="字" * size,
        published=moment,
        updated=moment,
        category_name="理财方法",
        category_url="https://x.test/categories/licai",
        tags=(),
    )


def test_the_entry_cache_is_bounded_in_bytes() -> None:
    each = 100 + len("字" * 1000) + ENTRY_OVERHEAD
    cache = EntryCache(max_bytes=3 * each + 10)
    for n in range(5):
        cache.put("rss", _entry(n, 1000), b"x" * 100)
    assert cache.size == 3 * each and cache.size <= 3 * each + 10
    assert [cache.get("rss", _entry(n, 1000)) is not None for n in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    cache.get("rss", _entry(2, 1000))  # used last: kept when the next one comes in
    cache.put("rss", _entry(9, 1000), b"x" * 100)
    assert cache.get("rss", _entry(2, 1000)) is not None
    assert cache.get("rss", _entry(3, 1000)) is None
    cache.put("atom", _entry(1, 10_000), b"y" * 100)  # alone larger than the budget: not kept
    assert cache.get("atom", _entry(1, 10_000)) is None and cache.size == 3 * each
    assert cache.get("atom", _entry(2, 1000)) is None  # the format is part of the key
