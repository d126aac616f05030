"""Signing in to /admin: redirects, the session cookie, CSRF, the lockout, expiry, caching."""

from __future__ import annotations

import pytest

from feedsvc import create_app
from feedsvc.config import load_settings
from feedsvc.services import users as user_service
from tests.admin.conftest import PASSWORD, admin_overrides, csrf_of, sign_in

pytestmark = pytest.mark.usefixtures("backend")


def session_cookie(client):  # type: ignore[no-untyped-def]
    return client.get_cookie("feedsvc_admin", path="/admin")


def test_signed_out_is_sent_to_login(client) -> None:  # type: ignore[no-untyped-def]
    answer = client.get("/admin")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/login?next=/admin"
    deeper = client.get("/admin/?x=1")
    assert deeper.headers["Location"] == "/admin/login?next=/admin/%3Fx%3D1"


def test_login_page_is_chinese_and_has_a_token(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/admin/login")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "登录管理后台" in text and "用户名" in text and "密码" in text
    assert 'name="csrf_token"' in text


def test_wrong_password(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    answer = sign_in(client, admin_user, "不对的密码不对的密码")
    assert answer.status_code == 200
    assert "用户名或密码错误" in answer.get_data(as_text=True)
    assert client.get("/admin").status_code == 302


def test_unknown_user(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    answer = sign_in(client, "无此人", PASSWORD)
    assert answer.status_code == 200
    assert "用户名或密码错误" in answer.get_data(as_text=True)


def test_right_password_goes_to_next(client, ctx, admin_user, clock) -> None:  # type: ignore[no-untyped-def]
    answer = sign_in(client, admin_user, query="?next=/admin/%3Fview%3D1")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/?view=1"
    dashboard = client.get("/admin")
    assert dashboard.status_code == 200
    assert admin_user in dashboard.get_data(as_text=True)
    assert user_service.list_users(ctx)[0].last_login_at == clock.now()


def test_next_in_the_form_is_followed(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    token = csrf_of(client)
    answer = client.post(
        "/admin/login",
        data={"name": admin_user, "password": PASSWORD, "csrf_token": token, "next": "/admin/"},
    )
    assert answer.headers["Location"] == "/admin/"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/admin",
        "//evil.example",
        "//evil.example/admin",
        "/\\evil.example",
        "/admin/../evil",
        "/posts/x",
        "/admin\t/x",
        "javascript:alert(1)",
    ],
)
def test_foreign_next_is_ignored(client, admin_user, target: str) -> None:  # type: ignore[no-untyped-def]
    token = csrf_of(client)
    answer = client.post(
        "/admin/login",
        query_string={"next": target},
        data={"name": admin_user, "password": PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin"


def test_cookie_flags(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    answer = sign_in(client, admin_user)
    cookie = next(
        value
        for value in answer.headers.getlist("Set-Cookie")
        if value.startswith("feedsvc_admin=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # http base_url
    assert "Expires=" in cookie


def test_cookie_is_secure_with_https(db_url, clock) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(
        admin_overrides(db_url, base_url="https://feeds.example.test"), environ={}
    )
    app = create_app(settings=settings, clock=clock)
    try:
        context = app.extensions["feedsvc"]
        user_service.create_user(context, "管理员", PASSWORD)
        client = app.test_client()
        answer = sign_in(client, "管理员", base_url="https://localhost")
        assert answer.status_code == 302
        cookie = next(
            value
            for value in answer.headers.getlist("Set-Cookie")
            if value.startswith("feedsvc_admin=")
        )
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        app.extensions["feedsvc"].db.dispose()


def test_logout_clears(signed_in) -> None:  # type: ignore[no-untyped-def]
    page = signed_in.get("/admin").get_data(as_text=True)
    assert "退出登录" in page
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    answer = signed_in.post("/admin/logout", data={"csrf_token": token})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/login"
    assert signed_in.get("/admin").status_code == 302


def test_login_without_csrf_is_refused(client, ctx, admin_user) -> None:  # type: ignore[no-untyped-def]
    csrf_of(client)  # a session exists, but the form does not carry its token
    for data in (
        {"name": admin_user, "password": PASSWORD},
        {"name": admin_user, "password": PASSWORD, "csrf_token": "forged"},
        {"name": admin_user, "password": PASSWORD, "csrf_token": "令牌"},
    ):
        answer = client.post("/admin/login", data=data)
        assert answer.status_code == 400
        assert "CSRF" in answer.get_data(as_text=True)
        assert answer.headers["Cache-Control"] == "no-store"
    assert client.get("/admin").status_code == 302
    assert user_service.list_users(ctx)[0].last_login_at is None
    # A fresh client, with no session at all, is refused the same way.
    fresh = client.application.test_client()
    assert (
        fresh.post("/admin/login", data={"name": admin_user, "password": PASSWORD}).status_code
        == 400
    )


def test_logout_without_csrf_is_refused(signed_in) -> None:  # type: ignore[no-untyped-def]
    answer = signed_in.post("/admin/logout")
    assert answer.status_code == 400
    assert signed_in.get("/admin").status_code == 200  # still signed in


def test_lockout_after_five_failures(client, ctx, admin_user, clock, app) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        assert sign_in(client, admin_user, "不对的密码不对的密码").status_code == 200
    locked = sign_in(client, admin_user)  # the right password, the 6th attempt
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.get_data(as_text=True)
    assert "15 分钟" in locked.get_data(as_text=True)
    assert client.get("/admin").status_code == 302

    # Another address, and another account from this address, are not locked.
    other = app.test_client()
    answer = sign_in(other, admin_user, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert answer.status_code == 302
    user_service.create_user(ctx, "另一位编辑", PASSWORD)
    assert sign_in(app.test_client(), "另一位编辑").status_code == 302

    # The lock ends 15 minutes after the last failure.
    clock.advance(minutes=14)
    assert sign_in(client, admin_user).status_code == 429
    clock.advance(minutes=1, seconds=1)
    assert sign_in(client, admin_user).status_code == 302


def test_failures_spread_out_do_not_lock(client, admin_user, clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        sign_in(client, admin_user, "不对的密码不对的密码")
        clock.advance(minutes=4)
    assert sign_in(client, admin_user).status_code == 302


def test_session_expires(signed_in, clock) -> None:  # type: ignore[no-untyped-def]
    clock.advance(hours=11, minutes=59)
    assert signed_in.get("/admin").status_code == 200
    clock.advance(minutes=2)
    answer = signed_in.get("/admin")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/login?next=/admin"


def test_password_change_and_removal_end_sessions(signed_in, ctx, admin_user) -> None:  # type: ignore[no-untyped-def]
    user_service.set_password(ctx, admin_user, "换了新密码换了新密码")
    assert signed_in.get("/admin").status_code == 302
    assert sign_in(signed_in, admin_user, "换了新密码换了新密码").status_code == 302
    user_service.remove_user(ctx, admin_user)
    assert signed_in.get("/admin").status_code == 302


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/login", "/admin/nothing-here"])
def test_no_store_everywhere(client, signed_in, path: str) -> None:  # type: ignore[no-untyped-def]
    for who in (client.application.test_client(), signed_in):
        answer = who.get(path)
        assert answer.headers["Cache-Control"] == "no-store", (path, answer.status_code)
        assert "Cookie" in answer.headers.get("Vary", "")


def test_signed_in_login_page_goes_on(signed_in) -> None:  # type: ignore[no-untyped-def]
    answer = signed_in.get("/admin/login?next=/admin/")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/"


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("a\x00b", PASSWORD),
        ("编辑小王", "abc\x00defghijk"),
        ("名" * 10_000, PASSWORD),
        ("编辑小王", "密" * 10_000),
        ("", ""),
    ],
)
def test_hostile_form_input(client, admin_user, name: str, password: str) -> None:  # type: ignore[no-untyped-def]
    token = csrf_of(client)
    answer = client.post(
        "/admin/login", data={"name": name, "password": password, "csrf_token": token}
    )
    assert answer.status_code in (200, 400)
    assert "用户名或密码错误" in answer.get_data(as_text=True)
    assert client.get("/admin").status_code == 302


def test_non_utf8_form_body(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    token = csrf_of(client)
    body = b"name=%FF%FE&password=\xff\xfe\xfd&csrf_token=" + token.encode()
    answer = client.post(
        "/admin/login", data=body, content_type="application/x-www-form-urlencoded"
    )
    # Werkzeug drops a form it cannot decode, token and all: refused as a form without one.
    assert answer.status_code == 400
    assert "CSRF" in answer.get_data(as_text=True)
    assert client.get("/admin").status_code == 302


def test_no_secret_key_refuses_everyone(db_url, clock) -> None:  # type: ignore[no-untyped-def]
    for key in ("", "too-short"):
        settings = load_settings(admin_overrides(db_url, secret_key=key), environ={})
        app = create_app(settings=settings, clock=clock)
        try:
            context = app.extensions["feedsvc"]
            if not user_service.list_users(context):
                user_service.create_user(context, "管理员", PASSWORD)
            client = app.test_client()
            page = client.get("/admin/login")
            assert page.status_code == 200
            assert "site.secret_key" in page.get_data(as_text=True)
            assert 'name="password"' not in page.get_data(as_text=True)
            answer = client.post("/admin/login", data={"name": "管理员", "password": PASSWORD})
            assert answer.status_code == 403
            assert "site.secret_key" in answer.get_data(as_text=True)
            assert client.get("/admin").status_code == 302
        finally:
            app.extensions["feedsvc"].db.dispose()


def test_behind_a_local_front_the_forwarded_address_counts(app, admin_user) -> None:  # type: ignore[no-untyped-def]
    def attempt(forwarded: str, password: str = "不对的密码不对的密码"):  # type: ignore[no-untyped-def]
        return sign_in(
            app.test_client(),
            admin_user,
            password,
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
            headers={"X-Forwarded-For": forwarded},
        )

    for _ in range(5):
        attempt("203.0.113.9")
    assert attempt("203.0.113.9", PASSWORD).status_code == 429
    assert attempt("198.51.100.1, 203.0.113.9", PASSWORD).status_code == 429  # last hop counts
    assert attempt("203.0.113.10", PASSWORD).status_code == 302
