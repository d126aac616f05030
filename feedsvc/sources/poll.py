"""Polling upstream sources: get sources due → fetch (a bounded pool) → parse → decide → store.

Fetching is the only parallel step (it waits on the network); parsing and storing run one
source at a time in the job's thread. Whatever one source does — time out, send a gzip
bomb, malformed XML, an entity-expansion payload — fails that source alone: it is recorded
on the source (with backoff) and the job goes on with the others.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from feedsvc import __version__, metrics
from feedsvc.context import Context
from feedsvc.jobs import Lease
from feedsvc.models import Source
from feedsvc.repo import sources as source_repo
from feedsvc.sources.decide import SourceState, decide_source
from feedsvc.sources.fetch import FetchLimits, FetchResult, fetch
from feedsvc.sources.parse import FeedParseError, parse_feed
from feedsvc.sources.store import StoreReport, store_as_items, store_as_posts

log = logging.getLogger("feedsvc.sources")

BATCH = 200


@dataclass(frozen=True)
class PollOutcome:
    source_id: int
    status: int | None
    error: str | None
    report: StoreReport


def limits(ctx: Context) -> FetchLimits:
    s = ctx.settings.sources
    return FetchLimits(
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout,
        total_timeout=s.total_timeout,
        max_bytes=s.max_bytes,
        max_decompressed_bytes=s.max_decompressed_bytes,
        max_redirects=s.max_redirects,
    )


def user_agent(ctx: Context) -> str:
    return f"feedsvc/{__version__} (+{ctx.settings.site.base_url})"


def fetch_source(
    ctx: Context, url: str, etag: str | None, last_modified: str | None
) -> FetchResult:
    return fetch(
        url,
        etag=etag,
        last_modified=last_modified,
        limits=limits(ctx),
        allow_hosts=frozenset(ctx.settings.sources.allow_hosts),
        user_agent=user_agent(ctx),
        clock=ctx.clock.now,
    )


def _state(source: Source) -> SourceState:
    return SourceState(
        url=source.url,
        etag=source.etag,
        last_modified=source.last_modified,
        consecutive_errors=source.consecutive_errors,
        enabled=source.enabled,
        interval=timedelta(minutes=source.interval_minutes),
        next_fetch_at=source.next_fetch_at,
        last_status=source.last_status,
        last_error=source.last_error,
        disabled_reason=source.disabled_reason,
    )


def process(ctx: Context, source: Source, result: FetchResult) -> PollOutcome:
    """Parse and store one fetched source, then record its new state."""
    now = ctx.clock.now()
    report, parse_error, digest, title = StoreReport(), None, source.content_hash, None
    if result.error is None and result.status == 200 and result.content is not None:
        digest = hashlib.sha256(result.content).hexdigest()
        if digest != source.content_hash:  # same bytes as last time: nothing to parse
            try:
                parsed = parse_feed(
                    result.content,
                    headers=result.headers,
                    url=result.final_url,
                    site_tz=ctx.settings.site.tz,
                    now=now,
                )
                title = parsed.title
                store = store_as_posts if source.mode == "posts" else store_as_items
                report = store(ctx, source, parsed.entries, now)
            except FeedParseError as exc:
                parse_error, digest = str(exc), source.content_hash
    state = decide_source(_state(source), result, now, parse_error=parse_error)
    _save_state(ctx, source.id, state, now, digest, title)
    error = parse_error or result.error
    if error:
        log.warning("source %d %s: %s", source.id, source.url, error)
    return PollOutcome(source.id, result.status, error, report)


def _save_state(
    ctx: Context,
    source_id: int,
    state: SourceState,
    now: datetime,
    digest: str | None,
    title: str | None,
) -> None:
    try:
        _write_state(ctx, source_id, state, now, digest, title, move=True)
    except IntegrityError:
        # The feed moved to a URL that is another source already: keep the old URL.
        _write_state(ctx, source_id, state, now, digest, title, move=False)


def _write_state(
    ctx: Context,
    source_id: int,
    state: SourceState,
    now: datetime,
    digest: str | None,
    title: str | None,
    *,
    move: bool,
) -> None:
    with ctx.db.write() as session:
        row = source_repo.get_source(session, source_id)
        if row is None:
            return  # removed while it was being fetched
        if move:
            row.url = state.url  # 301/308: the feed moved for good
        row.etag, row.last_modified = state.etag, state.last_modified
        row.last_status, row.last_error = state.last_status, state.last_error
        row.consecutive_errors, row.enabled = state.consecutive_errors, state.enabled
        row.disabled_reason = state.disabled_reason
        row.next_fetch_at, row.last_fetched_at = state.next_fetch_at, now
        row.content_hash = digest
        if title:
            row.title = title[:300]
        row.updated_at = now


def poll_sources(
    ctx: Context,
    lease: Lease | None,
    *,
    only: list[int] | None = None,
) -> list[PollOutcome]:
    """Poll the sources that are due (or ``only`` these), fetching several at once."""
    now = ctx.clock.now()
    with ctx.db.read() as session:
        if only is not None:
            found = (source_repo.get_source(session, source_id) for source_id in only)
            sources = [source for source in found if source is not None]
        else:
            sources = source_repo.due_sources(session, now, limit=10_000)
    outcomes: list[PollOutcome] = []
    for start in range(0, len(sources), BATCH):
        if lease is not None:
            lease.checkpoint()
        batch = sources[start : start + BATCH]
        with ThreadPoolExecutor(max_workers=ctx.settings.sources.concurrency) as pool:
            futures = {
                pool.submit(fetch_source, ctx, s.url, s.etag, s.last_modified): s for s in batch
            }
            for future in as_completed(futures):
                source = futures[future]
                try:
                    outcomes.append(process(ctx, source, future.result()))
                except Exception as exc:  # a bug with one source must not stop the others
                    log.exception("source %d %s: failed", source.id, source.url)
                    result = FetchResult(
                        status=None,
                        final_url=source.url,
                        permanent_redirect_url=None,
                        etag=source.etag,
                        last_modified=source.last_modified,
                        content=None,
                        error=f"store: {type(exc).__name__}: {exc}",
                    )
                    state = decide_source(_state(source), result, ctx.clock.now())
                    _save_state(ctx, source.id, state, ctx.clock.now(), source.content_hash, None)
                    outcomes.append(PollOutcome(source.id, None, result.error, StoreReport()))
                metrics.source_polled(outcomes[-1].status, outcomes[-1].error)
                if lease is not None:
                    # Slow sources can hold a batch for minutes: keep the lease alive, and
                    # stop soon after a SIGTERM (fetches in flight end at their time-outs).
                    lease.checkpoint()
    return outcomes
