"""Typed inputs of the write operations, validated once (API bodies, CLI options, data files).

``parse_input(Model, data)`` turns pydantic's errors into one ``Invalid`` with a message per
field, so the API answers 422 with ``fields`` and the CLI prints one line.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from feedsvc.content import clean_xml_text, is_absolute_http_url, is_url_safe_slug
from feedsvc.errors import BadRequest, Invalid
from feedsvc.sources.guard import url_problem

RESERVED_CATEGORY_SLUGS = frozenset({"all", "tags", "api", "static", "posts", "categories"})

# Ids are 32-bit on PostgreSQL (INTEGER) and at most 63-bit on SQLite: every id we accept from
# a URL, a cursor or an argument fits the smaller, so no larger number ever reaches a driver.
MAX_ID = 2**31 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,30}")


def parse_whole_number(text: str) -> int | None:
    """ASCII digits only: ``str.isdigit`` also accepts '²' and '٣', which are not numbers here."""
    return int(text) if _ASCII_DIGITS.fullmatch(text) else None


def parse_id(text: str) -> int | None:
    """A row id written in ASCII digits, within what both backends store; None otherwise."""
    number = parse_whole_number(text)
    return number if number is not None and 1 <= number <= MAX_ID else None


def _clean_text(value: Any) -> Any:
    # XML 1.0 forbids these characters; they are dropped on write (and again on render).
    return clean_xml_text(value).strip() if isinstance(value, str) else value


def _slug(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not is_url_safe_slug(value):
        raise ValueError("must be lowercase ASCII letters, digits and single hyphens")
    return value


def _aware_or_naive_datetime(value: Any) -> Any:
    # Only ISO 8601 / RFC 3339 strings (no epoch numbers: too easy to get wrong).
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string, e.g. 2026-03-15T09:30:00+08:00")
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read {value[:40]!r} as a date-time; use ISO 8601, "
            "e.g. 2026-03-15T09:30:00+08:00"
        ) from None


# Constraints sit on the str itself, validators after them (the last one listed runs first):
# so pydantic checks the cleaned text and says "characters", not "items after validation".
Clean = BeforeValidator(_clean_text)


def _sent_within(max_length: int) -> BeforeValidator:
    """A length limit holds for the text as sent, before cleaning drops anything (as the
    contract's maxLength says); the limit after cleaning is the StringConstraints'."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > max_length:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters",
                {"max_length": max_length},
            )
        return value

    return BeforeValidator(check)


Text = Annotated[str, Clean]
Title = Annotated[str, StringConstraints(min_length=1, max_length=300), Clean, _sent_within(300)]
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"  # the contract's copy of is_url_safe_slug
Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=SLUG_PATTERN),
    BeforeValidator(_slug),
    Clean,
    _sent_within(100),
]
PostSlug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=SLUG_PATTERN),
    BeforeValidator(_slug),
    Clean,
    _sent_within(200),
]
TagName = Annotated[str, StringConstraints(min_length=1, max_length=50), Clean, _sent_within(50)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), Clean, _sent_within(200)]
Author = Annotated[str, StringConstraints(max_length=200), Clean, _sent_within(200)]
Description = Annotated[str, StringConstraints(max_length=2000), Clean, _sent_within(2000)]
Summary = Description
Body = Annotated[str, StringConstraints(max_length=2_000_000), Clean, _sent_within(2_000_000)]
When = Annotated[datetime, BeforeValidator(_aware_or_naive_datetime)]


class _Input(BaseModel):
    # Strict: "position": true or "3" is a 422, not 1 or 3 (JSON has types; we keep them).
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, strict=True)


class CategoryCreate(_Input):
    slug: Slug
    name: Name
    description: Description = ""
    language: Annotated[
        str, StringConstraints(max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    ] = "zh-CN"
    position: Annotated[int, Field(ge=0, le=100_000)] = 0
    feed_length: Annotated[int, Field(ge=1, le=1000)] = 20

    @field_validator("slug")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_CATEGORY_SLUGS:
            raise ValueError(f"{value!r} is reserved by the URL map")
        return value


def _no_null(schema: dict[str, Any]) -> None:
    """A PATCH field is given a value or left out; null is refused, so the contract says so."""
    for field in schema.get("properties", {}).values():
        branches = [b for b in field.pop("anyOf", []) if b.get("type") != "null"]
        field.pop("default", None)
        if len(branches) == 1:
            field.update(branches[0])
        elif branches:
            field["anyOf"] = branches


class _Patch(_Input):
    model_config = ConfigDict(json_schema_extra=_no_null)


class CategoryUpdate(_Patch):
    """Every field optional; the slug is the feed's URL and never changes."""

    name: Name | None = None
    description: Description | None = None
    language: (
        Annotated[
            str, StringConstraints(max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
        ]
        | None
    ) = None
    position: Annotated[int, Field(ge=0, le=100_000)] | None = None
    feed_length: Annotated[int, Field(ge=1, le=1000)] | None = None


class PostCreate(_Input):
    title: Title
    category: Slug
    content: Body
    format: Literal["html", "markdown"] = "markdown"
    slug: PostSlug | None = None
    author: Author = ""
    summary: Summary | None = None
    tags: Annotated[list[TagName], Field(max_length=30)] = []
    status: Literal["draft", "published"] = "published"
    published_at: When | None = None


class PostUpdate(_Patch):
    title: Title | None = None
    category: Slug | None = None
    content: Body | None = None
    format: Literal["html", "markdown"] | None = None
    slug: PostSlug | None = None
    author: Author | None = None
    # An empty string asks for the summary to be derived from the content again.
    summary: Summary | None = None
    tags: Annotated[list[TagName], Field(max_length=30)] | None = None
    status: Literal["draft", "published"] | None = None
    published_at: When | None = None


def _feed_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not is_absolute_http_url(value):
        raise ValueError("must be an absolute http:// or https:// URL")
    problem = url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


FeedUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2000, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+"),
    BeforeValidator(_feed_url),
    Clean,
    _sent_within(2000),
]
Minutes = Annotated[int, Field(ge=1, le=7 * 24 * 60)]


class SourceCreate(_Input):
    url: FeedUrl
    category: Slug
    mode: Literal["related", "posts"] = "related"
    interval_minutes: Minutes | None = None  # None: sources.default_interval_minutes
    enabled: bool = True


class SourceUpdate(_Patch):
    category: Slug | None = None
    mode: Literal["related", "posts"] | None = None
    interval_minutes: Minutes | None = None
    enabled: bool | None = None


# -- query strings -------------------------------------------------------------------------------
# Query values arrive as text; these models read them (and describe them in the OpenAPI contract).

DEFAULT_PAGE, MAX_PAGE = 20, 100


def _page_limit(value: Any) -> Any:
    number = parse_whole_number(value) if isinstance(value, str) else None
    if number is None or not 1 <= number <= MAX_PAGE:
        raise ValueError(f"must be a whole number from 1 to {MAX_PAGE}")
    return number


class _Query(BaseModel):
    # An unknown parameter is a 400: a typo such as ?categroy= must not list everything.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListQuery(_Query):
    limit: Annotated[int, BeforeValidator(_page_limit), Field(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE
    # No length bound here: the cursor module checks it, with the one message for bad cursors.
    cursor: (
        Annotated[
            str,
            Field(
                description="next_cursor of the previous page",
                json_schema_extra={"minLength": 1, "maxLength": 512},
            ),
        ]
        | None
    ) = None


class PostListQuery(ListQuery):
    category: (
        Annotated[str, Field(description="a category slug; one that names none: no items")] | None
    ) = None
    tag: Annotated[str, Field(description="a tag name; one that names none: no items")] | None = (
        None
    )
    status: Literal["draft", "published"] | None = None


class RunListQuery(ListQuery):
    job: Annotated[str, Field(description="a job name; one that names none: no items")] | None = (
        None
    )


class CategoryDeleteQuery(_Query):
    move_to: (
        Annotated[str, Field(description="move the category's posts and sources here first")] | None
    ) = None


M = TypeVar("M", bound=BaseModel)


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "literal_error":
        return "must be one of " + str(error["msg"]).removeprefix("Input should be ")
    return str(error["msg"]).removeprefix("Value error, ")


def _field_messages(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        fields.setdefault(_field_name(error["loc"]), _message(error))
    return fields


def parse_query(model: type[M], args: dict[str, str]) -> M:
    """A query string read into ``model``; a bad value is a 400 naming the parameter."""
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        fields = _field_messages(exc)
        summary = "; ".join(f"{key} {value}" for key, value in fields.items())
        raise BadRequest(summary, fields=fields) from None


def parse_input(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object", fields={"body": "must be an object"})
    # In a PATCH body a field is either given a value or left out; null is not a value.
    nulls = sorted(key for key, value in data.items() if value is None)
    if nulls and model in (CategoryUpdate, PostUpdate, SourceUpdate):
        raise Invalid(
            f"invalid input: {', '.join(nulls)} must not be null",
            fields={key: "must not be null" for key in nulls},
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = _field_messages(exc)
        summary = "; ".join(f"{key}: {value}" for key, value in fields.items())
        raise Invalid(f"invalid input: {summary}", fields=fields) from None


# --- WebSub: a subscriber's request to the built-in hub (W3C WebSub §5.1) -----------------

MAX_CALLBACK = 2000
MAX_TOPIC = 2048
# §5.1: hub.secret "MUST be less than 200 bytes".
MAX_SECRET_BYTES = 199
_NO_CONTROLS = re.compile(r"[\x00-\x20\x7f]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _hub_url(max_length: int, *, normalise: bool) -> BeforeValidator:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError("must be an absolute http(s) URL")
        if _NO_CONTROLS.search(value):
            raise ValueError("must not contain spaces or control characters")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.fragment:
            raise ValueError("must not have a #fragment")
        if parts.username is not None or parts.password is not None:
            # They would be stored, listed and logged in the clear.
            raise ValueError("must not carry credentials (user:password@)")
        if _BAD_ESCAPE.search(value):
            raise ValueError("has a % not followed by two hexadecimal digits")
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        if not normalise:  # a topic is compared with this site's feed URLs as given
            return value
        # RFC 3986 §6.2.2.1: scheme and host are case-insensitive; one subscription per URL.
        netloc = parts.netloc.lower()
        return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, ""))

    return BeforeValidator(check)


_LEASE_DIGITS = re.compile(r"[0-9]+")
# Any longer number is as good as infinite: the hub clamps it to websub.max_lease_seconds.
_LEASE_CAP = 10**12


def _lease_seconds(value: Any) -> Any:
    # §5.1 leaves the lease to the hub: a huge number asks for the longest, never an error.
    if not isinstance(value, str) or not _LEASE_DIGITS.fullmatch(value):
        raise ValueError("must be a whole number of seconds (ASCII digits)")
    return _LEASE_CAP if len(value) > 12 else int(value)


def _secret(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if "\x00" in value:
        raise ValueError("must not contain NUL")
    if len(value.encode("utf-8")) > MAX_SECRET_BYTES:
        raise ValueError(f"must be less than 200 bytes (WebSub §5.1), got {len(value.encode())}")
    return value or None  # an empty secret is no secret


class HubRequest(BaseModel):
    """The form a subscriber POSTs to /websub. §5.1: unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    mode: Annotated[Literal["subscribe", "unsubscribe"], Field(alias="hub.mode")]
    callback: Annotated[str, _hub_url(MAX_CALLBACK, normalise=True), Field(alias="hub.callback")]
    topic: Annotated[str, _hub_url(MAX_TOPIC, normalise=False), Field(alias="hub.topic")]
    lease_seconds: Annotated[
        int | None, BeforeValidator(_lease_seconds), Field(alias="hub.lease_seconds")
    ] = None
    secret: Annotated[str | None, BeforeValidator(_secret), Field(alias="hub.secret")] = None
