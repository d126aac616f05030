"""The related jobs: an incremental refresh every few minutes, a full rebuild once a day.

Both write the same lists, so they share one lease ("related") and never overlap.
"""

from __future__ import annotations

from feedsvc.context import Context
from feedsvc.jobs import JobSpec, Lease, cron, every
from feedsvc.related import refresh

LEASE = "related"


def _refresh(ctx: Context, lease: Lease) -> int:
    return refresh.refresh(ctx, lease).compared


def _rebuild(ctx: Context, lease: Lease) -> int:
    return refresh.rebuild(ctx, lease).compared


def _refresh_interval(ctx: Context) -> int:
    return ctx.settings.scheduler.related_interval_minutes


def _rebuild_cron(ctx: Context) -> str:
    return ctx.settings.scheduler.related_rebuild_cron


REFRESH = JobSpec(
    name=refresh.REFRESH_JOB,
    description="recompute related lists that can have changed since the last run",
    work=_refresh,
    next_due=every(_refresh_interval),
    first_due=lambda ctx, now: now,
    lease=LEASE,
)
REBUILD = JobSpec(
    name="related-rebuild",
    description="recompute every related list, IDF included",
    work=_rebuild,
    next_due=cron(_rebuild_cron),
    first_due=cron(_rebuild_cron),
    lease=LEASE,
)
