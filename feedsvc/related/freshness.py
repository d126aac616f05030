"""Are the related lists fresh? Read from the database, at the moment someone asks.

A stored list is out of date exactly when something it depends on changed after the last
successful refresh (or rebuild) moved its markers (the ``related-refresh`` job row:
``last_change_seq`` and ``checked_until``, see refresh.py): a post written since (the
post_changes log beyond the marker), a scheduled post that became due since, or an upstream
item fetched since. The oldest of those is how long the stalest list has been waiting; none
means every list is what a rebuild would compute.

Three reads over indexed or small sets; /metrics computes it per scrape, not per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedsvc.models import ExternalItem, Post, PostChange
from feedsvc.related.refresh import REFRESH_JOB
from feedsvc.repo import jobs as job_repo


@dataclass(frozen=True)
class Freshness:
    checked_until: datetime | None  # the last successful refresh or rebuild; None: never
    pending: int  # changes (posts written or due, upstream items) not yet in the lists
    oldest_pending: datetime | None  # when the oldest of them happened

    def stale_seconds(self, now: datetime) -> float:
        """How long the stalest list has been out of date (0: all are current)."""
        if self.oldest_pending is None:
            return 0.0
        return max(0.0, (now - self.oldest_pending).total_seconds())

    def refreshed_age_seconds(self, now: datetime) -> float | None:
        if self.checked_until is None:
            return None
        return max(0.0, (now - self.checked_until).total_seconds())


def measure(session: Session, now: datetime) -> Freshness:
    job = job_repo.get_job(session, REFRESH_JOB)
    seq = job.last_change_seq if job is not None else 0
    checked = job.checked_until if job is not None else None
    count, oldest = session.execute(
        select(func.count(), func.min(PostChange.changed_at)).where(PostChange.seq > seq)
    ).one()
    pending, times = int(count), [oldest]
    if checked is not None:  # never run: every post is in the change log already
        # Posts due without a write (a write is in the change log), upstream items fetched.
        due = (Post.status == "published") & (Post.published_at > Post.updated_at)
        for column, where in ((Post.published_at, due), (ExternalItem.fetched_at, None)):
            query = select(func.count(), func.min(column)).where(column > checked, column <= now)
            due_count, due_oldest = session.execute(
                query if where is None else query.where(where)
            ).one()
            pending += int(due_count)
            times.append(due_oldest)
    known = [moment for moment in times if moment is not None]
    return Freshness(checked, pending, min(known) if known else None)
