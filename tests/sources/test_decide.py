"""decide_source and decide_entries: pure, so plain data in and out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedsvc.sources.decide import (
    MAX_BACKOFF,
    SourceState,
    StoredRef,
    backoff,
    content_hash,
    decide_entries,
    decide_source,
)
from feedsvc.sources.fetch import FetchResult
from feedsvc.sources.parse import ParsedEntry

NOW = datetime(2024, 3, 15, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
URL = "https://blog.example.cn/feed.xml"
MOVED = "https://new.example.cn/feed.xml"


def make_state(**changes: Any) -> SourceState:
    base = SourceState(
        url=URL,
        etag='"old"',
        last_modified="Thu, 14 Mar 2024 00:00:00 GMT",
        consecutive_errors=2,
        interval=HOUR,
        next_fetch_at=NOW,
        last_status=500,
        last_error="fetch: HTTP 500 Internal Server Error",
    )
    return replace(base, **changes)


def make_result(status: int | None = 200, **changes: Any) -> FetchResult:
    base = FetchResult(
        status=status,
        final_url=URL,
        permanent_redirect_url=None,
        etag='"new"',
        last_modified="Fri, 15 Mar 2024 00:00:00 GMT",
        content=b"<rss/>" if status == 200 else None,
    )
    return replace(base, **changes)


def failed(status: int | None, error: str, **changes: Any) -> FetchResult:
    return make_result(status, etag=None, last_modified=None, error=error, **changes)


# -- decide_source -----------------------------------------------------------------

SUCCESS = dict(consecutive_errors=0, last_error=None, next_fetch_at=NOW + HOUR, enabled=True)

STATUS_PATHS = {
    "200 stores the new validators": (
        make_result(200),
        dict(SUCCESS, etag='"new"', last_modified="Fri, 15 Mar 2024 00:00:00 GMT", url=URL),
    ),
    "200 without validators forgets the old ones": (
        make_result(200, etag=None, last_modified=None),
        dict(SUCCESS, etag=None, last_modified=None),
    ),
    "304 without validators keeps the stored ones": (
        make_result(304, etag=None, last_modified=None),
        dict(SUCCESS, etag='"old"', last_modified="Thu, 14 Mar 2024 00:00:00 GMT", last_status=304),
    ),
    "304 with a new etag stores it": (
        make_result(304, etag='"newer"', last_modified=None),
        dict(SUCCESS, etag='"newer"', last_modified="Thu, 14 Mar 2024 00:00:00 GMT"),
    ),
    "301/308 chain moves the url": (
        make_result(200, permanent_redirect_url=MOVED, final_url=MOVED),
        dict(SUCCESS, url=MOVED),
    ),
    "302 hop keeps the url": (
        make_result(200, final_url=MOVED),
        dict(SUCCESS, url=URL),
    ),
    "410 disables the source": (
        failed(410, "fetch: HTTP 410 Gone"),
        dict(
            enabled=False,
            disabled_reason="gone (410)",
            next_fetch_at=None,
            last_status=410,
            last_error="fetch: HTTP 410 Gone",
            consecutive_errors=2,
        ),
    ),
    "429 honours a later Retry-After": (
        failed(429, "fetch: HTTP 429 Too Many Requests", retry_after=NOW + 3 * HOUR),
        dict(next_fetch_at=NOW + 3 * HOUR, consecutive_errors=3, last_status=429),
    ),
    "429 never comes back sooner than the interval": (
        failed(429, "fetch: HTTP 429 Too Many Requests", retry_after=NOW + timedelta(seconds=5)),
        dict(next_fetch_at=NOW + HOUR, consecutive_errors=3),
    ),
    "503 honours Retry-After": (
        failed(503, "fetch: HTTP 503 Service Unavailable", retry_after=NOW + 2 * HOUR),
        dict(next_fetch_at=NOW + 2 * HOUR, consecutive_errors=3),
    ),
    "429 without Retry-After backs off": (
        failed(429, "fetch: HTTP 429 Too Many Requests"),
        dict(next_fetch_at=NOW + 6 * HOUR, consecutive_errors=3),  # 1h * 2**3 capped
    ),
    "500 with Retry-After backs off (not a Retry-After status)": (
        failed(500, "fetch: HTTP 500 Internal Server Error", retry_after=NOW + 5 * MAX_BACKOFF),
        dict(next_fetch_at=NOW + 6 * HOUR, consecutive_errors=3),
    ),
    "404 backs off and keeps the url and validators": (
        failed(404, "fetch: HTTP 404 Not Found"),
        dict(
            url=URL,
            etag='"old"',
            consecutive_errors=3,
            last_status=404,
            last_error="fetch: HTTP 404 Not Found",
            enabled=True,
        ),
    ),
    "timeout: no status, backs off": (
        failed(None, "fetch: read timeout after 5s"),
        dict(last_status=None, last_error="fetch: read timeout after 5s", consecutive_errors=3),
    ),
    "too large: a 200 that failed": (
        failed(200, "fetch: body larger than 10485760 bytes", permanent_redirect_url=MOVED),
        dict(url=URL, etag='"old"', consecutive_errors=3, last_status=200),
    ),
}


@pytest.mark.parametrize(("result", "expected"), STATUS_PATHS.values(), ids=STATUS_PATHS)
def test_status_paths(result: FetchResult, expected: dict[str, Any]) -> None:
    state = decide_source(make_state(), result, NOW)

    for field, value in expected.items():
        assert getattr(state, field) == value, field


def test_a_parse_error_backs_off_and_does_not_store_validators() -> None:
    state = decide_source(
        make_state(consecutive_errors=0), make_result(200), NOW, parse_error="parse: no entries"
    )

    assert state.consecutive_errors == 1
    assert state.last_error == "parse: no entries"
    assert state.last_status == 200
    assert state.etag == '"old"'  # else the next 304 would hide the broken body
    assert state.next_fetch_at == NOW + 2 * HOUR


@pytest.mark.parametrize(
    ("errors_before", "interval", "delay"),
    [
        (0, HOUR, 2 * HOUR),
        (1, HOUR, 4 * HOUR),
        (2, HOUR, 6 * HOUR),  # 8h, capped
        (0, timedelta(minutes=15), timedelta(minutes=30)),
        (2, timedelta(minutes=15), 2 * HOUR),
        (4, timedelta(minutes=15), 6 * HOUR),  # 8h, capped
        (0, timedelta(hours=24), 6 * HOUR),
        (10_000, HOUR, 6 * HOUR),  # no overflow
    ],
)
def test_backoff_doubles_and_is_capped_at_six_hours(
    errors_before: int, interval: timedelta, delay: timedelta
) -> None:
    state = make_state(consecutive_errors=errors_before, interval=interval)

    after = decide_source(state, failed(502, "fetch: HTTP 502 Bad Gateway"), NOW)

    assert after.consecutive_errors == errors_before + 1
    assert after.next_fetch_at == NOW + delay
    assert backoff(interval, errors_before + 1) == delay


def test_success_after_errors_resets_the_count() -> None:
    state = make_state(consecutive_errors=7)

    assert decide_source(state, make_result(200), NOW).consecutive_errors == 0


# -- decide_entries ----------------------------------------------------------------


def make_entry(n: int = 1, **changes: Any) -> ParsedEntry:
    base = ParsedEntry(
        entry_id=f"post-{n}",
        link=f"https://blog.example.cn/p/{n}",
        title=f"第{n}篇",
        author="王小钱",
        summary_html="<p>摘要</p>",
        content_html="<p>正文</p>",
        published=NOW,
        updated=NOW,
        tags=("基金",),
    )
    return replace(base, **changes)


def stored(entry: ParsedEntry, **changes: Any) -> StoredRef:
    ref = StoredRef(entry.entry_id, entry.link, content_hash(entry))
    return replace(ref, **changes)


def refs(*items: StoredRef) -> dict[str, StoredRef]:
    return {ref.entry_id: ref for ref in items}


def test_new_changed_unchanged_and_deleted_entries() -> None:
    same, edited, fresh, deleted = make_entry(1), make_entry(2), make_entry(3), make_entry(4)
    existing = refs(stored(same), stored(edited))

    plan = decide_entries(
        existing, [same, replace(edited, content_html="<p>改过</p>"), fresh, deleted], {"post-4"}
    )

    assert [p.entry.entry_id for p in plan.new] == ["post-3"]
    assert plan.new[0].stored_id is None and plan.new[0].content_hash == content_hash(fresh)
    assert [(p.entry.entry_id, p.stored_id) for p in plan.changed] == [("post-2", "post-2")]
    assert plan.unchanged == ("post-1",)
    assert plan.deleted == ("post-4",)
    assert plan.duplicates == ()


def test_an_entry_whose_guid_changed_is_matched_by_link() -> None:
    old = make_entry(1)
    renamed = replace(old, entry_id="https://blog.example.cn/?p=1")

    plan = decide_entries(refs(stored(old)), [renamed, replace(renamed, title="新标题")], set())

    assert plan.new == ()
    assert plan.unchanged == ("post-1",)
    assert plan.duplicates == ("https://blog.example.cn/?p=1",)


def test_a_changed_entry_matched_by_link_names_the_stored_row() -> None:
    old = make_entry(1)
    renamed = replace(old, entry_id="guid-new", title="新标题")

    plan = decide_entries(refs(stored(old)), [renamed], set())

    assert [(p.entry.entry_id, p.stored_id) for p in plan.changed] == [("guid-new", "post-1")]


def test_duplicates_within_a_feed_keep_the_first() -> None:
    first = make_entry(1)
    same_id = replace(first, link="https://blog.example.cn/other", title="重复")
    same_link = replace(first, entry_id="post-1-copy")

    plan = decide_entries({}, [first, same_id, same_link], set())

    assert [p.entry for p in plan.new] == [first]
    assert plan.duplicates == ("post-1", "post-1-copy")


def test_tombstones_win_even_when_matched_by_link() -> None:
    old = make_entry(1)
    renamed = replace(old, entry_id="guid-new")

    plan = decide_entries(refs(stored(old)), [renamed], {"post-1"})

    assert plan.deleted == ("guid-new",)
    assert plan.new == plan.changed == ()


def test_entries_without_links_are_matched_by_id_only() -> None:
    a = make_entry(1, link=None)
    b = make_entry(2, link=None)

    plan = decide_entries(refs(stored(a)), [a, b], set())

    assert plan.unchanged == ("post-1",)
    assert [p.entry.entry_id for p in plan.new] == ["post-2"]


def test_content_hash_ignores_dates_but_not_content() -> None:
    entry = make_entry(1)

    assert content_hash(entry) == content_hash(replace(entry, updated=NOW + HOUR))
    for change in (
        {"title": "别的"},
        {"content_html": "<p>别的</p>"},
        {"summary_html": "别的"},
        {"tags": ("债券",)},
        {"link": "https://blog.example.cn/x"},
        {"author": None},
    ):
        assert content_hash(entry) != content_hash(replace(entry, **change)), change
