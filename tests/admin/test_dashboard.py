"""/admin: the counts, the latest and the scheduled posts (Beijing time), jobs, failing sources."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from feedsvc.models import Source
from feedsvc.repo import jobs as job_repo
from feedsvc.schemas import SourceCreate
from feedsvc.services import sources as source_service
from tests.factories import BEIJING, Factory

pytestmark = pytest.mark.usefixtures("backend")


def section(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}".*?</(?:table|strong)>', page, re.S)
    assert found, element_id
    return found.group(0)


def test_counts_latest_and_scheduled(signed_in, factory: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    factory.post(title="每月结余先存一半")
    factory.post(title="应急金该放在哪里")
    factory.post(title="草稿：年终奖怎么分配", status="draft")
    due = datetime(2026, 12, 1, 9, 30, tzinfo=BEIJING)
    factory.post("jijin", title="定投指数基金的三个误区", published_at=due)
    factory.post(
        "jijin", title="债券基金为什么也会亏", published_at=clock.now() + timedelta(days=5)
    )

    page = signed_in.get("/admin").get_data(as_text=True)
    assert ">2</strong>" in section(page, "count-published")
    assert ">1</strong>" in section(page, "count-drafts")
    assert ">2</strong>" in section(page, "count-scheduled")

    scheduled = section(page, "scheduled")
    assert "定投指数基金的三个误区" in scheduled
    assert "2026-12-01 09:30" in scheduled  # Beijing time, as stored at 01:30 UTC
    assert scheduled.index("定投指数基金的三个误区") < scheduled.index("债券基金为什么也会亏")
    assert "每月结余先存一半" not in scheduled
    assert "Asia/Shanghai" in page

    latest = section(page, "latest")
    for title in ("每月结余先存一半", "草稿：年终奖怎么分配", "定投指数基金的三个误区"):
        assert title in latest
    assert "草稿" in latest and "定时" in latest and "已发布" in latest
    assert "基金" in latest and "理财方法" in latest


def test_a_scheduled_post_that_came_due_is_counted_published(signed_in, factory, clock) -> None:  # type: ignore[no-untyped-def]
    factory.post(title="明早发布的文章", published_at=clock.now() + timedelta(hours=1))
    clock.advance(hours=2)
    page = signed_in.get("/admin").get_data(as_text=True)
    assert ">1</strong>" in section(page, "count-published")
    assert ">0</strong>" in section(page, "count-scheduled")


def test_empty_site(signed_in) -> None:  # type: ignore[no-untyped-def]
    page = signed_in.get("/admin").get_data(as_text=True)
    assert "没有待发布的文章" in page
    assert "还没有文章" in page
    assert "所有订阅源正常" in page
    assert "从未运行" in section(page, "jobs")


def test_jobs_with_their_last_run(signed_in, ctx, clock) -> None:  # type: ignore[no-untyped-def]
    with ctx.db.write() as session:
        run = job_repo.start_run(session, "related-refresh", "schedule", "tests", clock.now())
        job_repo.finish_run(
            session, run, clock.now(), status="failed", items=0, error="分词器加载失败"
        )
    jobs = section(signed_in.get("/admin").get_data(as_text=True), "jobs")
    assert "related-refresh" in jobs
    assert "2026-11-28 12:00" in jobs
    assert "失败：分词器加载失败" in jobs


def test_failing_sources(signed_in, ctx, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    factory.category("jijin")
    good = source_service.create_source(
        ctx, SourceCreate(url="http://127.0.0.1:9/good.xml", category="jijin")
    )
    bad = source_service.create_source(
        ctx, SourceCreate(url="http://127.0.0.1:9/bad.xml", category="jijin")
    )
    paused = source_service.create_source(
        ctx, SourceCreate(url="http://127.0.0.1:9/paused.xml", category="jijin", enabled=False)
    )
    gone = source_service.create_source(
        ctx, SourceCreate(url="http://127.0.0.1:9/gone.xml", category="jijin")
    )
    with ctx.db.write() as session:
        row = session.get(Source, bad.id)
        row.consecutive_errors = 3
        row.last_error = "HTTP 503：上游暂时不可用"
        session.get(Source, paused.id).disabled_reason = "disabled by the publisher"
        gone_row = session.get(Source, gone.id)
        gone_row.enabled, gone_row.disabled_reason = False, "gone (410)"
    failing = section(signed_in.get("/admin").get_data(as_text=True), "failing-sources")
    assert "bad.xml" in failing and "HTTP 503：上游暂时不可用" in failing
    assert "gone.xml" in failing and "上游已永久删除这个订阅（HTTP 410）" in failing
    assert "good.xml" not in failing
    assert "paused.xml" not in failing  # the publisher's own choice is not a failure
    assert good.id != bad.id


def test_phone_viewport_and_language(signed_in) -> None:  # type: ignore[no-untyped-def]
    page = signed_in.get("/admin").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page
    assert "概览" in page
