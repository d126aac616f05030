"""Error pages under /admin: in Chinese, in the admin's layout, with a way back to /admin;
the public site's and the API's errors as they were (feedsvc/web/errors.py,
feedsvc/web/admin/error_messages.py)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from feedsvc.web.admin.error_messages import in_chinese
from tests.admin.conftest import form_token


def _message(answer: Any) -> str:
    found = re.search(r"<h1>.*?</h1>\s*<p>(.*?)</p>", answer.get_data(as_text=True), re.S)
    assert found, answer.get_data(as_text=True)
    return html.unescape(found.group(1))


def _admin_error(answer: Any, status: int) -> str:
    """The page's message, after what every admin error page has."""
    page = answer.get_data(as_text=True)
    assert answer.status_code == status
    assert answer.content_type == "text/html; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-store"
    assert '<a href="/admin">回到管理后台</a>' in page
    assert '<html lang="zh-CN">' in page
    assert "requested URL" not in page and "The " not in _message(answer)
    return _message(answer)


@pytest.mark.parametrize("path", ["/admin/nope", "/admin/posts/7/nope"])
def test_not_found(signed_in: Any, path: str) -> None:
    assert _admin_error(signed_in.get(path), 404) == "没有这个页面。"


def test_not_found_signed_out(client: Any) -> None:
    answer = client.get("/admin/nope")
    assert _admin_error(answer, 404) == "没有这个页面。"
    assert "退出登录" not in answer.get_data(as_text=True)


def test_signed_in_page_keeps_the_admin_header(signed_in: Any) -> None:
    page = signed_in.get("/admin/posts/999").get_data(as_text=True)
    assert "退出登录" in page and 'name="csrf_token" value="' in page


def test_method_not_allowed(signed_in: Any) -> None:
    answer = signed_in.delete("/admin/login")
    assert _admin_error(answer, 405) == "这个地址不接受这种请求方法。"
    assert set(answer.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_too_large(signed_in: Any) -> None:
    token = form_token(signed_in)
    answer = signed_in.post(
        "/admin/posts", data={"csrf_token": token, "title": "长文", "content": "长" * 600_000}
    )
    assert _admin_error(answer, 413) == (
        "请求过大：超过了 http.max_request_bytes 的限制（1048576 字节）。"
        "文章正文太长时请分成几篇或调高这个设置。"
    )


def test_nul_in_the_query(signed_in: Any) -> None:
    assert _admin_error(signed_in.get("/admin/posts?q=%00"), 400) == "请求中不能包含 NUL 字符。"


def test_unknown_job(signed_in: Any) -> None:
    answer = signed_in.post("/admin/jobs/nope/run", data={"csrf_token": form_token(signed_in)})
    assert _admin_error(answer, 404) == (
        "没有名为 'nope' 的后台任务；现有的任务："
        "related-rebuild、related-refresh、sources-poll、websub。"
    )


def test_the_admin_views_own_messages_are_kept(signed_in: Any) -> None:
    assert _admin_error(signed_in.get("/admin/posts/999"), 404) == "没有编号为 999 的文章"


def test_public_not_found_is_unchanged(client: Any) -> None:
    answer = client.get("/nope")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 404
    assert _message(answer) == (
        "The requested URL was not found on the server. If you entered the URL manually "
        "please check your spelling and try again."
    )
    assert "回到首页" in page and "回到管理后台" not in page
    assert answer.headers.get("Cache-Control") != "no-store"


def test_api_errors_stay_english_json(client: Any) -> None:
    answer = client.get("/api/v1/nope")
    assert answer.status_code == 404
    assert answer.json["error"]["code"] == "not_found"
    assert answer.json["error"]["message"].startswith("The requested URL was not found")


@pytest.mark.parametrize(
    ("status", "message", "shown"),
    [
        (503, "the database is busy; try again", "数据库正忙，请稍后再试。"),
        (500, "internal error; it has been logged", "服务器内部出错，已记入日志。"),
        (404, "there is nothing at this id: ids are whole numbers from 1 to 9", None),
        (400, "an English message nobody listed", "an English message nobody listed"),
        (404, "没有分类 'x'", "没有分类 'x'"),
    ],
)
def test_in_chinese(status: int, message: str, shown: str | None) -> None:
    said = in_chinese(status, message, max_request_bytes=1024)
    assert said == (shown or "没有这个编号：编号是 1 到 9 之间的整数。")
