"""/admin/categories: list with feed URLs, create, edit, delete; the same rows and feeds as
the API's; invalid forms shown again (422) with Chinese messages and the typed values."""

from __future__ import annotations

from typing import Any

import pytest

from feedsvc.repo import categories as category_repo
from tests.admin.conftest import field_error, post, typed_value
from tests.conftest import BASE_URL
from tests.factories import Factory
from tests.feedcheck import parse

pytestmark = pytest.mark.usefixtures("backend")

FORM = {
    "slug": "baoxian",
    "name": "保险",
    "description": "保障先于收益。",
    "language": "zh-CN",
    "feed_length": "15",
    "position": "3",
}


def stored(ctx) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        return {
            c.slug: {
                "name": c.name,
                "description": c.description,
                "language": c.language,
                "feed_length": c.feed_length,
                "position": c.position,
            }
            for c in category_repo.list_categories(session)
        }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/categories"),
        ("post", "/admin/categories"),
        ("get", "/admin/categories/licai-fangfa"),
        ("post", "/admin/categories/licai-fangfa"),
        ("post", "/admin/categories/licai-fangfa/delete"),
        ("post", "/admin/categories/licai-fangfa/move"),
    ],
)
def test_signed_out_goes_to_login(client, factory: Factory, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    before = factory.snapshot()
    answer = client.get(path) if method == "get" else post(client, path, **FORM, move_to="")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login?next=/admin/categories")
    assert factory.snapshot() == before


@pytest.mark.parametrize(
    "path",
    [
        "/admin/categories",
        "/admin/categories/licai-fangfa",
        "/admin/categories/licai-fangfa/delete",
    ],
)
def test_a_post_without_csrf_is_400_and_changes_nothing(signed_in, factory, ctx, path) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    before, rows = factory.snapshot(), stored(ctx)
    answer = signed_in.post(path, data=FORM)
    assert answer.status_code == 400
    assert factory.snapshot() == before and stored(ctx) == rows


def test_list_shows_feed_urls_in_position_order(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    factory.category("jijin", position=2)
    factory.category("licai-fangfa", position=1)
    answer = signed_in.get("/admin/categories")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    page = answer.get_data(as_text=True)
    assert page.index("category-licai-fangfa") < page.index("category-jijin")
    for fmt in ("rss", "atom", "json"):
        assert f'readonly value="{BASE_URL}/feeds/jijin.{fmt}"' in page
    assert "feedsvc category sync --overwrite" in page
    assert 'href="/admin/categories"' in page and 'href="/admin/tokens"' in page


def test_created_here_is_what_the_api_creates(signed_in, ctx, auth) -> None:  # type: ignore[no-untyped-def]
    answer = post(signed_in, "/admin/categories", **FORM)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/admin/categories"
    page = signed_in.get("/admin/categories").get_data(as_text=True)
    assert "已创建分类“保险”（baoxian）" in page

    body = {**FORM, "slug": "baoxian-api", "feed_length": 15, "position": 3}
    assert signed_in.post("/api/v1/categories", json=body, headers=auth).status_code == 201
    rows = stored(ctx)
    assert rows["baoxian"] == rows["baoxian-api"]
    admin = signed_in.get("/api/v1/categories/baoxian").json
    api = signed_in.get("/api/v1/categories/baoxian-api").json
    for key in ("name", "description", "language", "feed_length", "position"):
        assert admin[key] == api[key]

    mine, _ = parse(signed_in.get("/feeds/baoxian.rss").data)
    theirs, _ = parse(signed_in.get("/feeds/baoxian-api.rss").data)
    assert mine.feed.title == theirs.feed.title
    assert "保险" in mine.feed.title


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "不能为空"),
        ({"name": "   "}, "name", "不能为空"),
        ({"slug": "Not A Slug"}, "slug", "只能使用小写英文字母"),
        ({"slug": "licai-fangfa"}, "slug", "已被占用，请换一个"),
        ({"slug": "api"}, "slug", "保留字"),
        ({"feed_length": "0"}, "feed_length", "不能小于 1"),
        ({"feed_length": "99999"}, "feed_length", "不能大于 1000"),
        ({"feed_length": "١٢"}, "feed_length", "半角数字"),
        ({"position": ""}, "position", "半角数字"),
        ({"name": "保\x00险"}, "name", "控制字符"),
        ({"name": "保" * 10_000}, "name", "最多 200 个字符"),
        ({"language": "中文"}, "language", "格式不正确"),
    ],
)
def test_invalid_create_is_422_with_the_message_by_the_field(  # type: ignore[no-untyped-def]
    signed_in, factory, ctx, changes, field, message
) -> None:
    factory.category()
    before, rows = factory.snapshot(), stored(ctx)
    answer = post(signed_in, "/admin/categories", **{**FORM, **changes})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert message in field_error(page, field)
    typed = {**FORM, **changes}
    for name in ("slug", "name", "description", "feed_length"):
        assert typed_value(page, name) == typed[name].replace("\x00", "")
    assert factory.snapshot() == before and stored(ctx) == rows


def test_edit_changes_the_feed_as_the_api_would(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    factory.post(title="每月结余先存一半")
    page = signed_in.get("/admin/categories/licai-fangfa").get_data(as_text=True)
    assert typed_value(page, "name") == "理财方法"
    form = {**FORM, "name": "理财入门", "position": "7"}
    del form["slug"]
    answer = post(signed_in, "/admin/categories/licai-fangfa", **form)
    assert answer.status_code == 303
    assert stored(ctx)["licai-fangfa"] == {
        "name": "理财入门",
        "description": "保障先于收益。",
        "language": "zh-CN",
        "feed_length": 15,
        "position": 7,
    }
    parsed, _ = parse(signed_in.get("/feeds/licai-fangfa.rss").data)
    assert "理财入门" in parsed.feed.title
    assert parsed.entries[0].tags[0].term == "理财入门"


def test_invalid_edit_is_422_and_changes_nothing(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    before, rows = factory.snapshot(), stored(ctx)
    answer = post(
        signed_in,
        "/admin/categories/licai-fangfa",
        name="",
        description="新简介",
        language="zh-CN",
        feed_length="99999",
        position="1",
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "不能为空" in field_error(page, "name")
    assert "不能大于 1000" in field_error(page, "feed_length")
    assert typed_value(page, "description") == "新简介"
    assert typed_value(page, "feed_length") == "99999"
    assert factory.snapshot() == before and stored(ctx) == rows


def test_unknown_category_is_404(signed_in) -> None:  # type: ignore[no-untyped-def]
    assert signed_in.get("/admin/categories/nope").status_code == 404
    assert post(signed_in, "/admin/categories/nope/delete").status_code == 404


def test_delete_with_posts_and_no_move_to_is_refused(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    factory.post()
    factory.category("jijin")
    before = factory.snapshot()
    answer = post(signed_in, "/admin/categories/licai-fangfa/delete", move_to="")
    assert answer.status_code == 409
    page = answer.get_data(as_text=True)
    assert "请选择要把它们移到哪个分类" in field_error(page, "move_to")
    assert "分类没有删除" in page
    assert factory.snapshot() == before


def test_delete_moves_posts(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    post_row = factory.post(title="每月结余先存一半")
    factory.category("jijin")
    answer = post(signed_in, "/admin/categories/licai-fangfa/delete", move_to="jijin")
    assert answer.status_code == 303
    assert set(stored(ctx)) == {"jijin"}
    assert signed_in.get(f"/api/v1/posts/{post_row.id}").json["category"] == "jijin"
    assert signed_in.get("/feeds/licai-fangfa.rss").status_code == 404
    parsed, _ = parse(signed_in.get("/feeds/jijin.rss").data)
    assert [entry.title for entry in parsed.entries] == ["每月结余先存一半"]
    page = signed_in.get("/admin/categories").get_data(as_text=True)
    assert "1 篇文章已移到 jijin" in page


def test_delete_an_empty_category(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    factory.category("jijin")
    assert post(signed_in, "/admin/categories/jijin/delete").status_code == 303
    assert stored(ctx) == {}


def test_move_up_and_down_reorders_as_the_api_lists(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    for slug in ("gupiao", "jijin", "licai-fangfa"):  # all at position 0: listed by slug
        factory.category(slug)
    before = factory.snapshot()
    assert (
        signed_in.post("/admin/categories/jijin/move", data={"direction": "up"}).status_code == 400
    )
    assert factory.snapshot() == before

    answer = post(signed_in, "/admin/categories/licai-fangfa/move", direction="up")
    assert answer.status_code == 303
    listed = [c["slug"] for c in signed_in.get("/api/v1/categories").json["items"]]
    assert listed == ["gupiao", "licai-fangfa", "jijin"]
    page = signed_in.get("/admin/categories").get_data(as_text=True)
    assert "已上移“理财方法”" in page
    assert page.index("category-licai-fangfa") < page.index("category-jijin")

    post(signed_in, "/admin/categories/gupiao/move", direction="down")
    listed = [c["slug"] for c in signed_in.get("/api/v1/categories").json["items"]]
    assert listed == ["licai-fangfa", "gupiao", "jijin"]

    before = factory.snapshot()
    answer = post(signed_in, "/admin/categories/licai-fangfa/move", direction="up")
    assert answer.status_code == 303
    assert "已经在最前" in signed_in.get("/admin/categories").get_data(as_text=True)
    assert factory.snapshot() == before
    assert post(signed_in, "/admin/categories/nope/move", direction="up").status_code == 404
    for direction in ("sideways", "", "UP", "up\x00"):
        answer = post(signed_in, "/admin/categories/gupiao/move", direction=direction)
        assert answer.status_code == 400, direction
    assert post(signed_in, "/admin/categories/gupiao/move").status_code == 400  # none given
    assert factory.snapshot() == before
