"""The API's response shapes, written once: serialize.py fills them, contract.py publishes them.

Each serializer builds one of these models by keyword, so a field missing from the code or the
model is an error at once, and the OpenAPI contract describes exactly what is sent.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

# Times are sent as ISO 8601 strings in the site's time zone, e.g. 2026-03-15T09:30:00+08:00.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedLinks(_Shape):
    rss: str
    atom: str


class Category(_Shape):
    slug: str
    name: str
    description: str
    language: str
    position: int
    feed_length: int
    url: str
    feeds: FeedLinks
    created_at: Timestamp
    updated_at: Timestamp


class Post(_Shape):
    id: int
    slug: str
    guid: str = Field(description="RFC 4151 tag URI; never changes (atom:id, RSS guid)")
    url: str
    feeds: FeedLinks
    category: str
    title: str
    author: str
    summary: str
    format: Literal["html", "markdown"]
    content: str = Field(description="the body as given")
    content_html: str = Field(description="every page, sanitized HTML")
    pages: list[str]
    page_count: int
    tags: list[str]
    status: Literal["draft", "published"]
    published_at: Timestamp
    created_at: Timestamp
    updated_at: Timestamp


class RelatedItem(_Shape):
    rank: int
    score: float
    kind: Literal["post", "external"]
    id: int | None
    slug: str | None
    title: str
    summary: str
    url: str
    source: str | None
    computed_at: Timestamp


class SourceState(_Shape):
    etag: str | None
    last_modified: str | None
    last_status: int | None
    last_fetched_at: Timestamp | None
    next_fetch_at: Timestamp | None
    consecutive_errors: int
    last_error: str | None
    disabled_reason: str | None


class Source(_Shape):
    id: int
    url: str
    category: str
    mode: Literal["related", "posts"]
    interval_minutes: int
    enabled: bool
    title: str | None
    state: SourceState
    created_at: Timestamp
    updated_at: Timestamp


class Run(_Shape):
    id: int
    job: str
    trigger: str
    status: str
    started_at: Timestamp
    finished_at: Timestamp | None
    items: int | None
    error: str | None


class Lease(_Shape):
    name: str
    owner: str | None
    expires_at: Timestamp | None


class Job(_Shape):
    name: str
    description: str
    next_due_at: Timestamp | None
    running: bool
    requested_run: int | None  # a run asked for that the scheduler has not started yet
    # Items waiting for the job (websub: bodies owed, pings owed, requests to verify); None
    # for a job that keeps no backlog.
    backlog: int | None
    lease: Lease
    runs: list[Run]


class WebSubSubscription(_Shape):
    """A verified subscription of the built-in hub (W3C WebSub §5.1)."""

    id: int
    topic: str
    callback: str
    lease_seconds: int
    has_secret: bool  # the secret itself is never shown
    created_at: Timestamp
    verified_at: Timestamp
    expires_at: Timestamp
    owed: bool  # the topic changed since the last body this subscriber received
    delivered_at: Timestamp | None
    failures: int  # deliveries failed in a row
    failing_since: Timestamp | None
    next_attempt_at: Timestamp | None
    last_error: str | None


class WebSubRequest(_Shape):
    """A request the built-in hub answered 202 and is still acting on (WebSub §5.2-5.3)."""

    id: int
    mode: Literal["subscribe", "unsubscribe", "denied"]  # denied: the callback is to be told
    topic: str
    callback: str
    reason: str | None  # why it is denied
    requested_at: Timestamp
    attempts: int  # verifications tried (up to 3: 404 or a wrong echo end it at once)
    next_attempt_at: Timestamp
    last_error: str | None


class JobRequested(_Shape):
    job: str
    status: Literal["requested"]
    run: int  # follow it in GET /jobs/runs?job=NAME (requested -> running -> its outcome)


class ErrorDetail(_Shape):
    code: str
    message: str
    fields: dict[str, str]


class Error(_Shape):
    error: ErrorDetail


Item = TypeVar("Item", bound=BaseModel)


class Page(_Shape, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: last")
