"""/admin/sources: the list with fetch state, add, edit, 停用/启用, 立即抓取, delete after a
confirmation; the same rows as the API's; invalid forms shown again (422) with Chinese
messages and the typed values, changing nothing; hostile ids are 404s."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from feedsvc import create_app, jobs
from feedsvc.models import Source
from feedsvc.repo import jobs as job_repo
from feedsvc.schemas import SourceCreate, SourceUpdate
from feedsvc.services import sources as source_service
from feedsvc.sources.jobs import POLL
from tests.admin.conftest import field_error, form_token, post, typed_value
from tests.factories import CATEGORIES, Factory

pytestmark = pytest.mark.usefixtures("backend")

URL = "https://partner.example.cn/feed.xml"
FORM = {
    "url": URL,
    "category": "jijin",
    "mode": "posts",
    "interval_minutes": "45",
    "enabled": "on",
}
FEED = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
    "<title>财经通讯社</title><link>http://partner.test/</link><description>d</description>"
    + "".join(
        f'<item><guid isPermaLink="false">x{n}</guid><title>国债期限怎么选 {n}</title>'
        f"<link>http://partner.test/x{n}</link><pubDate>Fri, 20 Nov 2026 09:00:00 +0800</pubDate>"
        "<description><![CDATA[<p>国债 期限 久期 收益率。</p>]]></description></item>"
        for n in (1, 2, 3)
    )
    + "</channel></rss>"
).encode()


def stored(ctx) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    """Every column of every source, to prove a rejected request changed nothing."""
    with ctx.db.read() as session:
        return [
            tuple(getattr(row, column.key) for column in Source.__table__.columns)
            for row in session.scalars(select(Source).order_by(Source.id))
        ]


def requested_runs(ctx) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        return [(run.job, run.status) for run in job_repo.recent_runs(session, 100)]


def add(ctx, factory: Factory, url: str = URL, **fields: Any) -> int:  # type: ignore[no-untyped-def]
    factory.ensure_category("jijin")
    data = {"url": url, "category": "jijin", "mode": "related", **fields}
    return source_service.create_source(ctx, SourceCreate(**data)).id


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/sources"),
        ("post", "/admin/sources"),
        ("get", "/admin/sources/1"),
        ("post", "/admin/sources/1"),
        ("post", "/admin/sources/1/enabled"),
        ("post", "/admin/sources/1/refresh"),
        ("get", "/admin/sources/1/delete"),
        ("post", "/admin/sources/1/delete"),
    ],
)
def test_signed_out_goes_to_login(client, ctx, factory: Factory, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    add(ctx, factory)
    before = stored(ctx)
    data = {**FORM, "url": "https://other.example.cn/feed", "enabled": "0"}
    answer = client.get(path) if method == "get" else post(client, path, **data)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login?next=/admin/sources")
    assert stored(ctx) == before and requested_runs(ctx) == []


@pytest.mark.parametrize(
    "path",
    [
        "/admin/sources",
        "/admin/sources/1",
        "/admin/sources/1/enabled",
        "/admin/sources/1/refresh",
        "/admin/sources/1/delete",
    ],
)
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_a_post_without_the_csrf_token_is_400_and_changes_nothing(  # type: ignore[no-untyped-def]
    signed_in, ctx, factory, path, token
) -> None:
    add(ctx, factory)
    before = stored(ctx)
    data = {**FORM, "url": "https://other.example.cn/feed", "enabled": "0"}
    if token is not None:
        data["csrf_token"] = token
    assert signed_in.post(path, data=data).status_code == 400
    assert stored(ctx) == before and requested_runs(ctx) == []


def test_list_shows_each_source_with_its_fetch_state(signed_in, ctx, factory, clock) -> None:  # type: ignore[no-untyped-def]
    ok = add(ctx, factory, interval_minutes=30)
    failing = add(ctx, factory, "https://broken.example.cn/rss", mode="posts")
    off = add(ctx, factory, "https://old.example.cn/atom")
    source_service.update_source(ctx, off, SourceUpdate(enabled=False))
    fetched = clock.now() - timedelta(minutes=10)
    with ctx.db.write() as session:
        row = session.get(Source, ok)
        row.title, row.last_status, row.last_fetched_at = "财经通讯社", 200, fetched
        row.next_fetch_at = fetched + timedelta(minutes=30)
        row = session.get(Source, failing)
        row.last_status, row.consecutive_errors = 500, 3
        row.last_error, row.last_fetched_at = "fetch: HTTP 500 from upstream", fetched

    answer = signed_in.get("/admin/sources")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    page = answer.get_data(as_text=True)
    assert 'href="/admin/sources">订阅源</a>' in page  # the navigation

    def row_of(source_id: int) -> str:
        found = re.search(rf'<tr id="source-{source_id}">.*?</tr>', page, re.S)
        assert found, source_id
        return html.unescape(re.sub(r"<[^>]+>", " ", found.group(0)))

    # Beijing time (the site's): 11:50 and 12:20 on 2026-11-28.
    first = row_of(ok)
    assert "财经通讯社" in first and URL in first and CATEGORIES["jijin"][0] in first
    assert "相关内容" in first and "30 分钟" in first and "启用" in first
    assert "2026-11-28 11:50" in first and "200" in first and "2026-11-28 12:20" in first
    assert f'href="/admin/sources/{ok}"' in page
    second = row_of(failing)
    assert "文章" in second and "500" in second and " 3 " in second
    assert "fetch: HTTP 500 from upstream" in second
    third = row_of(off)
    assert "已停用：由发布者停用" in third
    assert "从未抓取" in third


def test_added_here_is_what_the_api_adds(signed_in, ctx, factory, auth) -> None:  # type: ignore[no-untyped-def]
    factory.ensure_category("jijin")
    answer = post(signed_in, "/admin/sources", **FORM)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/admin/sources"
    page = signed_in.get("/admin/sources").get_data(as_text=True)
    assert f"已添加订阅源 {URL}" in page

    other = "https://partner.example.cn/other.xml"
    body = {"url": other, "category": "jijin", "mode": "posts", "interval_minutes": 45}
    assert signed_in.post("/api/v1/sources", json=body, headers=auth).status_code == 201
    listed = signed_in.get("/api/v1/sources", headers=auth).json["items"]
    admin, api = (next(s for s in listed if s["url"] == url) for url in (URL, other))
    for item in (admin, api):
        del item["id"], item["url"]
    assert admin == api
    assert admin["enabled"] is True and admin["interval_minutes"] == 45


def test_a_blank_interval_is_the_default_and_unticked_is_disabled(signed_in, ctx, factory) -> None:  # type: ignore[no-untyped-def]
    factory.ensure_category("jijin")
    form = {**FORM, "interval_minutes": " ", "mode": "related"}
    del form["enabled"]
    assert post(signed_in, "/admin/sources", **form).status_code == 303
    ((row),) = [
        dict(zip([c.key for c in Source.__table__.columns], r, strict=True)) for r in stored(ctx)
    ]
    assert row["interval_minutes"] == ctx.settings.sources.default_interval_minutes
    assert row["enabled"] is False and row["mode"] == "related"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"url": "ftp://partner.example.cn/feed"}, "url", "http:// 或 https://"),
        ({"url": "partner.example.cn/feed"}, "url", "http:// 或 https://"),
        ({"url": ""}, "url", "http:// 或 https://"),
        ({"url": "https://partner.example.cn:99999/feed"}, "url", "端口"),
        ({"url": "https://partner\x00.example.cn/"}, "url", "控制字符"),
        ({"url": "https://partner.example.cn/" + "x" * 3000}, "url", "最多 2000 个字符"),
        ({"url": "https://dup.example.cn/feed"}, "url", "已经是订阅源"),
        ({"category": "nope"}, "category", "不是已有的分类"),
        ({"category": "Not A Slug"}, "category", "小写英文字母"),
        ({"mode": "everything"}, "mode", "请选择“相关内容”或“文章”"),
        ({"interval_minutes": "0"}, "interval_minutes", "不能少于 5 分钟"),
        ({"interval_minutes": "2"}, "interval_minutes", "不能少于 5 分钟"),
        ({"interval_minutes": "99999"}, "interval_minutes", "不能大于 10080"),
        ({"interval_minutes": "9" * 40}, "interval_minutes", "半角数字"),
        ({"interval_minutes": "１２"}, "interval_minutes", "半角数字"),
        ({"interval_minutes": "-5"}, "interval_minutes", "半角数字"),
        ({"interval_minutes": "1\x002"}, "interval_minutes", "控制字符"),
    ],
)
def test_invalid_add_is_422_with_the_message_by_the_field(  # type: ignore[no-untyped-def]
    signed_in, ctx, factory, changes, field, message
) -> None:
    add(ctx, factory, "https://dup.example.cn/feed")
    before = stored(ctx)
    answer = post(signed_in, "/admin/sources", **{**FORM, **changes})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert message in field_error(page, field)
    assert "请修改标出的字段" in page
    typed = {**FORM, **changes}
    for name in ("url", "category", "mode", "interval_minutes"):
        assert typed_value(page, name) == typed[name].replace("\x00", ""), name
    assert 'id="field-enabled" name="enabled" checked' in page
    assert stored(ctx) == before and requested_runs(ctx) == []


def test_a_loopback_url_is_added_and_refused_when_fetched(  # type: ignore[no-untyped-def]
    signed_in, ctx, factory, settings, clock
) -> None:
    """The guard judges the address when the source is fetched (DNS can change in between):
    without allow_hosts a loopback source gets the guard's refusal as its last error."""
    strict = settings.model_copy(
        update={"sources": settings.sources.model_copy(update={"allow_hosts": ()})}
    )
    strict_ctx = create_app(settings=strict, clock=clock).extensions["feedsvc"]
    factory.ensure_category("jijin")
    form = {**FORM, "url": "http://127.0.0.1:9/feed"}
    assert post(signed_in, "/admin/sources", **form).status_code == 303
    ((source_id, *_),) = stored(ctx)
    try:
        assert jobs.run_job(strict_ctx, POLL, trigger="cli") is jobs.Outcome.SUCCEEDED
    finally:
        strict_ctx.db.dispose()
    page = signed_in.get(f"/admin/sources/{source_id}").get_data(as_text=True)
    assert "host 127.0.0.1 is a loopback address" in page
    assert re.search(r"连续失败</th><td>1<", page)


def test_edit_changes_what_the_api_shows(signed_in, ctx, factory, auth) -> None:  # type: ignore[no-untyped-def]
    source_id = add(ctx, factory, interval_minutes=30)
    factory.ensure_category("gupiao")
    page = signed_in.get(f"/admin/sources/{source_id}").get_data(as_text=True)
    assert typed_value(page, "interval_minutes") == "30"
    assert typed_value(page, "category") == "jijin" and typed_value(page, "mode") == "related"
    form = {"category": "gupiao", "mode": "posts", "interval_minutes": "90", "enabled": "on"}
    answer = post(signed_in, f"/admin/sources/{source_id}", **form)
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/admin/sources/{source_id}"
    shown = signed_in.get(f"/api/v1/sources/{source_id}", headers=auth).json
    assert (shown["category"], shown["mode"], shown["interval_minutes"]) == ("gupiao", "posts", 90)
    assert shown["enabled"] is True
    assert "已保存订阅源" in signed_in.get(f"/admin/sources/{source_id}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"interval_minutes": ""}, "interval_minutes", "必填"),
        ({"interval_minutes": "3"}, "interval_minutes", "不能少于 5 分钟"),
        ({"interval_minutes": "٣٠"}, "interval_minutes", "半角数字"),
        ({"category": "nope"}, "category", "不是已有的分类"),
        ({"category": "\x00"}, "category", "控制字符"),
        ({"mode": "both"}, "mode", "请选择"),
    ],
)
def test_invalid_edit_is_422_and_changes_nothing(  # type: ignore[no-untyped-def]
    signed_in, ctx, factory, changes, field, message
) -> None:
    source_id = add(ctx, factory, interval_minutes=30)
    before = stored(ctx)
    form = {"category": "jijin", "mode": "posts", "interval_minutes": "90", **changes}
    answer = post(signed_in, f"/admin/sources/{source_id}", **form)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert message in field_error(page, field)
    for name in ("category", "mode", "interval_minutes"):
        assert typed_value(page, name) == form[name].replace("\x00", ""), name
    assert 'id="field-enabled" name="enabled" checked' not in page  # typed: unticked
    assert stored(ctx) == before


def test_disable_and_enable(signed_in, ctx, factory, auth, clock) -> None:  # type: ignore[no-untyped-def]
    source_id = add(ctx, factory)
    path = f"/admin/sources/{source_id}"
    assert post(signed_in, path + "/enabled", enabled="0").status_code == 303
    shown = signed_in.get(f"/api/v1/sources/{source_id}", headers=auth).json
    assert shown["enabled"] is False
    assert shown["state"]["disabled_reason"] == "disabled by the publisher"
    page = signed_in.get(path).get_data(as_text=True)
    assert "已停用订阅源" in page and ">启用</button>" in page
    assert "已停用：由发布者停用" in page

    clock.advance(hours=1)
    assert post(signed_in, path + "/enabled", enabled="1").status_code == 303
    shown = signed_in.get(f"/api/v1/sources/{source_id}", headers=auth).json
    assert shown["enabled"] is True and shown["state"]["disabled_reason"] is None
    assert shown["state"]["next_fetch_at"] == clock.now().isoformat()
    assert ">停用</button>" in signed_in.get(path).get_data(as_text=True)

    before = stored(ctx)
    assert post(signed_in, path + "/enabled", enabled="maybe").status_code == 422
    assert stored(ctx) == before


def test_refresh_now_makes_the_source_due_and_requests_a_poll_run(  # type: ignore[no-untyped-def]
    signed_in, ctx, factory, auth, clock
) -> None:
    source_id = add(ctx, factory, interval_minutes=60)
    with ctx.db.write() as session:
        session.get(Source, source_id).next_fetch_at = clock.now() + timedelta(hours=1)
    clock.advance(minutes=5)
    answer = post(signed_in, f"/admin/sources/{source_id}/refresh")
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/admin/sources/{source_id}"
    shown = signed_in.get(f"/api/v1/sources/{source_id}", headers=auth).json
    assert shown["state"]["next_fetch_at"] == clock.now().isoformat()
    # Requested, not run: the web worker hands it to the scheduler process.
    assert requested_runs(ctx) == [("sources-poll", "requested")]
    listing = signed_in.get("/api/v1/jobs", headers=auth).json["items"]
    job = next(job for job in listing if job["name"] == "sources-poll")
    assert job["requested_run"] == job["runs"][0]["id"]
    page = signed_in.get(f"/admin/sources/{source_id}").get_data(as_text=True)
    assert "已加入抓取队列" in page and f"运行编号 {job['requested_run']}" in page

    # Asking again while the run waits is the same run.
    assert post(signed_in, f"/admin/sources/{source_id}/refresh").status_code == 303
    assert requested_runs(ctx) == [("sources-poll", "requested")]


def test_refresh_now_of_a_disabled_source_is_refused(signed_in, ctx, factory) -> None:  # type: ignore[no-untyped-def]
    source_id = add(ctx, factory, enabled=False)
    before = stored(ctx)
    answer = post(signed_in, f"/admin/sources/{source_id}/refresh")
    assert answer.status_code == 409
    assert "请先启用" in answer.get_data(as_text=True)
    assert stored(ctx) == before and requested_runs(ctx) == []


def test_refresh_now_then_the_scheduler_fetches_it(  # type: ignore[no-untyped-def]
    httpserver: HTTPServer, signed_in, ctx, factory
) -> None:
    httpserver.expect_request("/feed").respond_with_data(FEED, content_type="application/rss+xml")
    source_id = add(ctx, factory, httpserver.url_for("/feed"))
    assert post(signed_in, f"/admin/sources/{source_id}/refresh").status_code == 303
    # What the scheduler process's next tick does: the requested run, in this process.
    assert jobs.run_job(ctx, POLL, trigger="schedule", only_if_due=True) is jobs.Outcome.SUCCEEDED
    assert requested_runs(ctx) == [("sources-poll", "succeeded")]
    page = signed_in.get(f"/admin/sources/{source_id}").get_data(as_text=True)
    assert "编辑订阅源：财经通讯社" in page
    assert re.search(r"HTTP 状态</th><td>200<", page)
    assert "3 条相关内容" in page
    listing = signed_in.get("/admin/sources").get_data(as_text=True)
    found = re.search(rf'<tr id="source-{source_id}">.*?</tr>', listing, re.S)
    assert found and "<td>3</td>" in found.group(0) and "<td>200</td>" in found.group(0)


def test_delete_asks_first(signed_in, ctx, factory) -> None:  # type: ignore[no-untyped-def]
    source_id = add(ctx, factory)
    kept = add(ctx, factory, "https://kept.example.cn/feed")
    page = signed_in.get(f"/admin/sources/{source_id}/delete").get_data(as_text=True)
    assert "确认删除" in page and f'action="/admin/sources/{source_id}/delete"' in page
    assert [row[0] for row in stored(ctx)] == [source_id, kept]  # asking deletes nothing

    answer = post(signed_in, f"/admin/sources/{source_id}/delete")
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/sources"
    assert [row[0] for row in stored(ctx)] == [kept]
    assert f"已删除订阅源 {URL}" in signed_in.get("/admin/sources").get_data(as_text=True)
    assert signed_in.get(f"/admin/sources/{source_id}").status_code == 404


@pytest.mark.parametrize(
    "segment",
    ["999", "0", "-1", "%D9%A1", "%EF%BC%91", "9" * 40, str(2**31), "%00", "1%00", "a" * 5000],
)
def test_unknown_and_hostile_ids_are_404(signed_in, ctx, factory, segment: str) -> None:  # type: ignore[no-untyped-def]
    add(ctx, factory)
    before = stored(ctx)
    token = form_token(signed_in)
    for path in (f"/admin/sources/{segment}", f"/admin/sources/{segment}/delete"):
        assert signed_in.get(path).status_code == 404, path
    for suffix in ("", "/enabled", "/refresh", "/delete"):
        data = {**FORM, "enabled": "0", "csrf_token": token}
        answer = signed_in.post(f"/admin/sources/{segment}{suffix}", data=data)
        assert answer.status_code == 404, suffix
    assert stored(ctx) == before and requested_runs(ctx) == []


def test_the_dashboard_links_failing_sources_to_their_page(signed_in, ctx, factory) -> None:  # type: ignore[no-untyped-def]
    source_id = add(ctx, factory)
    with ctx.db.write() as session:
        row = session.get(Source, source_id)
        row.consecutive_errors, row.last_error = 2, "fetch: timed out"
    page = signed_in.get("/admin").get_data(as_text=True)
    assert f'<a href="/admin/sources/{source_id}">{URL}</a>' in page
