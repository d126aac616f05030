"""A form refused for its CSRF token (the session ended while it was written, or the page is
older than the session) comes back with every typed value and 重新提交; nothing is written.
Only for this site's own pages: another site's POST gets the bare 400, the login form never
echoes its password."""

from __future__ import annotations

import html
import re

import pytest

from tests.admin.conftest import PASSWORD, form_token, sign_in
from tests.admin.test_posts_page import FORM, page_of
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

SAME_SITE = {"Origin": "http://localhost"}


def kept(page: str) -> dict[str, str]:
    return {
        name: html.unescape(value)
        for name, value in re.findall(
            r'<textarea id="kept-\d+" name="([^"]+)"[^>]*>\n?([^<]*)</textarea>', page
        )
    }


def test_a_post_written_while_the_session_ended_comes_back(  # type: ignore[no-untyped-def]
    signed_in, factory: Factory, admin_user: str
) -> None:
    factory.category()
    stale = form_token(signed_in)
    signed_in.post("/admin/logout", data={"csrf_token": stale})
    before = factory.snapshot()
    answer = signed_in.post("/admin/posts", data={**FORM, "csrf_token": stale}, headers=SAME_SITE)
    assert answer.status_code == 400
    page = page_of(answer)
    assert "没有保存" in page and "重新提交" in page
    assert kept(page) == FORM
    assert 'action="/admin/posts"' in page and stale not in page
    assert answer.headers["Cache-Control"] == "no-store"
    assert factory.snapshot() == before
    # Signed in again (another tab), 重新提交 takes the new session's token and saves.
    assert sign_in(signed_in, admin_user).status_code == 302
    fresh = signed_in.get("/admin/csrf-token")
    assert fresh.status_code == 200 and fresh.headers["Cache-Control"] == "no-store"
    token = fresh.get_json()["csrf_token"]
    assert token == form_token(signed_in)
    again = signed_in.post("/admin/posts", data={**kept(page), "csrf_token": token})
    assert again.status_code == 303


def test_a_page_older_than_the_session_keeps_its_values_too(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    original = factory.post()
    answer = signed_in.post(
        f"/admin/posts/{original.id}",
        data={**FORM, "title": "新标题", "csrf_token": "from-an-old-session"},
        headers={"Referer": f"http://localhost/admin/posts/{original.id}"},
    )
    assert answer.status_code == 400
    assert kept(page_of(answer))["title"] == "新标题"


@pytest.mark.parametrize(
    "headers", [{}, {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}]
)
def test_another_sites_post_gets_the_bare_400(client, factory: Factory, headers) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    answer = client.post("/admin/posts", data={**FORM, "csrf_token": "x"}, headers=headers)
    assert answer.status_code == 400
    page = page_of(answer)
    assert "重新提交" not in page and FORM["content"][:10] not in page


def test_the_login_form_never_comes_back_with_its_password(client, admin_user: str) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(
        "/admin/login",
        data={"name": admin_user, "password": PASSWORD, "csrf_token": "stale"},
        headers=SAME_SITE,
    )
    assert answer.status_code == 400
    assert PASSWORD not in page_of(answer) and "重新提交" not in page_of(answer)


def test_the_token_endpoint_needs_a_session(client) -> None:  # type: ignore[no-untyped-def]
    answer = client.get("/admin/csrf-token")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login?next=/admin/csrf-token")


def test_control_characters_in_kept_values_are_dropped(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    data = {**FORM, "title": "标\x00题", "csrf_token": "x", "\x00": "y"}
    answer = signed_in.post("/admin/posts", data=data, headers=SAME_SITE)
    assert answer.status_code == 400
    assert kept(page_of(answer))["title"] == "标题"
