"""Job rows (leases, due times, progress markers) and run records.

The lease is one conditional UPDATE (shared/LIBRARIES.md, measured exactly-once on SQLite and
PostgreSQL): it succeeds only when the lease is free, expired, or already ours.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedsvc.models import Job, JobLease, JobRun


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def ensure_job(session: Session, name: str, lease: str, first_due: datetime) -> None:
    """Create the job's row and its lease's row if this is their first use (race-free)."""
    insert = _insert(session)
    session.execute(insert(Job).values(name=name, next_due_at=first_due).on_conflict_do_nothing())
    session.execute(insert(JobLease).values(name=lease).on_conflict_do_nothing())


def get_job(session: Session, name: str) -> Job | None:
    return session.get(Job, name)


def take_lease(session: Session, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    result = session.execute(
        update(JobLease)
        .where(
            JobLease.name == name,
            or_(JobLease.owner.is_(None), JobLease.expires_at < now, JobLease.owner == owner),
        )
        .values(owner=owner, expires_at=now + ttl)
    )
    return _rowcount(result) == 1


def extend_lease(session: Session, name: str, owner: str, until: datetime) -> bool:
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.owner == owner)
        .values(expires_at=until)
    )
    return _rowcount(result) == 1


def release_lease(session: Session, name: str, owner: str) -> None:
    session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.owner == owner)
        .values(owner=None, expires_at=None)
    )


def get_lease(session: Session, name: str) -> JobLease | None:
    return session.get(JobLease, name)


def start_run(session: Session, job: str, trigger: str, owner: str, now: datetime) -> int:
    run = JobRun(job=job, trigger=trigger, owner=owner, started_at=now, status="running", items=0)
    session.add(run)
    session.flush()
    return run.id


REQUESTED = "requested"  # a run asked for (API, `jobs run --request`), not started yet
REQUESTER = "requested"  # its owner until a scheduler process claims it


def request_run(session: Session, job: str, now: datetime) -> int:
    """Ask the scheduler process to run ``job`` at its next tick; the run's id.

    A request already waiting is the answer to the next one: asking twice runs once.
    """
    waiting = pending_request(session, job)
    if waiting is not None:
        return waiting
    run = JobRun(job=job, trigger="manual", owner=REQUESTER, started_at=now, status=REQUESTED)
    run.items = 0
    session.add(run)
    session.flush()
    return run.id


def pending_request(session: Session, job: str) -> int | None:
    query = select(JobRun.id).where(JobRun.job == job, JobRun.status == REQUESTED)
    return session.scalar(query.order_by(JobRun.id).limit(1))


def claim_request(session: Session, run_id: int, owner: str, now: datetime) -> bool:
    """The scheduler starts a requested run (one conditional UPDATE: claimed once)."""
    result = session.execute(
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.status == REQUESTED)
        .values(status="running", owner=owner, started_at=now)
    )
    return _rowcount(result) == 1


def get_run(session: Session, run_id: int) -> JobRun | None:
    return session.get(JobRun, run_id)


def finish_run(
    session: Session, run_id: int, now: datetime, *, status: str, items: int, error: str | None
) -> None:
    session.execute(
        update(JobRun)
        .where(JobRun.id == run_id)
        .values(finished_at=now, status=status, items=items, error=error)
    )


def recent_runs(session: Session, limit: int, job: str | None = None) -> list[JobRun]:
    query = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if job is not None:
        query = query.where(JobRun.job == job)
    return list(session.scalars(query))


def list_runs(
    session: Session, *, job: str | None, before_id: int | None, limit: int
) -> list[JobRun]:
    """Runs newest first (ids only grow), keyset-paged by id."""
    query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if job is not None:
        query = query.where(JobRun.job == job)
    if before_id is not None:
        query = query.where(JobRun.id < before_id)
    return list(session.scalars(query))


def _rowcount(result: object) -> int:
    # An UPDATE's result is a CursorResult (rowcount); Session.execute is typed as the base.
    count = getattr(result, "rowcount", 0)
    return int(count)
