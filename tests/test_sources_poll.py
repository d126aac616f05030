"""Upstream sources end to end: a real HTTP server on 127.0.0.1, polls, posts, related items."""

from __future__ import annotations

import gzip
import time
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from werkzeug import Request, Response

from feedsvc.models import ExternalItem, Post, Source
from feedsvc.related import refresh
from feedsvc.schemas import SourceCreate
from feedsvc.services import sources as source_service
from feedsvc.sources.poll import poll_sources
from tests.conftest import NOW
from tests.factories import Factory
from tests.feedcheck import parse

pytestmark = pytest.mark.usefixtures("backend")


def rss(*items: str, title: str = "合作博客") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>http://partner.test/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def item(
    guid: str,
    title: str,
    body: str,
    *,
    link: str | None = None,
    date: str | None = "Mon, 02 Mar 2026 09:00:00 +0800",
) -> str:
    date_xml = f"<pubDate>{date}</pubDate>" if date else ""
    return (
        f'<item><guid isPermaLink="false">{guid}</guid><title>{title}</title>'
        f"<link>{link or 'http://partner.test/' + guid}</link>{date_xml}"
        f"<author>编辑</author><description><![CDATA[{body}]]></description></item>"
    )


def add_source(ctx, factory: Factory, url: str, mode: str, category: str = "jijin") -> int:
    factory.ensure_category(category)
    return source_service.create_source(
        ctx, SourceCreate(url=url, category=category, mode=mode, interval_minutes=30)
    ).id


def source(ctx, source_id: int) -> Source:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        return session.get(Source, source_id)


def posts(ctx) -> list[Post]:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        return list(session.scalars(select(Post).order_by(Post.id)))


def test_posts_mode_imports_and_polls_politely(httpserver: HTTPServer, ctx, factory, client):
    body = rss(
        item("a1", "债券基金的久期", "<p>久期越长，利率敏感度越高。</p><script>x()</script>"),
        item("a2", "定投的纪律", "<p>每月固定日期买入。</p>"),
    )
    seen: list[dict] = []

    def handler(request: Request) -> Response:
        seen.append(dict(request.headers))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(
            body,
            headers={
                "ETag": '"v1"',
                "Content-Type": "application/rss+xml",
                "Last-Modified": "Mon, 02 Mar 2026 01:00:00 GMT",
            },
        )

    httpserver.expect_request("/feed").respond_with_handler(handler)
    source_id = add_source(ctx, factory, httpserver.url_for("/feed"), "posts")
    (outcome,) = poll_sources(ctx, None)
    assert outcome.error is None and outcome.report.new == 2
    stored = posts(ctx)
    assert [p.title for p in stored] == ["债券基金的久期", "定投的纪律"]
    assert stored[0].origin_link == "http://partner.test/a1"
    assert stored[0].author == "编辑" and "script" not in stored[0].pages[0]
    assert stored[0].published_at == NOW.replace(year=2026, month=3, day=2, hour=9)
    state = source(ctx, source_id)
    assert (state.etag, state.last_status, state.consecutive_errors) == ('"v1"', 200, 0)
    assert state.next_fetch_at == NOW + timedelta(minutes=30)
    assert state.title == "合作博客"
    assert seen[0]["User-Agent"].startswith("feedsvc/")
    # The feed item links to the original article; the feed parses.
    parsed, _ = parse(client.get("/feeds/jijin.rss").data)
    assert {e.link for e in parsed.entries} == {"http://partner.test/a1", "http://partner.test/a2"}
    # Second poll: conditional GET, 304, nothing changes but the state.
    (again,) = poll_sources(ctx, None, only=[source_id])
    assert again.status == 304 and again.report.new == 0
    assert seen[1]["If-None-Match"] == '"v1"'
    assert seen[1]["If-Modified-Since"] == "Mon, 02 Mar 2026 01:00:00 GMT"
    assert len(posts(ctx)) == 2 and source(ctx, source_id).last_status == 304


def test_edited_entries_update_duplicates_do_not_and_deleted_stay_deleted(
    httpserver: HTTPServer, ctx, factory, auth, client
) -> None:
    feeds = [
        rss(item("e1", "原标题", "<p>第一版。</p>"), item("e2", "第二篇", "<p>内容。</p>")),
        rss(
            item("e1", "改过的标题", "<p>第二版。</p>"),
            item("e2", "第二篇", "<p>内容。</p>"),
            item("e2", "第二篇", "<p>内容。</p>"),
        ),  # the same entry twice in one feed
        # e3 has a new guid but the link of e2: the same article.
        rss(item("e3", "第二篇", "<p>内容。</p>", link="http://partner.test/e2")),
    ]
    httpserver.expect_ordered_request("/feed").respond_with_data(feeds[0])
    httpserver.expect_ordered_request("/feed").respond_with_data(feeds[1])
    httpserver.expect_ordered_request("/feed").respond_with_data(feeds[2])
    httpserver.expect_ordered_request("/feed").respond_with_data(feeds[0])
    source_id = add_source(ctx, factory, httpserver.url_for("/feed"), "posts")
    poll_sources(ctx, None, only=[source_id])
    first = posts(ctx)
    (updated,) = poll_sources(ctx, None, only=[source_id])
    assert updated.report.updated == 1 and updated.report.new == 0
    after = posts(ctx)
    assert [p.id for p in after] == [p.id for p in first]
    assert after[0].title == "改过的标题" and "第二版" in after[0].pages[0]
    assert after[0].guid == first[0].guid
    (by_link,) = poll_sources(ctx, None, only=[source_id])
    assert by_link.report.new == 0 and len(posts(ctx)) == 2
    # The publisher deletes the first post here: polling never brings it back.
    assert client.delete(f"/api/v1/posts/{first[0].id}", headers=auth).status_code == 204
    (later,) = poll_sources(ctx, None, only=[source_id])
    assert later.report.new == 0
    assert [p.id for p in posts(ctx)] == [first[1].id]


def test_entry_without_a_date_gets_the_fetch_time_once(httpserver, ctx, factory, clock):
    httpserver.expect_ordered_request("/feed").respond_with_data(
        rss(item("n1", "没有日期", "<p>一</p>", date=None))
    )
    httpserver.expect_ordered_request("/feed").respond_with_data(
        rss(item("n1", "没有日期", "<p>二</p>", date=None))
    )
    source_id = add_source(ctx, factory, httpserver.url_for("/feed"), "posts")
    poll_sources(ctx, None, only=[source_id])
    clock.advance(hours=3)
    poll_sources(ctx, None, only=[source_id])
    (post,) = posts(ctx)
    assert post.published_at == NOW and "二" in post.pages[0]


def test_a_future_date_is_clamped_to_the_fetch_time(httpserver, ctx, factory) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        rss(item("f1", "来自未来", "<p>x</p>", date="Mon, 01 Jan 2035 09:00:00 +0800"))
    )
    source_id = add_source(ctx, factory, httpserver.url_for("/feed"), "posts")
    poll_sources(ctx, None, only=[source_id])
    assert posts(ctx)[0].published_at == NOW


@pytest.fixture
def threaded_server():  # type: ignore[no-untyped-def]
    """A server answering several requests at once: one slow source must not block others."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_faults_fail_their_source_alone(threaded_server: HTTPServer, ctx, factory) -> None:
    httpserver = threaded_server
    good = rss(item("g1", "正常的文章", "<p>正常。</p>"))
    bomb = gzip.compress(b"<rss>" + b"0" * (30 * 1024 * 1024))
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<rss version="2.0"><channel><title>&lol3;</title></channel></rss>'
    )

    def slow(_request: Request) -> Response:
        time.sleep(3)
        return Response(good)

    httpserver.expect_request("/good").respond_with_data(good)
    httpserver.expect_request("/error").respond_with_data("oops", status=500)
    httpserver.expect_request("/malformed").respond_with_data("<rss><channel><item>")
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    httpserver.expect_request("/laughs").respond_with_data(laughs)
    httpserver.expect_request("/slow").respond_with_handler(slow)
    ids = {
        name: add_source(ctx, factory, httpserver.url_for(f"/{name}"), "posts")
        for name in ("good", "error", "malformed", "bomb", "laughs", "slow")
    }
    outcomes = {o.source_id: o for o in poll_sources(ctx, None)}
    assert outcomes[ids["good"]].error is None
    assert [p.title for p in posts(ctx)] == ["正常的文章"]
    for name in ("error", "malformed", "bomb", "slow"):
        state = source(ctx, ids[name])
        assert state.consecutive_errors == 1, name
        assert state.last_error, name
        assert state.next_fetch_at == NOW + timedelta(minutes=60), name  # backed off
    assert "500" in source(ctx, ids["error"]).last_error
    assert "timeout" in source(ctx, ids["slow"]).last_error
    # Entities are never expanded: the payload yields no text, no entries, no harm.
    assert "lollol" not in (source(ctx, ids["laughs"]).title or "")
    assert source(ctx, ids["laughs"]).enabled


def test_gone_moved_and_rate_limited(httpserver: HTTPServer, ctx, factory) -> None:
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/new")}
    )
    httpserver.expect_request("/new").respond_with_data(rss(item("m1", "搬家了", "<p>x</p>")))
    httpserver.expect_request("/busy").respond_with_data(
        "", status=429, headers={"Retry-After": "7200"}
    )
    gone = add_source(ctx, factory, httpserver.url_for("/gone"), "posts")
    moved = add_source(ctx, factory, httpserver.url_for("/old"), "posts")
    busy = add_source(ctx, factory, httpserver.url_for("/busy"), "posts")
    poll_sources(ctx, None)
    state = source(ctx, gone)
    assert not state.enabled and state.disabled_reason == "gone (410)"
    assert source(ctx, moved).url == httpserver.url_for("/new")
    assert source(ctx, busy).next_fetch_at == NOW + timedelta(hours=2)
    # A disabled source is not polled again.
    assert [o.source_id for o in poll_sources(ctx, None)] == []


def test_private_addresses_are_refused(ctx, factory, settings) -> None:
    from feedsvc import create_app
    from feedsvc.clock import FrozenClock

    strict = settings.model_copy(
        update={"sources": settings.sources.model_copy(update={"allow_hosts": ()})}
    )
    app = create_app(settings=strict, clock=FrozenClock(NOW))
    strict_ctx = app.extensions["feedsvc"]
    source_id = add_source(ctx, factory, "http://127.0.0.1:9/feed", "posts")
    (outcome,) = poll_sources(strict_ctx, None)
    assert outcome.source_id == source_id
    assert "loopback" in outcome.error or "private" in outcome.error, outcome.error
    assert source(ctx, source_id).consecutive_errors == 1
    strict_ctx.db.dispose()


def test_related_mode_items_show_in_matching_posts_only(httpserver, ctx, factory, client):
    recent = "Fri, 20 Nov 2026 09:00:00 +0800"  # within sources.external_max_age_days
    feed = rss(
        item(
            "x1",
            "国债收益率下行，储蓄国债更抢手",
            "<p>国债 收益率 储蓄国债 期限 久期 利率。</p>",
            date=recent,
        ),
        item("x2", "国债期限怎么选", "<p>国债 期限 久期 收益率 储蓄国债。</p>", date=recent),
        title="财经通讯社",
    )
    httpserver.expect_request("/wire").respond_with_data(feed)
    bond = factory.post(
        "licai-fangfa",
        title="储蓄国债值得买吗",
        content="储蓄国债 国债 收益率 期限 久期 利率。",
        tags=["国债"],
    )
    stock = factory.post(
        "gupiao", title="读懂利润表", content="利润表 营业收入 净利润 毛利率。", tags=["财报"]
    )
    add_source(ctx, factory, httpserver.url_for("/wire"), "related", category="licai-fangfa")
    (outcome,) = poll_sources(ctx, None)
    assert outcome.report.new == 2
    with ctx.db.read() as session:
        assert session.scalar(select(func.count(ExternalItem.id))) == 2
    refresh.refresh(ctx, None)
    related = client.get(f"/api/v1/posts/{bond.id}/related").json["items"]
    external = [i for i in related if i["kind"] == "external"]
    assert external and external[0]["url"].startswith("http://partner.test/")
    assert external[0]["source"] == "财经通讯社"
    assert all(
        i["kind"] != "external"
        for i in client.get(f"/api/v1/posts/{stock.id}/related").json["items"]
    )
    # Never feed entries, but shown in the matching post's block, linking to the original.
    parsed, _ = parse(client.get("/feeds/licai-fangfa.atom").data)
    assert [e.title for e in parsed.entries] == ["储蓄国债值得买吗"]
    content = parsed.entries[0].content[0].value
    assert "http://partner.test/x" in content and "财经通讯社" in content
    stock_feed = client.get("/feeds/gupiao.rss").get_data(as_text=True)
    assert "partner.test" not in stock_feed


def test_external_items_are_pruned_by_count(httpserver, ctx, factory, settings) -> None:
    many = rss(
        *(
            item(
                f"p{n}",
                f"第{n}条快讯",
                f"<p>快讯{n}</p>",
                date=f"Fri, 20 Nov 2026 0{n}:00:00 +0800",
            )
            for n in range(1, 6)
        )
    )
    httpserver.expect_request("/wire").respond_with_data(many)
    from feedsvc import create_app
    from feedsvc.clock import FrozenClock

    small = settings.model_copy(
        update={"sources": settings.sources.model_copy(update={"external_max_per_source": 3})}
    )
    small_ctx = create_app(settings=small, clock=FrozenClock(NOW)).extensions["feedsvc"]
    add_source(ctx, factory, httpserver.url_for("/wire"), "related")
    poll_sources(small_ctx, None)
    with ctx.db.read() as session:
        titles = sorted(session.scalars(select(ExternalItem.title)))
    assert titles == ["第3条快讯", "第4条快讯", "第5条快讯"]
    small_ctx.db.dispose()


def test_external_items_are_pruned_by_age(httpserver, ctx, factory) -> None:
    httpserver.expect_request("/wire").respond_with_data(
        rss(
            item("old", "旧闻", "<p>旧</p>", date="Mon, 02 Mar 2026 09:00:00 +0800"),
            item("new", "新闻", "<p>新</p>", date="Fri, 27 Nov 2026 09:00:00 +0800"),
        )
    )
    add_source(ctx, factory, httpserver.url_for("/wire"), "related")
    poll_sources(ctx, None)
    with ctx.db.read() as session:
        assert list(session.scalars(select(ExternalItem.title))) == ["新闻"]


@pytest.mark.parametrize("mode", ["posts", "related"])
@pytest.mark.parametrize("fault", ["500", "malformed", "bomb", "empty", "html"])
def test_a_fault_after_a_good_poll_loses_nothing(httpserver, ctx, factory, clock, mode, fault):
    recent = "Fri, 27 Nov 2026 09:00:00 +0800"
    good = rss(
        item("k1", "保留的文章", "<p>一</p>", date=recent),
        item("k2", "另一篇", "<p>二</p>", date=recent),
    )
    faults = {
        "500": ("oops", 500, {}),
        "malformed": ("<rss><channel><item><title>断", 200, {}),
        "bomb": (gzip.compress(b"0" * (30 * 1024 * 1024)), 200, {"Content-Encoding": "gzip"}),
        "empty": ("", 200, {}),
        "html": ("<html><body>维护中</body></html>", 200, {"Content-Type": "text/html"}),
    }
    body, status, headers = faults[fault]
    httpserver.expect_ordered_request("/feed").respond_with_data(good)
    httpserver.expect_ordered_request("/feed").respond_with_data(body, status, headers)
    source_id = add_source(ctx, factory, httpserver.url_for("/feed"), mode)
    poll_sources(ctx, None)

    def stored() -> list[str]:
        with ctx.db.read() as session:
            model = Post if mode == "posts" else ExternalItem
            return sorted(session.scalars(select(model.title)))

    before = stored()
    assert before == sorted(["保留的文章", "另一篇"])
    clock.advance(minutes=31)
    (outcome,) = poll_sources(ctx, None)
    assert outcome.error, fault
    assert stored() == before
    state = source(ctx, source_id)
    assert state.consecutive_errors == 1 and state.enabled


def test_a_feed_moving_onto_another_source_keeps_its_url(httpserver: HTTPServer, ctx, factory):
    """A 301 to a URL that is a source already: the poll is stored, the URL stays unique."""
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/new")}
    )
    httpserver.expect_request("/new").respond_with_data(rss(item("m1", "搬到隔壁", "<p>x</p>")))
    old = add_source(ctx, factory, httpserver.url_for("/old"), "related")
    new = add_source(ctx, factory, httpserver.url_for("/new"), "related")
    outcomes = {o.source_id: o for o in poll_sources(ctx, None, only=[old])}
    assert outcomes[old].error is None
    moved = source(ctx, old)
    assert moved.url == httpserver.url_for("/old")  # not the other source's URL
    assert (moved.last_status, moved.consecutive_errors, moved.title) == (200, 0, "合作博客")
    assert source(ctx, new).url == httpserver.url_for("/new")


def test_a_source_removed_during_its_fetch_stays_removed(httpserver: HTTPServer, ctx, factory):
    source_id = 0

    def remove_then_fail(request: Request) -> Response:
        source_service.delete_source(ctx, source_id)  # an editor, while the fetch runs
        return Response("维护中", status=503)

    httpserver.expect_request("/feed").respond_with_handler(remove_then_fail)
    source_id = add_source(ctx, factory, httpserver.url_for("/feed"), "related")
    (outcome,) = poll_sources(ctx, None)
    assert (outcome.source_id, outcome.status) == (source_id, 503)
    assert outcome.error == "fetch: HTTP 503 Service Unavailable"
    with ctx.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 0


@pytest.mark.parametrize("mode", ["related", "posts"])
def test_a_source_removed_during_a_good_fetch_stores_nothing(
    httpserver: HTTPServer, ctx, factory, mode: str, caplog
):
    """Was a FOREIGN KEY failure logged as a bug (related) or an AssertionError (posts)."""
    source_id = 0

    def remove_then_answer(request: Request) -> Response:
        source_service.delete_source(ctx, source_id)  # an editor, while the fetch runs
        return Response(rss(item("g1", "删掉之后才到的文章", "<p>正文</p>")), status=200)

    httpserver.expect_request("/feed").respond_with_handler(remove_then_answer)
    source_id = add_source(ctx, factory, httpserver.url_for("/feed"), mode)
    posts_before = factory.counts()["posts"]
    with caplog.at_level("INFO", logger="feedsvc.sources"):
        (outcome,) = poll_sources(ctx, None)
    assert (outcome.source_id, outcome.status, outcome.error) == (source_id, 200, None)
    assert "was removed while it was fetched" in caplog.text
    assert "Traceback" not in caplog.text
    with ctx.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 0
        assert session.scalar(select(func.count()).select_from(ExternalItem)) == 0
    assert factory.counts()["posts"] == posts_before


def test_a_source_removed_before_its_edited_entries_are_stored_changes_no_post(
    httpserver: HTTPServer, ctx, factory, clock, monkeypatch
):
    """An editor removes the source between the store reading its entries and updating them
    (simulated: the removal runs right after that read)."""
    from feedsvc.sources import store

    httpserver.expect_ordered_request("/feed").respond_with_data(
        rss(item("e1", "原来的标题", "<p>原来的正文</p>"))
    )
    httpserver.expect_ordered_request("/feed").respond_with_data(
        rss(item("e1", "改过的标题", "<p>改过的正文</p>"))
    )
    source_id = add_source(ctx, factory, httpserver.url_for("/feed"), "posts")
    poll_sources(ctx, None, only=[source_id])
    read_entries = store.source_repo.entries_of

    def read_then_remove(session, source):  # type: ignore[no-untyped-def]
        rows = read_entries(session, source)
        source_service.delete_source(ctx, source_id)
        return rows

    monkeypatch.setattr(store.source_repo, "entries_of", read_then_remove)
    clock.advance(hours=3)
    (outcome,) = poll_sources(ctx, None, only=[source_id])
    assert outcome.error is None
    (post,) = posts(ctx)  # the post it brought in stays, as it was
    assert post.title == "原来的标题" and "原来的正文" in post.pages[0]


def test_a_bug_storing_one_source_does_not_stop_the_others(
    httpserver: HTTPServer, ctx, factory, monkeypatch
):
    from feedsvc.sources import poll

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("存储出错")

    httpserver.expect_request("/posts").respond_with_data(rss(item("p1", "文章", "<p>x</p>")))
    httpserver.expect_request("/items").respond_with_data(
        rss(item("i1", "条目", "<p>y</p>", date=None))
    )
    broken_id = add_source(ctx, factory, httpserver.url_for("/posts"), "posts")
    fine_id = add_source(ctx, factory, httpserver.url_for("/items"), "related")
    monkeypatch.setattr(poll, "store_as_posts", broken)
    outcomes = {o.source_id: o for o in poll_sources(ctx, None)}
    assert outcomes[broken_id].error == "store: RuntimeError: 存储出错"
    assert outcomes[fine_id].error is None
    failed = source(ctx, broken_id)
    assert (failed.consecutive_errors, failed.last_error) == (1, "store: RuntimeError: 存储出错")
    assert failed.next_fetch_at > NOW  # backed off, tried again later
    assert posts(ctx) == []
    with ctx.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ExternalItem)) == 1


def test_related_items_need_a_link_and_follow_edits(httpserver: HTTPServer, ctx, factory):
    """An upstream entry without a link has nowhere for 继续阅读 to go: skipped. An edited
    entry updates its item in place."""
    no_link = (
        '<item><guid isPermaLink="false">n1</guid><title>没有链接</title>'
        "<description>无处可去。</description></item>"
    )
    bodies = iter(
        [
            rss(item("e1", "原来的标题", "<p>原文。</p>", date=None), no_link),
            rss(item("e1", "改过的标题", "<p>改过的正文。</p>", date=None), no_link),
        ]
    )
    httpserver.expect_request("/feed").respond_with_handler(
        lambda request: Response(next(bodies), content_type="application/rss+xml")
    )
    source_id = add_source(ctx, factory, httpserver.url_for("/feed"), "related")
    (first,) = poll_sources(ctx, None)
    assert (first.report.new, first.report.updated, first.report.skipped) == (1, 0, 1)
    (second,) = poll_sources(ctx, None, only=[source_id])
    assert (second.report.new, second.report.updated, second.report.skipped) == (0, 1, 1)
    with ctx.db.read() as session:
        items = list(session.scalars(select(ExternalItem)))
    assert [(i.entry_id, i.title, i.body) for i in items] == [("e1", "改过的标题", "改过的正文。")]


def test_an_edited_upstream_item_is_refreshed_in_the_lists_showing_it(
    httpserver: HTTPServer, ctx, factory, client, clock
):
    recent = "Fri, 20 Nov 2026 09:00:00 +0800"
    bodies = iter(
        [
            rss(
                item("x1", "储蓄国债更抢手", "<p>国债 收益率 储蓄国债 期限 久期。</p>", date=recent)
            ),
            rss(
                item(
                    "x1", "储蓄国债又发行了", "<p>国债 收益率 储蓄国债 期限 利率。</p>", date=recent
                )
            ),
        ]
    )
    httpserver.expect_request("/wire").respond_with_handler(
        lambda request: Response(next(bodies), content_type="application/rss+xml")
    )
    bond = factory.post(
        "licai-fangfa",
        title="储蓄国债值得买吗",
        content="储蓄国债 国债 收益率 期限 久期 利率。",
        tags=["国债"],
    )
    wire = add_source(ctx, factory, httpserver.url_for("/wire"), "related", "licai-fangfa")
    poll_sources(ctx, None)
    refresh.refresh(ctx, None)

    def shown() -> list[str]:
        items = client.get(f"/api/v1/posts/{bond.id}/related").json["items"]
        return [i["title"] for i in items if i["kind"] == "external"]

    assert shown() == ["储蓄国债更抢手"]
    clock.advance(minutes=30)
    (outcome,) = poll_sources(ctx, None, only=[wire])
    assert outcome.report.updated == 1
    report = refresh.refresh(ctx, None)
    assert not report.full  # incremental: only the edited item and the lists showing it
    assert shown() == ["储蓄国债又发行了"]
