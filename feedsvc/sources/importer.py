"""`feedsvc import`: bring in an existing RSS or Atom feed once (a WordPress site's, say).

The same path as polling in posts mode: fetched with the same limits and address checks (or
read from a file the publisher names), parsed by the same parser, stored by the same code.
An import-only source row (never polled) remembers the entries, so running the same import
again changes nothing, and posts the publisher deletes are not brought back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from feedsvc.context import Context
from feedsvc.errors import Conflict, FeedsvcError, Invalid
from feedsvc.models import IMPORT_ONLY, Source
from feedsvc.repo import categories as category_repo
from feedsvc.repo import sources as source_repo
from feedsvc.sources.parse import FeedParseError, ParsedFeed, declared_link, parse_feed
from feedsvc.sources.poll import fetch_source
from feedsvc.sources.store import StoreReport, store_as_posts


def _read(ctx: Context, target: str) -> tuple[bytes, dict[str, str], str]:
    """The feed's bytes, response headers and the URL relative links resolve against."""
    scheme = urlsplit(target).scheme.lower()
    if scheme in ("http", "https"):
        result = fetch_source(ctx, target, None, None)
        if result.error is not None or result.content is None:
            raise FeedsvcError(f"import: {result.error or f'HTTP {result.status}'}")
        return result.content, result.headers, result.final_url
    if scheme and len(scheme) > 1:  # not a Windows drive letter
        raise Invalid(f"import: only http, https or a file path, not {scheme}:")
    path = Path(target)
    limit = ctx.settings.sources.max_bytes
    try:
        with path.open("rb") as handle:
            content = handle.read(limit + 1)
    except OSError as exc:
        raise Invalid(f"import: cannot read {target}: {exc.strerror}") from None
    if len(content) > limit:
        raise Invalid(f"import: {target} is larger than {limit} bytes (sources.max_bytes)")
    return content, {}, path.resolve().as_uri()


def _import_source(ctx: Context, url: str, category_id: int) -> Source:
    now = ctx.clock.now()
    with ctx.db.write() as session:
        source = source_repo.find_source(session, url)
        if source is not None and source.disabled_reason != IMPORT_ONLY:
            raise Conflict(
                f"import: {url} is polled already as source {source.id} "
                f"({source.mode} mode, category {source.category.slug}); "
                "change that source instead (feedsvc source / PATCH /api/v1/sources)"
            )
        if source is None:
            source = Source(
                url=url,
                category_id=category_id,
                mode="posts",
                enabled=False,
                interval_minutes=ctx.settings.sources.default_interval_minutes,
                title="",
                consecutive_errors=0,
                disabled_reason=IMPORT_ONLY,
                created_at=now,
                updated_at=now,
            )
            session.add(source)
        source.category_id = category_id
        session.flush()
        session.refresh(source)
        _ = source.category
        return source


def _parse(
    ctx: Context, content: bytes, headers: dict[str, str], url: str, now: datetime
) -> ParsedFeed:
    def parse(base: str) -> ParsedFeed:
        return parse_feed(content, headers=headers, url=base, site_tz=ctx.settings.site.tz, now=now)

    if not url.startswith("file:"):
        return parse(url)
    # A saved file: relative links belong to the site it came from, not the disk. The site's
    # link is read from the document's head first, so the feed is parsed once, not twice
    # (a parse is most of an import's CPU); a wrong guess is caught and parsed as before.
    declared = declared_link(content)
    if declared is not None and declared.startswith(("http://", "https://")):
        parsed = parse(declared)
        if parsed.link == declared:
            return parsed
    parsed = parse(url)
    if parsed.link and parsed.link.startswith("http"):
        parsed = parse(parsed.link)
    return parsed


def import_feed(
    ctx: Context,
    target: str,
    category: str,
    progress: Callable[[int, int], None] | None = None,
) -> StoreReport:
    with ctx.db.read() as session:
        found = category_repo.get_category(session, category)
        if found is None:
            raise Invalid(f"import: unknown category {category!r}")
        category_id = found.id
    content, headers, url = _read(ctx, target)
    now = ctx.clock.now()
    try:
        parsed = _parse(ctx, content, headers, url, now)
    except FeedParseError as exc:
        raise Invalid(f"import: {exc}") from None
    source = _import_source(ctx, url, category_id)
    report = store_as_posts(ctx, source, parsed.entries, now, progress)
    if report.new:
        ctx.db.analyze()  # a bulk load: the planner's statistics follow the data
    return report
