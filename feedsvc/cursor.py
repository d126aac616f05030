"""Opaque page cursors: which list, and the sort key of the last item a page showed.

Used by the API's ``?cursor=`` and by the feeds' RFC 5005 pages (``?before=``).

A cursor is ``base64url(JSON [list, key...])`` and a 64-bit BLAKE2b tag of it. The tag's key
is in this file, not a secret: it turns any change to a cursor into a 400 ("not one this API
gave out") rather than a silently different page. A client that forges a tag still meets the
strict checks below (types, ranges, an aware date that converts to UTC), so a cursor can only
name a position a reader could reach by paging. Pure: no Flask, no database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from feedsvc.errors import BadRequest
from feedsvc.schemas import MAX_ID

MAX_CHARS = 512
_KEY = b"feedsvc page cursor v1"

Key = tuple[int | str | datetime, ...]
Shape = tuple[type[int] | type[str] | type[datetime], ...]


class BadCursor(BadRequest):
    def __init__(self) -> None:
        super().__init__(
            "cursor is not one this API gave out: use next_cursor from the previous page",
            fields={"cursor": "is not one this API gave out"},
        )


def _tag(payload: bytes) -> str:
    digest = hmac.new(_KEY, payload, hashlib.blake2b).digest()[:8]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode(kind: str, key: Sequence[int | str | datetime]) -> str:
    values = [kind, *(v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in key)]
    payload = json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _tag(payload)


def decode(kind: str, raw: str, shape: Shape) -> Key:
    """The sort key of a cursor ``encode(kind, ...)`` gave out; BadCursor otherwise."""
    body, dot, tag = raw.partition(".")
    # Non-ASCII can never be ours (and compare_digest refuses it on str).
    if len(raw) > MAX_CHARS or not raw.isascii() or not dot:
        raise BadCursor()
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise BadCursor() from None
    if not hmac.compare_digest(_tag(payload), tag):
        raise BadCursor()
    try:
        values = json.loads(payload)
    except (ValueError, RecursionError):
        raise BadCursor() from None
    if not isinstance(values, list) or len(values) != len(shape) + 1 or values[0] != kind:
        raise BadCursor()
    return tuple(_value(value, wanted) for value, wanted in zip(values[1:], shape, strict=True))


def _value(value: object, wanted: type) -> int | str | datetime:
    # bool is an int in Python and 1.5 or 1e999 are floats in JSON: only true integers pass.
    if wanted is int and type(value) is int and 0 <= value <= MAX_ID:
        return value
    if wanted is str and isinstance(value, str) and 0 < len(value) <= 200:
        return value
    if wanted is datetime and isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
            if when.tzinfo is not None:
                return when.astimezone(UTC)  # 9999-12-31T23:59:59-12:00 overflows here
        except (ValueError, OverflowError):
            pass
    raise BadCursor()
