"""The poll job: every minute (by default) it polls the sources whose own interval is up."""

from __future__ import annotations

from feedsvc.context import Context
from feedsvc.jobs import JobSpec, Lease, every
from feedsvc.sources.poll import poll_sources


def _poll(ctx: Context, lease: Lease) -> int:
    return len(poll_sources(ctx, lease))


POLL = JobSpec(
    name="sources-poll",
    description="fetch the upstream sources that are due",
    work=_poll,
    next_due=every(lambda ctx: ctx.settings.scheduler.sources_interval_minutes),
    first_due=lambda ctx, now: now,
)
