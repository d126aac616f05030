"""feeds/versions.py's bounded mode (feeds.version_max_age_ms, for PostgreSQL): a state read is
reused for at most that long, and never after a write of this process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from feedsvc import create_app
from feedsvc.config import load_settings
from feedsvc.feeds.versions import FeedVersions
from feedsvc.repo.feedstate import FeedState
from tests.conftest import overrides_for
from tests.factories import Factory

CHANGED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Database:
    """What FeedVersions asks of a database that has no change token (PostgreSQL)."""

    def __init__(self) -> None:
        self.version = 1
        self.reads = 0
        self.writes_committed = 0

    def change_token(self) -> None:
        return None

    def hot_row(self, statement: Any, params: Any = None) -> tuple[Any, ...]:
        self.reads += 1
        return (7, self.version, CHANGED, 20)

    def commit_elsewhere(self) -> None:  # another process: this one is not told
        self.version += 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_strict_by_default_one_read_per_poll() -> None:
    db = Database()
    versions = FeedVersions(db)  # type: ignore[arg-type]
    for _ in range(3):
        versions.state("jijin")
    assert db.reads == 3


@pytest.mark.parametrize("max_age_ms", [1, 250, 10_000])
def test_another_process_write_is_seen_within_the_bound(max_age_ms: int) -> None:
    db, clock = Database(), Clock()
    versions = FeedVersions(db, max_age_ms, clock)  # type: ignore[arg-type]
    bound = max_age_ms / 1000
    assert versions.state("jijin") == FeedState(7, 1, CHANGED, 20)
    db.commit_elsewhere()
    # Within the bound the remembered state may be served (that is the trade) ...
    seen = versions.state("jijin")
    assert seen is not None and seen.version in (1, 2)
    assert db.reads <= 2
    # ... never past it, wherever in its slot the first read fell.
    clock.now += bound
    state = versions.state("jijin")
    assert state is not None and state.version == 2


def test_reads_are_shared_within_the_bound() -> None:
    db, clock = Database(), Clock()
    versions = FeedVersions(db, 250, clock)  # type: ignore[arg-type]
    for _ in range(100):
        versions.state("jijin")
        clock.now += 0.001  # 100 polls in 0.1 s: one slot of 0.25 s at most, or two
    assert db.reads <= 2


def test_a_write_of_this_process_is_read_at_once() -> None:
    db, clock = Database(), Clock()
    versions = FeedVersions(db, 10_000, clock)  # type: ignore[arg-type]
    assert versions.state("jijin") is not None
    db.version += 1
    db.writes_committed += 1  # Database.write() counts it before the caller sees it return
    state = versions.state("jijin")
    assert state is not None and state.version == 2


@pytest.mark.usefixtures("backend")
def test_on_a_real_database_the_bound_holds_between_two_processes(
    db_url: str, factory: Factory
) -> None:
    """Two apps on one database stand for two processes; one reads, the other writes."""
    factory.post(category="jijin", title="定投的第一年")
    clock = Clock()
    settings = load_settings(overrides_for(db_url, feeds={"version_max_age_ms": 500}), environ={})
    reader = create_app(settings=settings)
    try:
        client = reader.test_client()
        from feedsvc.feeds import service

        ctx = reader.extensions["feedsvc"]
        ctx.memory["feeds.versions"] = FeedVersions(ctx.db, 500, clock)
        assert service.versions(ctx) is ctx.memory["feeds.versions"]
        before = client.get("/feeds/jijin.rss")
        assert before.status_code == 200 and "定投的第一年" in before.get_data(as_text=True)
        factory.post(category="jijin", title="债券基金的久期")  # the other process writes
        clock.now += 0.5
        after = client.get("/feeds/jijin.rss")
        assert "债券基金的久期" in after.get_data(as_text=True)
        assert after.headers["ETag"] != before.headers["ETag"]
    finally:
        reader.extensions["feedsvc"].db.dispose()
