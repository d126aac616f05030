"""Upstream sources: fetch → parse → decide (→ store, wired elsewhere).

- ``fetch``: HTTP with limits, SSRF guard, conditional GET → FetchResult.
- ``parse``: bytes → ParsedFeed of typed, sanitized ParsedEntry (the only
  module that imports feedparser).
- ``decide``: pure; FetchResult + SourceState → next SourceState, and parsed
  entries + what is stored → EntryPlan.
"""

from feedsvc.sources.decide import (
    EntryPlan,
    PlannedEntry,
    SourceState,
    StoredRef,
    backoff,
    content_hash,
    decide_entries,
    decide_source,
)
from feedsvc.sources.fetch import FetchLimits, FetchResult, fetch, parse_retry_after
from feedsvc.sources.parse import FeedParseError, ParsedEntry, ParsedFeed, parse_feed

__all__ = [
    "EntryPlan",
    "FeedParseError",
    "FetchLimits",
    "FetchResult",
    "ParsedEntry",
    "ParsedFeed",
    "PlannedEntry",
    "SourceState",
    "StoredRef",
    "backoff",
    "content_hash",
    "decide_entries",
    "decide_source",
    "fetch",
    "parse_feed",
    "parse_retry_after",
]
