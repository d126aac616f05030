"""/admin/posts: the list (filters, search, pages), the editor (create, edit, schedule), the
preview, delete; every write the same rows and feeds as the API's; invalid forms shown again
(422) with Chinese messages and every typed value; nothing written on a refusal."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import feedparser
import pytest

from feedsvc.related import refresh
from feedsvc.repo import posts as post_repo
from tests.admin.conftest import field_error, form_token, post, typed_value
from tests.conftest import BEIJING
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

BODY = (
    "## 先记账\n\n每月工资到账，先记下固定支出：房租、通勤、保险。\n\n"
    "<!--nextpage-->\n\n## 再储蓄\n\n余下的钱先转一半进储蓄账户，剩下的才是可花的。"
)
FORM = {
    "title": "月光族的第一份预算表",
    "slug": "",
    "category": "licai-fangfa",
    "tags": "预算，储蓄、记账",
    "format": "markdown",
    "content": BODY,
    "summary": "",
    "author": "林晓",
    "status": "published",
    "published_at": "",
}


def form(**changes: str) -> dict[str, str]:
    return {**FORM, **changes}


def page_of(answer: Any) -> str:
    return str(answer.get_data(as_text=True))


def stored_post(ctx, slug: str):  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        found = post_repo.get_post_by_slug(session, slug)
        assert found is not None, slug
        _ = found.category, found.tags
        return found


def created_id(answer: Any) -> int:
    assert answer.status_code == 303, page_of(answer)
    found = re.fullmatch(r"/admin/posts/(\d+)", answer.headers["Location"])
    assert found, answer.headers["Location"]
    return int(found.group(1))


def site_entries(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    feed = feedparser.parse(client.get("/feeds/all.atom").data)
    return {entry.title: entry for entry in feed.entries}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/posts"),
        ("get", "/admin/posts/new"),
        ("post", "/admin/posts"),
        ("post", "/admin/posts/preview"),
        ("get", "/admin/posts/1"),
        ("post", "/admin/posts/1"),
        ("get", "/admin/posts/1/delete"),
        ("post", "/admin/posts/1/delete"),
    ],
)
def test_signed_out_goes_to_login(client, factory: Factory, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    factory.post()
    before = factory.snapshot()
    answer = client.get(path) if method == "get" else post(client, path, **FORM)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login?next=/admin/posts")
    assert factory.snapshot() == before


@pytest.mark.parametrize("path", ["/admin/posts", "/admin/posts/1", "/admin/posts/1/delete"])
def test_a_post_without_the_csrf_token_is_refused(signed_in, factory: Factory, path: str) -> None:  # type: ignore[no-untyped-def]
    factory.post()
    before = factory.snapshot()
    for token in ({}, {"csrf_token": "wrong"}):
        answer = signed_in.post(path, data={**FORM, "title": "改了", **token})
        assert answer.status_code == 400
    assert factory.snapshot() == before


def test_create_publishes_a_two_page_post_with_tags(  # type: ignore[no-untyped-def]
    signed_in, factory: Factory, ctx, clock
) -> None:
    factory.category()
    post_id = created_id(post(signed_in, "/admin/posts", **form()))
    stored = stored_post(ctx, "yue-guang-zu-de-di-yi-fen-yu-suan-biao")
    assert stored.id == post_id
    assert [tag.name for tag in stored.tags] == sorted(["预算", "储蓄", "记账"])
    assert len(stored.pages) == 2 and stored.status == "published"
    assert stored.published_at == clock.now() and not stored.summary_given
    editor = page_of(signed_in.get(f"/admin/posts/{post_id}"))
    assert "已发布《月光族的第一份预算表》" in editor
    assert typed_value(editor, "content") == BODY
    assert typed_value(editor, "summary") == ""  # derived: shown empty, stays derived
    public = page_of(signed_in.get("/posts/yue-guang-zu-de-di-yi-fen-yu-suan-biao"))
    assert "共2页" in public and "先记账" in public
    entry = site_entries(signed_in)["月光族的第一份预算表"]
    assert {tag.term for tag in entry.tags} >= {"预算", "储蓄", "记账"}
    assert entry.author == "林晓"


def test_an_admin_write_reaches_the_feeds_as_the_api_write_does(  # type: ignore[no-untyped-def]
    signed_in, factory: Factory, auth: dict[str, str]
) -> None:
    """The same post written through both: every feed field but its link and id agrees."""
    factory.category()
    when = "2026-03-01T09:30"  # before the tests' clock: published
    fields = form(slug="from-admin", published_at=when, summary="摘要")
    created_id(post(signed_in, "/admin/posts", **fields))
    api = {
        **{k: v for k, v in FORM.items() if k not in ("slug", "tags", "published_at")},
        "slug": "from-api",
        "tags": ["预算", "储蓄", "记账"],
        "summary": "摘要",
        "published_at": when,
    }
    assert signed_in.post("/api/v1/posts", json=api, headers=auth).status_code == 201
    for path in ("/feeds/all.atom", "/feeds/licai-fangfa.rss", "/feeds/tags/yu-suan.atom"):
        feed = feedparser.parse(signed_in.get(path).data)
        admin, api_entry = sorted(feed.entries, key=lambda entry: entry.link)
        assert "from-admin" in admin.link and "from-api" in api_entry.link
        for key in ("title", "summary", "published", "updated", "author", "content", "tags"):
            assert admin.get(key) == api_entry.get(key), (path, key)
    items = json.loads(signed_in.get("/feeds/all.json").data)["items"]
    admin_item, api_item = sorted(items, key=lambda item: item["url"])
    for item in (admin_item, api_item):
        del item["id"], item["url"]
    assert admin_item == api_item


def test_a_future_time_schedules_the_post(signed_in, factory: Factory, ctx, clock) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    due = (clock.now() + timedelta(minutes=1)).astimezone(ctx.settings.site.tz)
    when = due.strftime("%Y-%m-%dT%H:%M")
    answer = post(signed_in, "/admin/posts", **form(published_at=when))
    post_id = created_id(answer)
    assert "将于" in page_of(signed_in.get(f"/admin/posts/{post_id}"))
    board = page_of(signed_in.get("/admin"))
    scheduled = board.split('id="scheduled"')[1].split("</table>")[0]
    assert "月光族的第一份预算表" in scheduled and due.strftime("%Y-%m-%d %H:%M") in scheduled
    assert "月光族的第一份预算表" not in site_entries(signed_in)
    listed = page_of(signed_in.get("/admin/posts?status=scheduled"))
    assert f'id="post-{post_id}"' in listed
    clock.advance(minutes=2)
    assert "月光族的第一份预算表" in site_entries(signed_in)
    assert f'id="post-{post_id}"' in page_of(signed_in.get("/admin/posts?status=published"))


def test_a_draft_stays_out_of_the_feeds(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    post_id = created_id(post(signed_in, "/admin/posts", **form(status="draft")))
    assert "已保存草稿" in page_of(signed_in.get(f"/admin/posts/{post_id}"))
    assert "月光族的第一份预算表" not in site_entries(signed_in)
    assert f'id="post-{post_id}"' in page_of(signed_in.get("/admin/posts?status=draft"))


def test_the_list_filters_searches_and_pages(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    for n in range(23):
        factory.post(title=f"储蓄计划第{n}期")
    factory.post("jijin", title="基金定投 100% 指南", tags=["定投"])
    factory.post(title="草稿：还没写完", status="draft", tags=["草稿箱"])

    def ids(query: str) -> list[str]:
        return re.findall(r'<tr id="post-(\d+)">', page_of(signed_in.get("/admin/posts" + query)))

    first = page_of(signed_in.get("/admin/posts"))
    assert len(ids("")) == 20 and 'rel="next" href="/admin/posts?page=2"' in first
    assert len(ids("?page=2")) == 5
    assert len(ids("?category=jijin")) == 1
    assert len(ids("?tag=定投")) == 1 and len(ids("?tag=预算&page=2")) == 3
    assert ids("?tag=ding-tou") == ids("?tag=定投")  # a tag's slug, as its public URL has it
    assert len(ids("?status=draft")) == 1 and len(ids("?status=published&page=2")) == 4
    assert len(ids("?q=100%25")) == 1  # % is a character, not a wildcard
    assert len(ids("?q=第1")) == 11  # 第1期, 第10期 … 第19期
    assert len(ids("?q=储蓄&page=2")) == 3
    paged = page_of(signed_in.get("/admin/posts?q=储蓄"))
    assert 'href="/admin/posts?q=%E5%82%A8%E8%93%84&amp;page=2"' in paged
    for nothing in ("?category=nope", "?tag=没有", "?status=maybe", "?q=没有这种标题"):
        assert ids(nothing) == [], nothing
        assert "没有符合条件的文章" in page_of(signed_in.get("/admin/posts" + nothing))


@pytest.mark.parametrize("page", ["0", "-1", "x", "٣", "１", "9" * 30])
def test_a_hostile_page_number_is_a_404(signed_in, page: str) -> None:  # type: ignore[no-untyped-def]
    assert signed_in.get("/admin/posts", query_string={"page": page}).status_code == 404


@pytest.mark.parametrize(
    ("filters", "status"),
    [
        ({"q": "x" * 5000}, 200),
        ({"status": "🙂"}, 200),
        ({"tag": "%_"}, 200),
        # NUL anywhere in a query string is refused before any view (web/routing.py).
        ({"q": "\x00"}, 400),
        ({"category": "\x00x"}, 400),
        ({"page": "2\x00"}, 400),
    ],
)
def test_hostile_filters_answer_a_page_or_a_400(  # type: ignore[no-untyped-def]
    signed_in, factory: Factory, filters: dict[str, str], status: int
) -> None:
    factory.post()
    assert signed_in.get("/admin/posts", query_string=filters).status_code == status


@pytest.mark.parametrize(
    ("changes", "name", "message"),
    [
        ({"title": ""}, "title", "不能为空"),
        ({"title": "x" * 301}, "title", "最多 300 个字符"),
        ({"title": "标题\x00"}, "title", "控制字符"),
        ({"category": "nope"}, "category", "不是已有的分类"),
        ({"format": "pdf"}, "format", "请选择"),
        ({"status": "maybe"}, "status", "请选择"),
        ({"published_at": "明天早上"}, "published_at", "2026-03-15 09:30"),
        ({"published_at": "２０２６-03-15T09:30"}, "published_at", "2026-03-15 09:30"),
        ({"published_at": "1900-01-01T00:00"}, "published_at", "1970"),
        ({"slug": "中文网址"}, "slug", "小写英文字母"),
        ({"tags": "、".join(f"标签{n}" for n in range(31))}, "tags", "最多 30 个"),
        ({"tags": "好，" + "长" * 51}, "tags", "第 2 个标签"),
        ({"format": "html", "content": "<script>alert(1)</script>"}, "content", "内容为空"),
        ({"content": ">" * 5000 + "深"}, "content", "嵌套超过"),
    ],
)
def test_an_invalid_form_comes_back_with_its_values(  # type: ignore[no-untyped-def]
    signed_in, factory: Factory, changes: dict[str, str], name: str, message: str
) -> None:
    factory.category()
    before = factory.snapshot()
    answer = post(signed_in, "/admin/posts", **form(**changes))
    assert answer.status_code == 422
    page = page_of(answer)
    assert message in field_error(page, name), field_error(page, name)
    assert typed_value(page, "content") == form(**changes)["content"]
    assert typed_value(page, "tags") == form(**changes)["tags"]
    if name not in ("title", "category", "format", "status"):
        assert typed_value(page, "title") == FORM["title"]
    assert factory.snapshot() == before


def test_a_long_post_is_taken_as_the_api_takes_it(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    """700 kB of text in one field: within http.max_request_bytes (1 MiB), as for the API.
    The editor sends multipart/form-data: URL-encoded, each Chinese character takes 9 bytes."""
    factory.category()
    long_body = ("每月结余先存一半，余下再花。" * 20 + "\n\n") * 850
    assert 600_000 < len(long_body.encode()) < 1_000_000
    fields = {**form(slug="chang-wen", content=long_body), "csrf_token": form_token(signed_in)}
    answer = signed_in.post("/admin/posts", data=fields, content_type="multipart/form-data")
    created_id(answer)
    assert stored_post(ctx, "chang-wen").body == long_body.strip()  # as the API stores it


def test_a_taken_slug_is_a_field_error(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    factory.post(slug="yu-suan")
    before = factory.snapshot()
    answer = post(signed_in, "/admin/posts", **form(slug="yu-suan"))
    assert answer.status_code == 422
    assert field_error(page_of(answer), "slug") == "已被占用，请换一个"
    assert factory.snapshot() == before


def test_an_edit_changes_only_what_was_changed(signed_in, factory: Factory, ctx, clock) -> None:  # type: ignore[no-untyped-def]
    # Stored with seconds: the editor shows minutes, and an untouched time keeps them.
    original = factory.post(published_at=clock.now() - timedelta(days=1, seconds=17))
    editor = page_of(signed_in.get(f"/admin/posts/{original.id}"))
    choices = {"category": "licai-fangfa", "format": "markdown", "status": "published"}
    values = {name: typed_value(editor, name) for name in FORM if name not in choices}
    values.update(choices)
    for name, value in choices.items():
        assert re.search(rf'name="{name}".*?<option value="{value}" selected>', editor, re.S)
    before = factory.snapshot()
    clock.advance(minutes=5)
    # A browser sends a textarea's line breaks as CRLF.
    crlf = {**values, "content": values["content"].replace("\n", "\r\n")}
    answer = post(signed_in, f"/admin/posts/{original.id}", **crlf)
    assert answer.status_code == 303
    assert "没有改动" in page_of(signed_in.get(answer.headers["Location"]))
    assert factory.snapshot() == before
    answer = post(signed_in, f"/admin/posts/{original.id}", **{**crlf, "title": "改过的标题"})
    assert answer.status_code == 303
    edited = stored_post(ctx, original.slug)
    assert edited.title == "改过的标题" and edited.published_at == original.published_at
    assert edited.updated_at == clock.now() and edited.body == original.body
    assert not edited.summary_given
    assert "改过的标题" in site_entries(signed_in)


def test_an_invalid_edit_changes_nothing(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    original = factory.post()
    before = factory.snapshot()
    changes = {"title": "", "published_at": "", "content": "新的正文"}
    answer = post(signed_in, f"/admin/posts/{original.id}", **form(**changes))
    assert answer.status_code == 422
    page = page_of(answer)
    assert field_error(page, "title") == "不能为空"
    assert "必填" in field_error(page, "published_at")
    assert typed_value(page, "content") == "新的正文"
    assert factory.snapshot() == before


def test_preview_is_the_public_page(signed_in, factory: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    before = factory.snapshot()
    when = (clock.now() - timedelta(hours=1)).astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M")
    fields = form(slug="yu-suan-biao", published_at=when)
    previews = [
        page_of(post(signed_in, "/admin/posts/preview", **fields, preview_page=str(n)))
        for n in (1, 2)
    ]
    assert factory.snapshot() == before  # a preview writes nothing
    assert "预览" in previews[0] and "尚未保存" in previews[0]
    created_id(post(signed_in, "/admin/posts", **fields))
    for number, preview in enumerate(previews, 1):
        query = "" if number == 1 else f"?page={number}"
        public = page_of(signed_in.get(f"/posts/yu-suan-biao{query}"))
        assert preview.split("</header>", 1)[1] == public.split("</header>", 1)[1]
        assert "共2页" in preview


def test_an_invalid_preview_is_the_editor_with_its_messages(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    answer = post(signed_in, "/admin/posts/preview", **form(title=""))
    assert answer.status_code == 422
    assert field_error(page_of(answer), "title") == "不能为空"
    for post_id in ("٣", "9" * 30, "x"):
        answer = post(signed_in, "/admin/posts/preview", **form(), post_id=post_id)
        assert answer.status_code == 404


def test_the_editor_shows_the_related_list_with_scores(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    old, _ = factory.two_fund_posts()
    factory.post("jijin", title="债券基金的利率风险", tags=["定投", "ETF"])
    assert "还没有相关内容" in page_of(signed_in.get(f"/admin/posts/{old.id}"))
    refresh.refresh(ctx, None)
    editor = page_of(signed_in.get(f"/admin/posts/{old.id}"))
    table = editor.split('id="related"')[1].split("</table>")[0]
    assert "债券基金" in table
    assert re.search(r"<td>0\.\d{3}</td>|<td>1\.000</td>", table)


def test_delete_asks_then_removes_the_post(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    doomed = factory.post(title="要删除的文章")
    confirm = signed_in.get(f"/admin/posts/{doomed.id}/delete")
    assert confirm.status_code == 200 and "确认删除" in page_of(confirm)
    assert "要删除的文章" in site_entries(signed_in)  # asking deletes nothing
    answer = post(signed_in, f"/admin/posts/{doomed.id}/delete")
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/posts"
    assert "已删除《要删除的文章》" in page_of(signed_in.get("/admin/posts"))
    assert "要删除的文章" not in site_entries(signed_in)
    with ctx.db.read() as session:
        assert post_repo.get_post(session, doomed.id) is None
    assert post(signed_in, f"/admin/posts/{doomed.id}/delete").status_code == 404


@pytest.mark.parametrize("post_id", ["0", "٣", "１", "9" * 30, "-1", "1.0", "x"])
def test_hostile_ids_are_404(signed_in, factory: Factory, post_id: str) -> None:  # type: ignore[no-untyped-def]
    factory.post()
    before = factory.snapshot()
    for method, path in (
        ("get", f"/admin/posts/{post_id}"),
        ("post", f"/admin/posts/{post_id}"),
        ("get", f"/admin/posts/{post_id}/delete"),
        ("post", f"/admin/posts/{post_id}/delete"),
    ):
        answer = signed_in.get(path) if method == "get" else post(signed_in, path, **FORM)
        assert answer.status_code == 404, (method, path)
    assert factory.snapshot() == before


def test_the_new_post_form_offers_the_categories(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    factory.category("jijin")
    page = page_of(signed_in.get("/admin/posts/new"))
    options = re.findall(r'<option value="([^"]*)"', page.split('name="category"')[1])
    assert options[:2] == ["jijin", "licai-fangfa"]  # by position, then slug
    assert 'type="datetime-local"' in page and 'formaction="/admin/posts/preview"' in page


HOSTILE = ["\x00", "\ufffe", "9" * 40, "١٢", "-1", " ", "x" * 10_000, "<b>&", "\u202e", "🙂" * 60]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_form_values_answer_a_page(signed_in, factory: Factory, value: str) -> None:  # type: ignore[no-untyped-def]
    """Every field of the editor, given each value, in a create, an edit and a preview: a
    saved post, a preview, or the editor with a message; never a 5xx."""
    existing = factory.post(slug="yi-you")
    for name in FORM:
        fields = form(**{name: value})
        for path in ("/admin/posts", f"/admin/posts/{existing.id}", "/admin/posts/preview"):
            answer = post(signed_in, path, **fields)
            assert answer.status_code in (200, 303, 422), (name, path, answer.status_code)
            if answer.status_code == 422:
                assert "admin-field-error" in page_of(answer) or "admin-message" in page_of(answer)
        extras = {"post_id": value, "preview_page": value}
        answer = post(signed_in, "/admin/posts/preview", **form(), **extras)
        assert answer.status_code in (200, 404), (value, answer.status_code)


@pytest.mark.parametrize(
    "segment", ["%00", "%FF%FE", "9" * 40, "%D9%A1", "-1", "0", "a" * 8192, "new%00"]
)
def test_hostile_path_segments_are_4xx(signed_in, factory: Factory, segment: str) -> None:  # type: ignore[no-untyped-def]
    factory.post()
    for path in (f"/admin/posts/{segment}", f"/admin/posts/{segment}/delete"):
        assert 400 <= signed_in.get(path).status_code < 500, path
        assert 400 <= post(signed_in, path, **FORM).status_code < 500, path


def test_a_save_from_an_older_page_changes_nothing_and_keeps_the_typing(  # type: ignore[no-untyped-def]
    signed_in, factory: Factory, ctx, clock
) -> None:
    """Two tabs: B saves a new title; A, opened before, adds a tag. A's save would write
    the old title back: it is refused (409) with A's values; a second save overwrites."""
    original = factory.post(tags=["储蓄"])
    page_a = page_of(signed_in.get(f"/admin/posts/{original.id}"))
    version_a = re.search(r'name="version" value="([^"]+)"', page_a)
    assert version_a
    fields = {name: typed_value(page_a, name) for name in FORM}
    fields |= {"category": "licai-fangfa", "format": "markdown", "status": "published"}
    clock.advance(minutes=1)
    tab_b = {**fields, "title": "另一个标签页改的标题"}
    assert post(signed_in, f"/admin/posts/{original.id}", **tab_b).status_code == 303
    before = factory.snapshot()
    tab_a = {**fields, "tags": "储蓄，预算", "version": version_a.group(1)}
    answer = post(signed_in, f"/admin/posts/{original.id}", **tab_a)
    assert answer.status_code == 409
    page = page_of(answer)
    assert "打开编辑页之后被修改过" in page
    assert typed_value(page, "tags") == "储蓄，预算"
    assert typed_value(page, "title") == original.title  # what A typed, kept
    assert factory.snapshot() == before
    current = re.search(r'name="version" value="([^"]+)"', page)
    assert current and current.group(1) != version_a.group(1)
    again = post(signed_in, f"/admin/posts/{original.id}", **{**tab_a, "version": current.group(1)})
    assert again.status_code == 303
    assert [tag.name for tag in stored_post(ctx, original.slug).tags] == ["储蓄", "预算"]
