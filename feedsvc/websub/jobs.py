"""The websub job: one run expires leases, watches feeds, acts on requests and sends.

Its run: expire subscriptions past their lease → watch (which topics' ETags changed) → pump
(websub/pump.py): verify or deny pending requests and deliver bodies (built-in hub), or ping
(external hub), as many at once as ``websub.concurrency``, watching for new changes
meanwhile. A run only starts when there is something to do: the scheduler process asks
``has_work`` every ``websub.check_seconds`` (a few indexed reads, no write), and runs the job
at once when it says so, under the job's lease like any run (so two scheduler processes never
send twice). The job is also due every few minutes on the ordinary tick, as a safety net.

Writes never wait for any of it: a web request only bumps versions (as it always did) or
records a subscriber's request; everything that talks to the network happens here.
"""

from __future__ import annotations

import logging

from feedsvc.config import BUILTIN_HUB
from feedsvc.context import Context
from feedsvc.jobs import JobSpec, Lease, every
from feedsvc.repo import websub as websub_repo
from feedsvc.websub.deliver import Messenger
from feedsvc.websub.distribute import Deliveries, Pings
from feedsvc.websub.pump import Errands, pump
from feedsvc.websub.verify import Requests
from feedsvc.websub.watch import site_changed_since_watched, watch

log = logging.getLogger("feedsvc.websub")

JOB = "websub"
SAFETY_NET_MINUTES = 5


def _builtin(ctx: Context) -> bool:
    return ctx.settings.websub.hub == BUILTIN_HUB


def run(ctx: Context, lease: Lease) -> int:
    hub = ctx.settings.hub_url
    if hub is None:
        return 0
    builtin = _builtin(ctx)
    items = 0
    if builtin:
        with ctx.db.write() as session:
            for sub in websub_repo.expire_subscriptions(session, ctx.clock.now()):
                log.info("websub: lease of %s to %s expired", sub.callback, sub.topic)
                items += 1
    watch(ctx, external=not builtin, checkpoint=lease.checkpoint)
    with Messenger(ctx) as messenger:
        kinds: list[Errands] = (
            [Requests(messenger), Deliveries(ctx, messenger, hub)]
            if builtin
            else [Pings(ctx, messenger, hub)]
        )
        items += pump(
            ctx,
            lease,
            kinds,
            look=lambda: watch(ctx, external=not builtin, checkpoint=lease.checkpoint),
        )
    return items


def has_work(ctx: Context) -> bool:
    """Whether a run would do anything now: cheap reads only (it is asked every second)."""
    if ctx.settings.hub_url is None:
        return False
    now = ctx.clock.now()
    with ctx.db.read() as session:
        if websub_repo.topics_behind(session) or websub_repo.rechecks_due(session, now):
            return True
        if not _builtin(ctx):
            # Every feed is watched: a new category or tag shows only as a new site version.
            return site_changed_since_watched(ctx, websub_repo.site_version(session)) or bool(
                websub_repo.due_pings(session, now, 1)
            )
        return (
            websub_repo.intents_due(session, now)
            or websub_repo.deliveries_due(session, now)
            or websub_repo.leases_ended(session, now)
        )


def backlog(ctx: Context) -> int:
    with ctx.db.read() as session:
        return websub_repo.backlog(session, ctx.clock.now()).total


WEBSUB = JobSpec(
    name=JOB,
    description=(
        "WebSub: notice changed feeds, verify subscribers, deliver new bodies or ping the hub"
    ),
    work=run,
    next_due=every(lambda ctx: SAFETY_NET_MINUTES),
    first_due=lambda ctx, now: now,
    watch=has_work,
    watch_seconds=lambda ctx: ctx.settings.websub.check_seconds,
    backlog=backlog,
)
