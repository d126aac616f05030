"""Every background job feedsvc runs: the one list the scheduler process, the API and the CLI read.

The mechanism (feedsvc/jobs.py: leases, runs, the scheduler loop) knows nothing of the jobs;
each job module defines its specs and imports only the mechanism; this module, at the top,
lists them. A new job is one spec in its own module and one line here.
"""

from __future__ import annotations

from feedsvc.errors import NotFound
from feedsvc.jobs import JobSpec
from feedsvc.related.jobs import REBUILD, REFRESH
from feedsvc.sources.jobs import POLL
from feedsvc.websub.jobs import WEBSUB

JOBS: dict[str, JobSpec] = {spec.name: spec for spec in (REFRESH, REBUILD, POLL, WEBSUB)}


def job(name: str) -> JobSpec:
    """The job of that name; NotFound names the ones there are."""
    try:
        return JOBS[name]
    except KeyError:
        raise NotFound(f"no job {name!r}; jobs are: {', '.join(sorted(JOBS))}") from None
