"""Related lists stored and shown: rebuild, incremental refresh, feeds, pages and the API."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from feedsvc.jobs import Outcome, run_job
from feedsvc.related import refresh
from feedsvc.related.engine import RelatedIndex
from feedsvc.repo import related as related_repo
from feedsvc.schedule import JOBS
from tests.conftest import BASE_URL, NOW
from tests.factories import Factory
from tests.feedcheck import parse

pytestmark = pytest.mark.usefixtures("backend")

TOPICS = {
    "bond": [
        (
            "国债收益率下行时怎么买国债",
            "国债 收益率 下行 期限 久期 票面利率 储蓄国债 凭证式 电子式",
        ),
        ("储蓄国债与记账式国债的区别", "储蓄国债 记账式国债 利率 期限 提前兑取 收益率 国债 久期"),
        ("国债逆回购入门", "国债逆回购 收益率 期限 资金 国债 利率 券商 交易日"),
        ("长期国债的久期风险", "长期国债 久期 利率 上行 价格 下跌 国债 收益率 期限"),
    ],
    "insurance": [
        ("养老保险缴费年限怎么算", "养老保险 缴费 年限 退休 养老金 社保 个人账户 统筹"),
        ("个人养老金账户值得开吗", "个人养老金 账户 缴费 税收优惠 养老保险 退休 领取"),
        ("年金险和养老保险的关系", "年金险 养老保险 退休 领取 养老金 补充 缴费 保单"),
        ("灵活就业人员的养老保险", "灵活就业 养老保险 缴费 基数 年限 退休 养老金 社保"),
    ],
    "stock": [
        ("读懂利润表的三个数字", "利润表 营业收入 净利润 毛利率 财报 股票 估值 公司"),
        ("市盈率估值的陷阱", "市盈率 估值 净利润 股票 周期股 财报 公司 盈利"),
        ("现金流量表看什么", "现金流量表 经营现金流 净利润 财报 股票 公司 自由现金流"),
    ],
}


@pytest.fixture
def corpus(factory: Factory) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    for topic, posts in TOPICS.items():
        category = {"bond": "licai-fangfa", "insurance": "jijin", "stock": "gupiao"}[topic]
        for title, words in posts:
            body = f"{words}。{words}。理财有风险，投资需谨慎。"
            post = factory.post(category, title=title, content=body, tags=words.split()[:2])
            ids.setdefault(topic, []).append(post.id)
    return ids


def topic_of(corpus: dict[str, list[int]], post_id: int) -> str:
    return next(topic for topic, ids in corpus.items() if post_id in ids)


def stored(ctx) -> dict[int, list[int]]:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        lists = related_repo.stored_lists(session)
    return {k: [related_repo.split_key(key)[0] for key, _ in v] for k, v in lists.items()}


def expected_under_same_idf(ctx) -> dict[int, list[int]]:  # type: ignore[no-untyped-def]
    """What a full rebuild gives over the current posts, with the refresh's IDF frozen."""
    state = ctx.memory["related"]
    fresh = RelatedIndex(top_k=ctx.settings.related.top_k, min_score=ctx.settings.related.min_score)
    with ctx.db.read() as session:
        docs = [refresh.to_doc(p) for p in related_repo.visible_posts(session, ctx.clock.now())]
    fresh.rebuild(docs, idf=state.index.idf_snapshot())
    result = {}
    for key, items in fresh.lists().items():
        if items:
            result[refresh.post_id_of(key)] = [refresh.post_id_of(i.key) for i in items]
    return result


def test_rebuild_stores_topic_neighbours(ctx, corpus) -> None:
    report = refresh.rebuild(ctx, None)
    lists = stored(ctx)
    assert report.documents == 11 and report.written == len(lists) >= 9
    for post_id, related in lists.items():
        assert post_id not in related
        assert 1 <= len(related) <= ctx.settings.related.top_k
        assert topic_of(corpus, related[0]) == topic_of(corpus, post_id)


def test_feed_entries_end_with_the_related_block(client, ctx, corpus) -> None:
    refresh.rebuild(ctx, None)
    for fmt in ("rss", "atom"):
        parsed, _ = parse(client.get(f"/feeds/licai-fangfa.{fmt}").data)
        content = parsed.entries[0].content[0].value
        assert "相关内容" in content and "继续阅读" in content
        assert content.rstrip().endswith("</ul>")
        assert f'href="{BASE_URL}/posts/' in content


def test_related_change_alone_keeps_entry_dates(client, ctx, corpus, clock) -> None:
    urls = ("/feeds/licai-fangfa.atom", "/feeds/licai-fangfa.rss")
    before = {url: client.get(url) for url in urls}
    clock.advance(minutes=1)
    refresh.rebuild(ctx, None)
    for url in urls:
        after = client.get(url)
        assert after.headers["ETag"] != before[url].headers["ETag"]
        old, _ = parse(before[url].data)
        new, _ = parse(after.data)
        assert "相关内容" not in old.entries[0].content[0].value
        assert "相关内容" in new.entries[0].content[0].value
        # Readers must not show the posts as new: ids, pubDate/published, updated unchanged.
        atom = url.endswith(".atom")  # RSS items have no updated date

        def dates(entries, atom=atom):  # type: ignore[no-untyped-def]
            return [(e.id, e.published, e.updated if atom else None) for e in entries]

        assert dates(old.entries) == dates(new.entries)


def test_same_results_change_no_byte(client, ctx, corpus, clock) -> None:
    refresh.rebuild(ctx, None)
    feeds = {url: client.get(url).data for url in ("/feeds/jijin.rss", "/feeds/all.atom")}
    clock.advance(minutes=30)
    refresh.rebuild(ctx, None)
    assert run_job(ctx, JOBS["related-refresh"], trigger="test") is Outcome.SUCCEEDED
    for url, body in feeds.items():
        assert client.get(url).data == body


def test_incremental_equals_full_rebuild(ctx, corpus, factory: Factory, auth, client) -> None:
    refresh.rebuild(ctx, None)
    assert run_job(ctx, JOBS["related-refresh"], trigger="test") is Outcome.SUCCEEDED
    # Add a bond post, move a stock post to the insurance topic, unpublish and delete others.
    added = factory.post(title="国债期限怎么选", content="国债 期限 收益率 久期 利率 储蓄国债。")
    moved = corpus["stock"][0]
    client.patch(
        f"/api/v1/posts/{moved}",
        headers=auth,
        json={
            "title": "年金险领取方式",
            "content": "年金险 养老保险 领取 退休 养老金 缴费。",
            "tags": ["年金险"],
        },
    )
    client.patch(f"/api/v1/posts/{corpus['bond'][1]}", headers=auth, json={"status": "draft"})
    client.delete(f"/api/v1/posts/{corpus['insurance'][0]}", headers=auth)
    assert run_job(ctx, JOBS["related-refresh"], trigger="test") is Outcome.SUCCEEDED
    lists = stored(ctx)
    assert lists == expected_under_same_idf(ctx)  # exact: no tolerance
    assert topic_of(corpus, lists[moved][0]) == "insurance"
    assert corpus["bond"][1] not in lists and corpus["insurance"][0] not in lists
    assert all(
        corpus["bond"][1] not in v and corpus["insurance"][0] not in v for v in lists.values()
    )
    assert lists[added.id][0] in corpus["bond"]


def test_new_process_refresh_catches_up(ctx, corpus, factory: Factory) -> None:
    refresh.rebuild(ctx, None)
    ctx.memory.clear()  # as if the scheduler process restarted
    added = factory.post(title="国债逆回购的收益率", content="国债逆回购 收益率 国债 期限 利率。")
    report = refresh.refresh(ctx, None)
    assert not report.full
    assert report.compared < 11  # only what the change can touch
    assert stored(ctx)[added.id][0] in corpus["bond"]


def test_scheduled_post_enters_lists_when_due(ctx, corpus, factory: Factory, clock) -> None:
    refresh.rebuild(ctx, None)
    later = factory.post(
        title="国债久期与利率",
        content="国债 久期 利率 收益率 期限 储蓄国债。",
        published_at=NOW + timedelta(hours=1),
    )
    refresh.refresh(ctx, None)
    assert later.id not in stored(ctx)
    clock.advance(hours=2)
    refresh.refresh(ctx, None)
    lists = stored(ctx)
    assert later.id in lists
    assert any(later.id in v for k, v in lists.items() if k in corpus["bond"])


def test_api_and_page_show_the_block(client, ctx, corpus) -> None:
    refresh.rebuild(ctx, None)
    post_id = corpus["insurance"][0]
    response = client.get(f"/api/v1/posts/{post_id}/related")
    assert response.status_code == 200
    items = response.json["items"]
    assert items and items[0]["rank"] == 1 and items[0]["score"] > 0
    assert items[0]["url"].startswith(f"{BASE_URL}/posts/")
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert client.get("/api/v1/posts/99999/related").status_code == 404
    slug = client.get(f"/api/v1/posts/{post_id}").json["slug"]
    page = client.get(f"/posts/{slug}").get_data(as_text=True)
    assert "相关内容" in page and items[0]["title"] in page and "继续阅读" in page


def test_editing_a_related_post_changes_the_feeds_showing_it(
    client, ctx, corpus, auth, clock
) -> None:
    refresh.rebuild(ctx, None)
    owner = corpus["stock"][0]
    shown = stored(ctx)[owner][0]
    category = client.get(f"/api/v1/posts/{owner}").json["category"]
    before = client.get(f"/feeds/{category}.rss")
    clock.advance(minutes=1)
    client.patch(f"/api/v1/posts/{shown}", headers=auth, json={"title": "改过的标题"})
    after = client.get(f"/feeds/{category}.rss")
    assert "改过的标题" in after.get_data(as_text=True)
    assert after.headers["ETag"] != before.headers["ETag"]


def test_a_refresh_failing_half_way_reloads_next_time(
    ctx, corpus, factory: Factory, monkeypatch
) -> None:
    """The in-memory index may be half-updated: it is dropped, and the next run starts over."""
    refresh.rebuild(ctx, None)
    before = stored(ctx)
    added = factory.post(title="国债逆回购的收益率", content="国债逆回购 收益率 国债 期限 利率。")

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("读取中断")

    monkeypatch.setattr(refresh, "_load_docs", broken)
    with pytest.raises(RuntimeError, match="读取中断"):
        refresh.refresh(ctx, None)
    assert "related" not in ctx.memory
    assert stored(ctx) == before  # nothing written
    monkeypatch.undo()
    report = refresh.refresh(ctx, None)
    assert not report.full
    assert stored(ctx)[added.id][0] in corpus["bond"]


from feedsvc.repo import related_index  # noqa: E402


def _no_rebuild(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the index was rebuilt")

    monkeypatch.setattr(RelatedIndex, "rebuild", refuse)


def test_restart_restores_the_persisted_index_and_stays_exact(
    ctx, corpus, factory: Factory, auth, client, monkeypatch
) -> None:
    """A new process (nothing in memory) restores the index from the database, applies the
    changes since, and its lists still equal a full rebuild under the same IDF, exactly."""
    refresh.rebuild(ctx, None)
    held = ctx.memory[refresh.MEMORY_KEY].index
    for _restart in range(2):
        ctx.memory.clear()  # as if the scheduler process restarted
        added = factory.post(title="国债期限怎么选", content="国债 期限 收益率 久期 利率。")
        moved = corpus["stock"][0]
        client.patch(
            f"/api/v1/posts/{moved}",
            headers=auth,
            json={"title": "年金险领取方式", "content": "年金险 养老保险 领取 退休 养老金。"},
        )
        gone = client.delete(f"/api/v1/posts/{corpus['insurance'].pop()}", headers=auth)
        assert gone.status_code == 204
        with monkeypatch.context() as patched:
            _no_rebuild(patched)
            report = refresh.refresh(ctx, None)
        assert not report.full
        restored = ctx.memory[refresh.MEMORY_KEY].index
        assert restored is not held  # a new index object, from the persisted state
        assert stored(ctx) == expected_under_same_idf(ctx)  # exact: no tolerance
        assert stored(ctx)[added.id][0] in corpus["bond"]
        assert topic_of(corpus, stored(ctx)[moved][0]) == "insurance"
        corpus["bond"].append(added.id)
        held = restored
    # What is persisted is exactly the index in memory.
    with ctx.db.read() as session:
        persisted = RelatedIndex.restore(
            related_index.snapshot(session),
            related_index.terms(session, ctx.memory[refresh.MEMORY_KEY].generation),
            related_index.documents(session, ctx.memory[refresh.MEMORY_KEY].generation),
        )
    assert persisted.lists() == held.lists() and persisted.keys() == held.keys()


def test_a_refresh_in_another_process_is_seen_by_the_first(ctx, corpus, factory: Factory) -> None:
    """Two processes on one database: one whose copy is behind restores the newer index."""
    refresh.rebuild(ctx, None)
    first = ctx.memory[refresh.MEMORY_KEY]
    other = dataclasses.replace(ctx, memory={})  # the other process
    factory.post(title="国债逆回购的收益率", content="国债逆回购 收益率 国债 期限 利率。")
    refresh.refresh(other, None)
    factory.post(title="储蓄国债怎么买", content="储蓄国债 国债 收益率 期限。")
    refresh.refresh(ctx, None)
    assert ctx.memory[refresh.MEMORY_KEY] is not first  # behind: restored, not reused
    assert stored(ctx) == expected_under_same_idf(ctx)


@pytest.mark.parametrize("damage", ["missing", "settings", "terms"])
def test_a_missing_or_stale_persisted_index_is_rebuilt(ctx, corpus, factory, damage) -> None:
    from sqlalchemy import delete, update

    from feedsvc.models import RelatedIndexState, RelatedIndexTerm
    from feedsvc.repo import related_index

    refresh.rebuild(ctx, None)
    before = stored(ctx)
    ctx.memory.clear()
    with ctx.db.write() as session:
        if damage == "missing":
            related_index.forget(session)
        elif damage == "settings":
            session.execute(update(RelatedIndexState).values(fingerprint="v0 other settings"))
        else:
            session.execute(delete(RelatedIndexTerm).where(RelatedIndexTerm.id > 3))
    report = refresh.refresh(ctx, None)
    assert report.full  # rebuilt, no crash
    assert stored(ctx) == before
    ctx.memory.clear()
    added = factory.post(title="国债逆回购的收益率", content="国债逆回购 收益率 国债 期限 利率。")
    assert not refresh.refresh(ctx, None).full  # and persisted again
    assert stored(ctx)[added.id][0] in corpus["bond"]
