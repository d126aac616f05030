"""Rows → the API's JSON shapes (one place, so the CLI prints the same)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from feedsvc.context import Context
from feedsvc.feeds.document import Links
from feedsvc.models import (
    ApiToken,
    Category,
    JobRun,
    Post,
    Source,
    WebSubIntent,
    WebSubSubscription,
)
from feedsvc.repo import jobs as job_repo
from feedsvc.repo.related import RelatedView
from feedsvc.web.api import responses as shapes


def _time(ctx: Context, value: datetime) -> str:
    return value.astimezone(ctx.settings.site.tz).isoformat()


def _maybe_time(ctx: Context, value: datetime | None) -> str | None:
    return None if value is None else _time(ctx, value)


def category_json(ctx: Context, category: Category) -> dict[str, Any]:
    links = Links(ctx.settings.site.base_url)
    return shapes.Category(
        slug=category.slug,
        name=category.name,
        description=category.description,
        language=category.language,
        position=category.position,
        feed_length=category.feed_length,
        url=links.category(category.slug),
        feeds=_feeds(links, category.slug),
        created_at=_time(ctx, category.created_at),
        updated_at=_time(ctx, category.updated_at),
    ).model_dump()


def _feeds(links: Links, slug: str) -> shapes.FeedLinks:
    return shapes.FeedLinks(rss=links.feed(slug, "rss"), atom=links.feed(slug, "atom"))


def post_json(ctx: Context, post: Post) -> dict[str, Any]:
    links = Links(ctx.settings.site.base_url)
    return shapes.Post(
        id=post.id,
        slug=post.slug,
        guid=post.guid,
        url=links.post(post.slug),
        feeds=_feeds(links, post.category.slug),
        category=post.category.slug,
        title=post.title,
        author=post.author,
        summary=post.summary,
        format=post.format,
        content=post.body,
        content_html="\n".join(post.pages),
        pages=list(post.pages),
        page_count=len(post.pages),
        tags=[tag.name for tag in post.tags],
        status=post.status,
        published_at=_time(ctx, post.published_at),
        created_at=_time(ctx, post.created_at),
        updated_at=_time(ctx, post.updated_at),
    ).model_dump()


def token_json(ctx: Context, token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": _time(ctx, token.created_at),
        "last_used_at": _maybe_time(ctx, token.last_used_at),
        "revoked_at": _maybe_time(ctx, token.revoked_at),
    }


def related_json(ctx: Context, items: list[RelatedView]) -> list[dict[str, Any]]:
    links = Links(ctx.settings.site.base_url)
    return [
        shapes.RelatedItem(
            rank=item.rank,
            score=item.score,
            kind="post" if item.post_id is not None else "external",
            id=item.post_id if item.post_id is not None else item.external_id,
            slug=item.slug,
            title=item.title,
            summary=item.summary,
            url=links.related(item),
            source=item.source,
            computed_at=_time(ctx, item.computed_at),
        ).model_dump()
        for item in items
    ]


def run_json(ctx: Context, run: JobRun) -> dict[str, Any]:
    return shapes.Run(
        id=run.id,
        job=run.job,
        trigger=run.trigger,
        status=run.status,
        started_at=_time(ctx, run.started_at),
        finished_at=_maybe_time(ctx, run.finished_at),
        items=run.items,
        error=run.error,
    ).model_dump()


def jobs_json(ctx: Context, runs_per_job: int = 10) -> list[dict[str, Any]]:
    """Every known job: next due time, whether a run holds its lease, its recent runs."""
    from feedsvc.schedule import JOBS

    now = ctx.clock.now()
    result = []
    with ctx.db.read() as session:
        for name, spec in sorted(JOBS.items()):
            job = job_repo.get_job(session, name)
            lease = job_repo.get_lease(session, spec.lease_name)
            held = (
                lease is not None
                and lease.owner is not None
                and (lease.expires_at is None or lease.expires_at > now)
            )
            runs = job_repo.recent_runs(session, runs_per_job, job=name)
            result.append(
                shapes.Job(
                    name=name,
                    description=spec.description,
                    next_due_at=_maybe_time(ctx, job.next_due_at if job else None),
                    running=held and any(run.status == "running" for run in runs),
                    requested_run=job_repo.pending_request(session, name),
                    backlog=None if spec.backlog is None else spec.backlog(ctx),
                    lease=shapes.Lease(
                        name=spec.lease_name,
                        owner=lease.owner if held and lease is not None else None,
                        expires_at=_maybe_time(ctx, lease.expires_at) if held and lease else None,
                    ),
                    runs=[shapes.Run.model_validate(run_json(ctx, run)) for run in runs],
                ).model_dump()
            )
    return result


def source_json(ctx: Context, source: Source) -> dict[str, Any]:
    return shapes.Source(
        id=source.id,
        url=source.url,
        category=source.category.slug,
        mode=source.mode,
        interval_minutes=source.interval_minutes,
        enabled=source.enabled,
        title=source.title,
        state=shapes.SourceState(
            etag=source.etag,
            last_modified=source.last_modified,
            last_status=source.last_status,
            last_fetched_at=_maybe_time(ctx, source.last_fetched_at),
            next_fetch_at=_maybe_time(ctx, source.next_fetch_at),
            consecutive_errors=source.consecutive_errors,
            last_error=source.last_error,
            disabled_reason=source.disabled_reason,
        ),
        created_at=_time(ctx, source.created_at),
        updated_at=_time(ctx, source.updated_at),
    ).model_dump()


def subscription_json(
    ctx: Context, row: WebSubSubscription, topic_etag: str | None
) -> dict[str, Any]:
    return shapes.WebSubSubscription(
        id=row.id,
        topic=row.topic,
        callback=row.callback,
        lease_seconds=row.lease_seconds,
        has_secret=bool(row.secret),
        created_at=_time(ctx, row.created_at),
        verified_at=_time(ctx, row.verified_at),
        expires_at=_time(ctx, row.expires_at),
        owed=topic_etag is not None and row.delivered_etag != topic_etag,
        delivered_at=_maybe_time(ctx, row.delivered_at),
        failures=row.failures,
        failing_since=_maybe_time(ctx, row.failing_since),
        next_attempt_at=_maybe_time(ctx, row.next_attempt_at),
        last_error=row.last_error,
    ).model_dump()


def request_json(ctx: Context, row: WebSubIntent) -> dict[str, Any]:
    return shapes.WebSubRequest(
        id=row.id,
        mode=row.mode,  # one of WEBSUB_INTENTS (pydantic checks it)
        topic=row.topic,
        callback=row.callback,
        reason=row.reason,
        requested_at=_time(ctx, row.requested_at),
        attempts=row.attempts,
        next_attempt_at=_time(ctx, row.next_attempt_at),
        last_error=row.last_error,
    ).model_dump()
