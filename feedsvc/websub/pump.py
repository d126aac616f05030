"""Sending, ``websub.concurrency`` exchanges at a time, without one slow callback holding up
the rest.

A run keeps up to ``websub.concurrency`` exchanges in flight (verifications, deliveries,
pings: ``Errands``), and as each one ends the next one due takes its place (what ended is
recorded a few at a time, in one transaction):
a subscriber that takes the whole ``websub.timeout`` to answer occupies one slot, not a batch.
While anything is in flight the run keeps looking for changes (``look``, every
``websub.check_seconds``), so a change made meanwhile goes out to everyone else at once rather
than after the slow one. The run ends when nothing is in flight and nothing is due.

Stopping (SIGTERM: the lease's checkpoint raises) lets the exchanges in flight end (each is
bounded by the time-out) and starts no more; what was not recorded is still owed, in the
database, for the next run.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from feedsvc.context import Context
from feedsvc.jobs import Lease
from feedsvc.websub.deliver import Exchange

# How often a long run extends its lease (one small write).
CHECKPOINT_SECONDS = 2.0
# Items read per query, in slots (websub.concurrency): the next ones are sent without waiting
# for a query each.
READ_AHEAD = 8
# Ended exchanges are recorded together, a slot's worth or after this long.
RECORD_SECONDS = 0.05


class Errands(Protocol):
    """One kind of exchange: what is due, how to send one, how to store what came of it."""

    def due(self, ctx: Context, exclude: set[Hashable], limit: int) -> Sequence[Any]: ...

    def key(self, item: Any) -> Hashable: ...

    def send(self, item: Any) -> Exchange: ...

    def record(self, ctx: Context, results: Sequence[tuple[Any, Exchange]]) -> None: ...


def pump(
    ctx: Context,
    lease: Lease,
    kinds: Sequence[Errands],
    look: Callable[[], object],
) -> int:
    """Send everything due of these kinds, in that order of priority; how many were sent."""
    settings = ctx.settings.websub
    in_flight: dict[Future[Exchange], tuple[Errands, Any]] = {}
    busy: dict[int, set[Hashable]] = {id(kind): set() for kind in kinds}
    sent = 0
    last_look = last_checkpoint = time.monotonic()
    pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="feedsvc-websub")
    finished: list[tuple[Errands, Any, Exchange]] = []  # ended, not yet recorded
    queued: deque[tuple[Errands, Any]] = deque()  # read as due, not yet sent
    last_record = time.monotonic()

    def refill() -> None:
        # ``busy`` holds what is queued, in flight, or ended unrecorded: all still owed.
        if not queued:
            for kind in kinds:  # read ahead: one query feeds several slots' worth
                for item in kind.due(ctx, busy[id(kind)], settings.concurrency * READ_AHEAD):
                    queued.append((kind, item))
                    busy[id(kind)].add(kind.key(item))
                if queued:
                    break
        while queued and len(in_flight) < settings.concurrency:
            kind, item = queued.popleft()
            in_flight[pool.submit(kind.send, item)] = (kind, item)

    try:
        while True:
            now = time.monotonic()
            if now - last_checkpoint >= CHECKPOINT_SECONDS:
                lease.checkpoint()
                last_checkpoint = now
            if in_flight and now - last_look >= settings.check_seconds:
                look()  # a change made while a slow exchange is in flight goes out now
                last_look = time.monotonic()
            # The freed slots get new work before the ended exchanges are recorded, so the
            # threads send while this one writes; the records wait for a slot's worth.
            refill()
            if finished and (
                not in_flight
                or len(finished) >= settings.concurrency
                or now - last_record >= RECORD_SECONDS
            ):
                sent += _record(ctx, finished, busy)
                finished, last_record = [], time.monotonic()
            if not in_flight and not finished:
                refill()  # what the records just made due (a retry, say): none, usually
                if not in_flight:
                    return sent
            if in_flight:
                wait(in_flight, timeout=settings.check_seconds, return_when=FIRST_COMPLETED)
            for future in [future for future in in_flight if future.done()]:
                kind, item = in_flight.pop(future)
                finished.append((kind, item, future.result()))
    finally:
        # Stopping: what is in flight ends (bounded by websub.timeout), nothing new starts.
        pool.shutdown(wait=True, cancel_futures=True)


def _record(
    ctx: Context, finished: Sequence[tuple[Errands, Any, Exchange]], busy: dict[int, set[Hashable]]
) -> int:
    """Store what the ended exchanges came to, kind by kind; they are no longer busy."""
    by_kind: dict[int, tuple[Errands, list[tuple[Any, Exchange]]]] = {}
    for kind, item, exchange in finished:
        by_kind.setdefault(id(kind), (kind, []))[1].append((item, exchange))
    for kind, results in by_kind.values():
        kind.record(ctx, results)
        for item, _ in results:
            busy[id(kind)].discard(kind.key(item))
    return len(finished)
