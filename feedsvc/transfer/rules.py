"""What a row must satisfy beyond its column types: the rules the API and services enforce
on every write, which the database itself does not check (no CHECK constraints). A restored
row that broke one could make a feed fail (a negative feed length is a PostgreSQL error in
LIMIT; a site_state row other than id 1 leaves the site feed without validators) or make the
scheduler misbehave, so restore refuses it with the rule it breaks. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from feedsvc.content import is_absolute_http_url, is_url_safe_slug
from feedsvc.models import POST_FORMATS, POST_STATUSES, SOURCE_MODES

Rule = tuple[str, Callable[[Any], bool], str]  # column, holds?, what it must be


def _between(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: low <= value <= high


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda value: value in choices


def _nonempty(value: Any) -> bool:
    return bool(value and value.strip())


def _sha256_hex(value: Any) -> bool:
    return len(value) == 64 and all(char in "0123456789abcdef" for char in value)


_VERSION: Rule = ("content_version", _between(1, 2**31 - 1), "a positive integer")

RULES: Mapping[str, tuple[Rule, ...]] = {
    "site_state": (("id", lambda value: value == 1, "1"), _VERSION),
    "categories": (
        ("slug", is_url_safe_slug, "a slug: a-z, 0-9 and single hyphens"),
        ("name", _nonempty, "non-empty"),
        ("feed_length", _between(1, 1000), "from 1 to 1000"),
        ("position", _between(0, 100_000), "from 0 to 100000"),
        _VERSION,
    ),
    "removed_categories": (("slug", is_url_safe_slug, "a slug: a-z, 0-9 and single hyphens"),),
    "tags": (("name", _nonempty, "non-empty"), ("slug", _nonempty, "non-empty"), _VERSION),
    "posts": (
        ("slug", is_url_safe_slug, "a slug: a-z, 0-9 and single hyphens"),
        ("guid", _nonempty, "non-empty"),
        ("title", _nonempty, "non-empty"),
        ("status", _one_of(POST_STATUSES), " or ".join(POST_STATUSES)),
        ("format", _one_of(POST_FORMATS), " or ".join(POST_FORMATS)),
    ),
    "sources": (
        ("url", is_absolute_http_url, "an absolute http(s) URL"),
        ("mode", _one_of(SOURCE_MODES), " or ".join(SOURCE_MODES)),
        ("interval_minutes", _between(1, 7 * 24 * 60), "from 1 to 10080"),
        ("consecutive_errors", _between(0, 2**31 - 1), "not negative"),
    ),
    "related_items": (("rank", _between(1, 1000), "from 1 to 1000"),),
    "api_tokens": (("token_hash", _sha256_hex, "a SHA-256 hex digest"),),
}


def broken_rule(table: str, row: Mapping[str, Any]) -> str | None:
    """The first rule ``row`` breaks, as "column: must be ...", or None."""
    for column, holds, wanted in RULES.get(table, ()):
        value = row[column]
        if value is not None and not holds(value):
            return f"{column}: must be {wanted}"
    if table == "related_items" and (row["related_post_id"] is None) == (
        row["external_item_id"] is None
    ):
        return "exactly one of related_post_id and external_item_id must be set"
    return None
