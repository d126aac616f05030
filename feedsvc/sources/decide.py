"""Decide what a fetch means for a source and its entries.

Pure: no I/O, no clock (``now`` is passed in), no globals. The job that wires
fetch → parse → decide → store reads the stored state, calls these, and writes
back what they return.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from feedsvc.sources.fetch import FetchResult
from feedsvc.sources.parse import ParsedEntry

MAX_BACKOFF = timedelta(hours=6)

# RFC 9110 §10.2.3: a server may send Retry-After with 503, and RFC 6585 §4
# with 429; we honour it only there.
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class SourceState:
    url: str
    etag: str | None = None
    last_modified: str | None = None
    consecutive_errors: int = 0
    enabled: bool = True
    interval: timedelta = timedelta(hours=1)
    next_fetch_at: datetime | None = None  # None: never (disabled)
    last_status: int | None = None
    last_error: str | None = None
    disabled_reason: str | None = None


def decide_source(
    state: SourceState,
    result: FetchResult,
    now: datetime,
    *,
    parse_error: str | None = None,
) -> SourceState:
    """Return the source's state after ``result`` (and the parse, if it failed)."""
    after = replace(state, last_status=result.status)
    if result.status == 410:
        # RFC 9110 §15.5.11: gone for good, and the server says so.
        return replace(
            after,
            enabled=False,
            disabled_reason="gone (410)",
            last_error=result.error,
            next_fetch_at=None,
        )
    if result.error is None and parse_error is None:
        return _succeeded(after, result, now)
    errors = state.consecutive_errors + 1
    if result.status in _RETRY_AFTER_STATUSES and result.retry_after is not None:
        next_fetch_at = max(result.retry_after, now + state.interval)
    else:
        next_fetch_at = now + backoff(state.interval, errors)
    # On a parse error the validators are not stored: a 304 next time would
    # hide the same body we could not read, and the error with it.
    return replace(
        after,
        consecutive_errors=errors,
        last_error=parse_error or result.error,
        next_fetch_at=next_fetch_at,
    )


def _succeeded(state: SourceState, result: FetchResult, now: datetime) -> SourceState:
    if result.status == 304:
        # RFC 9110 §15.4.5: a 304 carries the validators a 200 would have;
        # keep the stored ones where it sent none.
        etag = result.etag or state.etag
        last_modified = result.last_modified or state.last_modified
    else:
        etag, last_modified = result.etag, result.last_modified
    return replace(
        state,
        # Only a chain of 301/308 moves the source (RFC 9110 §15.4.2, §15.4.9);
        # fetch sets permanent_redirect_url only then.
        url=result.permanent_redirect_url or state.url,
        etag=etag,
        last_modified=last_modified,
        consecutive_errors=0,
        last_error=None,
        next_fetch_at=now + state.interval,
    )


def backoff(interval: timedelta, errors: int) -> timedelta:
    """interval * 2**errors, at most MAX_BACKOFF."""
    # Compare in seconds with a bounded exponent: 2**errors * interval
    # overflows timedelta after a few dozen errors.
    seconds = interval.total_seconds() * 2.0 ** min(errors, 64)
    return timedelta(seconds=min(seconds, MAX_BACKOFF.total_seconds()))


# -- entries ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRef:
    """What the store already holds for one entry of this source."""

    entry_id: str
    link: str | None
    content_hash: str


@dataclass(frozen=True)
class PlannedEntry:
    entry: ParsedEntry
    content_hash: str
    stored_id: str | None  # the stored entry this one updates; None if new


@dataclass(frozen=True)
class EntryPlan:
    new: tuple[PlannedEntry, ...]
    changed: tuple[PlannedEntry, ...]
    unchanged: tuple[str, ...]  # stored entry ids
    deleted: tuple[str, ...]  # entry ids skipped: the publisher deleted them here
    duplicates: tuple[str, ...]  # entry ids seen earlier in the same feed


def content_hash(entry: ParsedEntry) -> str:
    """A hash of what readers see; dates are left out on purpose.

    Many feeds rewrite <updated> on every build: that is not a change.
    """
    fields = [
        entry.title,
        entry.link,
        entry.author,
        entry.summary_html,
        entry.content_html,
        list(entry.tags),
    ]
    encoded = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def decide_entries(
    existing: Mapping[str, StoredRef],
    entries: Iterable[ParsedEntry],
    deleted_ids: set[str],
) -> EntryPlan:
    """Sort ``entries`` into new, changed, unchanged, deleted and duplicates.

    ``existing`` maps entry id → StoredRef. An entry is matched to a stored one
    by id, then by link (some feeds change their guid but not the link).
    """
    by_link = {ref.link: ref for ref in existing.values() if ref.link}
    new: list[PlannedEntry] = []
    changed: list[PlannedEntry] = []
    unchanged: list[str] = []
    deleted: list[str] = []
    duplicates: list[str] = []
    seen_ids: set[str] = set()
    seen_links: set[str] = set()
    for entry in entries:
        if entry.entry_id in seen_ids or (entry.link is not None and entry.link in seen_links):
            duplicates.append(entry.entry_id)
            continue
        seen_ids.add(entry.entry_id)
        if entry.link is not None:
            seen_links.add(entry.link)
        stored = existing.get(entry.entry_id) or (by_link.get(entry.link) if entry.link else None)
        if entry.entry_id in deleted_ids or (stored is not None and stored.entry_id in deleted_ids):
            deleted.append(entry.entry_id)
            continue
        digest = content_hash(entry)
        if stored is None:
            new.append(PlannedEntry(entry, digest, None))
        elif stored.content_hash == digest:
            unchanged.append(stored.entry_id)
        else:
            changed.append(PlannedEntry(entry, digest, stored.entry_id))
    return EntryPlan(
        tuple(new), tuple(changed), tuple(unchanged), tuple(deleted), tuple(duplicates)
    )
