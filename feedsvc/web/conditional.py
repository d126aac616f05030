"""Conditional GET (RFC 9110 §13): pure functions over header values, no Flask."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

from werkzeug.datastructures import Accept
from werkzeug.http import parse_accept_header


def _opaque(tag: str) -> str:
    """The opaque part of an entity tag, weak prefix and our -gzip suffix removed.

    RFC 9110 §13.1.2: If-None-Match uses the weak comparison, and proxies such as nginx
    weaken ETags (W/"…") when they compress; a coding suffix is the same content too.
    """
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    return tag.removesuffix("-gzip")


def etag_matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    ours = _opaque(etag)
    return any(_opaque(candidate) == ours for candidate in if_none_match.split(",") if candidate)


@lru_cache(maxsize=256)  # feed readers send a handful of distinct headers: parse each once
def accepts_gzip(accept_encoding: str) -> bool:
    """RFC 9110 §12.5.3: gzip (or ``*``) is acceptable with a non-zero quality."""
    return parse_accept_header(accept_encoding, Accept)["gzip"] > 0


@lru_cache(maxsize=256)
def parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def not_modified(
    *, if_none_match: str | None, if_modified_since: str | None, etag: str, last_modified: datetime
) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since counts only without it."""
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if if_modified_since is not None:
        since = parse_http_date(if_modified_since)
        # HTTP dates have whole seconds: compare at that precision.
        return since is not None and since >= last_modified.replace(microsecond=0)
    return False
