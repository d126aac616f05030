"""Page cursors, as properties: every key round-trips; every change to a cursor is a 400."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedsvc.errors import BadRequest
from feedsvc.schemas import MAX_ID
from feedsvc.web.api import cursor

ids = st.integers(min_value=0, max_value=MAX_ID)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)
names = st.text(min_size=1, max_size=200)
SETTINGS = settings()  # the loaded profile (tests/hypothesis_profiles.py)


@SETTINGS
@given(moments, ids)
def test_a_posts_key_round_trips(when: datetime, ident: int) -> None:
    raw = cursor.encode("posts", (when, ident))
    assert cursor.decode("posts", raw, (datetime, int)) == (when.astimezone(UTC), ident)


@SETTINGS
@given(ids, names)
def test_a_category_key_round_trips(position: int, slug: str) -> None:
    raw = cursor.encode("categories", (position, slug))
    assert cursor.decode("categories", raw, (int, str)) == (position, slug)


@SETTINGS
@given(moments, ids, st.data())
def test_any_change_to_a_cursor_is_a_bad_request(when: datetime, ident: int, data) -> None:  # type: ignore[no-untyped-def]
    raw = cursor.encode("posts", (when, ident))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != raw[index]))
    tampered = raw[:index] + replacement + raw[index + 1 :]
    try:
        decoded = cursor.decode("posts", tampered, (datetime, int))
    except BadRequest:
        return
    # base64 has slack in its last character's low bits: the same bytes may decode; never others.
    assert decoded == (when.astimezone(UTC), ident)


@SETTINGS
@given(st.text(max_size=600))
@example("")
@example(".")
@example("e30.AAAAAAAAAAA")
@example("\x80.\x80")  # found by this test: a 500 (compare_digest refuses non-ASCII str)
def test_arbitrary_text_is_never_a_cursor_unless_given_out(raw: str) -> None:
    with pytest.raises(BadRequest):
        cursor.decode("posts", raw, (datetime, int))


@pytest.mark.parametrize(
    "values",
    [
        ["posts", "9999-12-31T23:59:59-12:00", 1],
        ["posts", "2026-01-01T00:00:00+08:00", True],
        ["posts", "2026-01-01T00:00:00+08:00", 1.5],
        ["posts", "2026-01-01T00:00:00+08:00", 10**30],
        ["posts", "2026-01-01T00:00:00+08:00", float("inf")],
        ["posts", "2026-01-01T00:00:00+08:00"],
        ["sources", 1],
        {"posts": 1},
    ],
)
def test_a_forged_tag_still_meets_the_strict_checks(values: object) -> None:
    import base64
    import json

    payload = json.dumps(values).encode()
    raw = base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + cursor._tag(payload)
    with pytest.raises(BadRequest):
        cursor.decode("posts", raw, (datetime, int))


@pytest.mark.parametrize(
    "payload", [b'["posts", 1', "不是 JSON".encode(), b"\xff\xfe", b"[" * 150 + b"]" * 150]
)
def test_a_forged_tag_on_text_that_is_not_json(payload: bytes) -> None:
    """The tag's key is public: a client can sign anything, JSON or not; still a 400."""
    import base64

    raw = base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + cursor._tag(payload)
    with pytest.raises(BadRequest):
        cursor.decode("posts", raw, (datetime, int))
