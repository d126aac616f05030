"""Background jobs: what they are, how one run happens exactly once, and the scheduler process.

A run: take the lease (one conditional UPDATE) → is the job due? → record the run → work
(heartbeating the lease between batches) → record the outcome and the next due time →
release. The due time lives in the database, not in APScheduler: APScheduler only ticks, so
two scheduler processes on one database (a deploy overlap, a second host) still run each
due job once — the second finds the lease taken, or the job no longer due.

The scheduler runs in its own process (`feedsvc scheduler`, started by `feedsvc serve`),
never inside web workers: one APScheduler per gunicorn worker would run every job once per
worker (shared/LIBRARIES.md). Started by `serve`, it exits when its master dies, even by
SIGKILL (feedsvc/lifeline.py).

A manual run (`POST /api/v1/jobs/NAME/run`, `feedsvc jobs run NAME --request`) is only a
recorded request: a run row with status "requested", which the scheduler's next tick claims
(one conditional UPDATE) and runs as itself, so the client follows the id it was given. Web
workers never run a job: a related run would build and keep the index in that worker.
`feedsvc jobs run NAME` without --request runs in the CLI's own process.

A process killed mid-run (SIGKILL, power loss) leaves only what its finished batches
committed, each batch being one transaction, and a lease that expires by itself: whoever
takes the lease next finishes the work and closes the dead run's record as abandoned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.orm import Session

from feedsvc import lifeline, metrics
from feedsvc.config import ConfigError, Settings, load_settings
from feedsvc.context import Context
from feedsvc.db import storage_fault
from feedsvc.repo import jobs as job_repo

log = logging.getLogger("feedsvc.jobs")

TICK_SECONDS = 15


class LeaseLost(Exception):
    """Another process holds the job now (ours expired): stop without writing more."""


class Cancelled(Exception):
    """The process is stopping (SIGTERM): the run stops between two batches."""


@dataclass
class Lease:
    """Held by one run; ``checkpoint()`` between batches extends it and honours cancelling."""

    ctx: Context
    job: str
    owner: str
    ttl: timedelta
    cancel: threading.Event

    def checkpoint(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(f"{self.job}: stopped between batches")
        with self.ctx.db.write() as session:
            until = self.ctx.clock.now() + self.ttl
            if not job_repo.extend_lease(session, self.job, self.owner, until):
                raise LeaseLost(f"{self.job}: lease lost to another process")


Work = Callable[[Context, Lease], int]  # returns how many items it processed


@dataclass(frozen=True)
class JobSpec:
    name: str
    description: str
    work: Work
    next_due: Callable[[Context, datetime], datetime]
    first_due: Callable[[Context, datetime], datetime]
    # Jobs that write the same data share a lease, so they never run at the same time.
    lease: str = ""
    # A job that reacts to changes: the scheduler asks ``watch`` every ``watch_seconds``
    # (cheap reads) and runs the job at once when it says there is work (trigger "change").
    watch: Callable[[Context], bool] | None = None
    watch_seconds: Callable[[Context], float] | None = None
    # How many items wait for the job (shown in the jobs list); None: it keeps no backlog.
    backlog: Callable[[Context], int] | None = None

    @property
    def lease_name(self) -> str:
        return self.lease or self.name


def every(minutes: Callable[[Context], int]) -> Callable[[Context, datetime], datetime]:
    return lambda ctx, now: now + timedelta(minutes=minutes(ctx))


def cron(expression: Callable[[Context], str]) -> Callable[[Context, datetime], datetime]:
    def next_time(ctx: Context, now: datetime) -> datetime:
        trigger = CronTrigger.from_crontab(expression(ctx), timezone=ctx.settings.site.tz)
        fire: datetime | None = trigger.get_next_fire_time(None, now)
        assert fire is not None  # a crontab expression always fires again
        return fire

    return next_time


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Outcome(Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUSY = "busy"  # another process holds the lease
    NOT_DUE = "not_due"


def _ttl(ctx: Context) -> timedelta:
    return timedelta(seconds=ctx.settings.scheduler.lease_seconds)


ABANDONED = "abandoned: the process running it stopped without finishing (its lease expired)"


def acquire(ctx: Context, spec: JobSpec, owner: str) -> bool:
    now = ctx.clock.now()
    with ctx.db.write() as session:
        job_repo.ensure_job(session, spec.name, spec.lease_name, spec.first_due(ctx, now))
        held = job_repo.get_lease(session, spec.lease_name)
        before = None if held is None else held.owner
        if not job_repo.take_lease(session, spec.lease_name, owner, now, _ttl(ctx)):
            return False
        if before is not None and before != owner:
            _close_abandoned_runs(session, before, now)
        return True


def _close_abandoned_runs(session: Session, dead_owner: str, now: datetime) -> None:
    """Its holder died (SIGKILL, power loss) mid-run: its runs must not say "running" forever.

    Nothing it wrote is half-visible: every batch is its own transaction. Only the run
    records are left to close, by whoever takes the expired lease next.
    """
    for run in job_repo.recent_runs(session, 100):
        if run.owner == dead_owner and run.status == "running":
            job_repo.finish_run(
                session, run.id, now, status="failed", items=run.items, error=ABANDONED
            )
            log.warning("%s: run %d abandoned by %s, closed", run.job, run.id, dead_owner)


def execute(
    ctx: Context,
    spec: JobSpec,
    owner: str,
    *,
    trigger: str,
    cancel: threading.Event | None = None,
    request: int | None = None,
) -> Outcome:
    """Run ``spec`` under a lease ``owner`` already holds; record it; release the lease.

    With ``request``, the run is that requested one (its record becomes this run's).
    """
    lease = Lease(ctx, spec.lease_name, owner, _ttl(ctx), cancel or threading.Event())
    began = time.monotonic()
    with ctx.db.write() as session:
        if request is None:
            run_id = job_repo.start_run(session, spec.name, trigger, owner, ctx.clock.now())
        elif job_repo.claim_request(session, request, owner, ctx.clock.now()):
            run_id, trigger = request, "manual"
        else:  # pragma: no cover - another scheduler claimed it between two statements
            job_repo.release_lease(session, spec.lease_name, owner)
            return Outcome.BUSY
    log.debug("%s: run %d started (%s)", spec.name, run_id, trigger)
    items, error, outcome, lost = 0, None, Outcome.SUCCEEDED, False
    timer = metrics.job_started(spec.name)
    try:
        items = spec.work(ctx, lease)
    except LeaseLost as exc:
        outcome, error, lost = Outcome.FAILED, str(exc), True
        log.error("%s: run %d lost its lease", spec.name, run_id)
    except Cancelled as exc:
        outcome, error = Outcome.CANCELLED, str(exc)
        log.warning("%s: run %d cancelled", spec.name, run_id)
    except Exception as exc:  # a failing run is recorded and logged, never fatal
        outcome, error = Outcome.FAILED, f"{type(exc).__name__}: {exc}"
        log.exception("%s: run %d failed", spec.name, run_id)
    metrics.job_finished(timer, outcome.value)
    now = ctx.clock.now()
    with ctx.db.write() as session:
        job_repo.finish_run(session, run_id, now, status=outcome.value, items=items, error=error)
        job = job_repo.get_job(session, spec.name)
        if job is not None and outcome is not Outcome.CANCELLED and not lost:
            job.next_due_at = spec.next_due(ctx, now)
        job_repo.release_lease(session, spec.lease_name, owner)
    log.info(
        "%s: run %d (%s) %s, %d items, %.2f s",
        spec.name,
        run_id,
        trigger,
        outcome.value,
        items,
        time.monotonic() - began,
    )
    return outcome


def run_job(
    ctx: Context,
    spec: JobSpec,
    *,
    trigger: str,
    owner: str | None = None,
    only_if_due: bool = False,
    cancel: threading.Event | None = None,
) -> Outcome:
    """Run ``spec`` now (BUSY if another process holds its lease).

    ``only_if_due`` (the scheduler's tick): only when the job is due or a run of it was
    requested (API, `feedsvc jobs run --request`); a request is run first, as itself.
    """
    owner = owner or new_owner()
    if not acquire(ctx, spec, owner):
        return Outcome.BUSY
    request = None
    if only_if_due:
        with ctx.db.read() as session:
            request = job_repo.pending_request(session, spec.name)
            job = job_repo.get_job(session, spec.name)
            due = job is None or job.next_due_at is None or job.next_due_at <= ctx.clock.now()
        if not due and request is None:
            with ctx.db.write() as session:
                job_repo.release_lease(session, spec.lease_name, owner)
            return Outcome.NOT_DUE
    return execute(ctx, spec, owner, trigger=trigger, cancel=cancel, request=request)


def request_run(ctx: Context, spec: JobSpec) -> int:
    """Hand a run to the scheduler process (its next tick runs it); the run's id.

    Web workers never run jobs: a related run would hold the index in a worker.
    """
    now = ctx.clock.now()
    with ctx.db.write() as session:
        job_repo.ensure_job(session, spec.name, spec.lease_name, spec.first_due(ctx, now))
        return job_repo.request_run(session, spec.name, now)


def run_scheduler(
    ctx: Context,
    specs: Sequence[JobSpec],
    *,
    tick_seconds: int = TICK_SECONDS,
    read_settings: Callable[[], Settings] = load_settings,
) -> None:
    """The scheduler process: ticks every few seconds, runs what the database says is due.

    SIGTERM/SIGINT stop it between batches; SIGHUP reads the settings again (``Reload``).
    """
    cancel = threading.Event()
    me = new_owner()
    scheduler = BlockingScheduler(timezone=ctx.settings.site.tz)
    reload = Reload(ctx, scheduler, [spec.name for spec in specs], read_settings)

    def tick(spec: JobSpec) -> None:
        if cancel.is_set():  # pragma: no cover - a tick APScheduler started as SIGTERM came
            return
        run_ctx = reload.ctx  # a run keeps the settings it started with to its end
        if not run_ctx.settings.scheduler.enabled:
            return  # disabled by a reload: no runs until it is enabled again
        try:
            # A new owner per run: the lease is re-entrant for its holder, so a process-wide
            # owner would let this process's other job release a lease a run still holds.
            run_job(run_ctx, spec, trigger="schedule", only_if_due=True, cancel=cancel)
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:  # pragma: no cover - a bug in a job's bookkeeping: logged, not fatal
                log.exception("%s: tick failed", spec.name)
            else:  # the database is away for a moment: one line, and try at the next tick
                log.error("%s: tick skipped: %s (%s)", spec.name, fault.message, type(exc).__name__)

    checking = {spec.name: threading.Lock() for spec in specs}

    def check(spec: JobSpec) -> None:
        run_ctx = reload.ctx
        if cancel.is_set() or not run_ctx.settings.scheduler.enabled or spec.watch is None:
            return
        # A run it started may last longer than the interval (a slow subscriber): the next
        # checks return at once. (With max_instances=1 APScheduler would skip them with a
        # WARNING line each second.)
        if not checking[spec.name].acquire(blocking=False):
            return
        try:
            if spec.watch(run_ctx):
                run_job(run_ctx, spec, trigger="change", cancel=cancel)
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:  # pragma: no cover - a bug in a job's bookkeeping: logged, not fatal
                log.exception("%s: check failed", spec.name)
            else:
                log.error(
                    "%s: check skipped: %s (%s)", spec.name, fault.message, type(exc).__name__
                )
        finally:
            checking[spec.name].release()

    for spec in specs:
        if spec.watch is not None and spec.watch_seconds is not None:
            scheduler.add_job(
                check,
                "interval",
                args=[spec],
                id=f"{spec.name}:watch",
                max_instances=2,  # the second returns at once while the first runs the job
                coalesce=True,
                seconds=spec.watch_seconds(ctx),
                misfire_grace_time=None,
            )
        scheduler.add_job(
            tick,
            "interval",
            args=[spec],
            id=spec.name,
            max_instances=1,
            coalesce=True,
            next_run_time=ctx.clock.now(),
            **_tick_trigger(tick_seconds),
        )

    def stop_after_batch() -> None:
        cancel.set()
        with contextlib.suppress(SchedulerNotRunningError):  # a second signal, or not started
            scheduler.shutdown(wait=False)

    def stop(signum: int, _frame: Any) -> None:
        log.info("scheduler: signal %d, stopping after the current batch", signum)
        stop_after_batch()

    def hang_up(_signum: int, _frame: Any) -> None:
        # Not in the handler: reading a file and taking APScheduler's locks belong in a thread.
        threading.Thread(target=reload.run, name="feedsvc-reload", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hang_up)
    parent = lifeline.expected_parent()
    if parent is not None and not lifeline.hold(parent, stop_after_batch):
        log.warning("scheduler: parent %d died before we started: not starting", parent)
        return
    names = ", ".join(spec.name for spec in specs)
    log.info("scheduler %s: jobs %s, tick %ds", me, names, tick_seconds)
    scheduler.start()
    log.info("scheduler %s: stopped", me)


def _tick_trigger(tick_seconds: int) -> dict[str, int | None]:
    # misfire_grace_time None: a late tick still runs (coalesced into one). A tick only asks
    # the database what is due, so running late loses nothing, while APScheduler's default
    # (1 s) would drop ticks of a busy machine, each with a WARNING line.
    return {"seconds": tick_seconds, "misfire_grace_time": None}


class Reload:
    """SIGHUP in the scheduler: the settings read again, applied from the next run on.

    Runs in flight keep the context they started with (a reload never drops or tears a
    run); the next tick starts with the new one. A configuration that became invalid is one
    error line, and the old settings stay. ``database.url`` is the exception: the open
    database stays until a restart (said in a warning).
    """

    def __init__(
        self,
        ctx: Context,
        scheduler: BlockingScheduler,
        job_ids: list[str],
        read_settings: Callable[[], Settings],
    ) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.job_ids = job_ids
        self.read_settings = read_settings
        self.lock = threading.Lock()

    def run(self) -> None:
        with self.lock:  # two SIGHUPs in a row: one reload after the other
            try:
                settings = self.read_settings()
            except ConfigError as exc:
                log.error("scheduler: reload: %s; keeping the previous settings", exc)
                return
            except Exception:  # pragma: no cover - a bug in reading settings: never fatal here
                log.exception("scheduler: reload failed; keeping the previous settings")
                return
            old = self.ctx.settings
            if settings.database != old.database:
                log.warning("scheduler: reload: database.url changes at the next restart only")
                settings = settings.model_copy(update={"database": old.database})
            self.ctx = replace(self.ctx, settings=settings)
            tick = settings.scheduler.tick_seconds
            if tick != old.scheduler.tick_seconds:
                for job_id in self.job_ids:
                    with contextlib.suppress(Exception):  # pragma: no cover - stopping meanwhile
                        trigger = _tick_trigger(tick)
                        grace = trigger.pop("misfire_grace_time")
                        self.scheduler.modify_job(job_id, misfire_grace_time=grace)
                        self.scheduler.reschedule_job(job_id, trigger="interval", **trigger)
            where = settings.config_file or "(no file: defaults)"
            state = "" if settings.scheduler.enabled else ", scheduler.enabled = false: no runs"
            log.info(
                "scheduler: reload: settings read again from %s (tick %ds%s)", where, tick, state
            )
