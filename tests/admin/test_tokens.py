"""/admin/tokens: list, create (the token shown once), revoke (asked first; then a 401)."""

from __future__ import annotations

import re

import pytest

from feedsvc.services import tokens as token_service
from tests.admin.conftest import form_token
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")


def new_token(page: str) -> str:
    found = re.search(r'id="new-token" type="text" readonly value="([^"]+)"', page)
    assert found, page
    return found.group(1)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/tokens"),
        ("post", "/admin/tokens"),
        ("get", "/admin/tokens/1/revoke"),
        ("post", "/admin/tokens/1/revoke"),
    ],
)
def test_signed_out_goes_to_login(client, factory: Factory, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    factory.token("发布脚本")
    before = factory.counts()
    data = {"csrf_token": form_token(client), "name": "别人的令牌"}
    answer = client.get(path) if method == "get" else client.post(path, data=data)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login?next=/admin/tokens")
    assert factory.counts() == before
    assert all(row.revoked_at is None for row in token_service.list_tokens(factory.ctx))


def test_a_post_without_csrf_is_400_and_changes_nothing(signed_in, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    token = factory.token("发布脚本")
    before = factory.counts()
    assert signed_in.post("/admin/tokens", data={"name": "新令牌"}).status_code == 400
    assert signed_in.post("/admin/tokens/1/revoke").status_code == 400
    assert factory.counts() == before
    headers = {"Authorization": f"Bearer {token}"}
    assert signed_in.post("/api/v1/categories", json={}, headers=headers).status_code == 422


def test_create_shows_the_token_once_and_it_works(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    answer = signed_in.post(
        "/admin/tokens", data={"name": "博客发布脚本", "csrf_token": form_token(signed_in)}
    )
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    page = answer.get_data(as_text=True)
    token = new_token(page)
    assert token.startswith("fsv_")
    assert "只显示这一次" in page

    listing = signed_in.get("/admin/tokens").get_data(as_text=True)
    assert "博客发布脚本" in listing and "从未使用" in listing and "有效" in listing
    assert token not in listing
    assert token not in signed_in.get("/admin").get_data(as_text=True)

    headers = {"Authorization": f"Bearer {token}"}
    body = {"slug": "baoxian", "name": "保险"}
    assert signed_in.post("/api/v1/categories", json=body, headers=headers).status_code == 201
    listing = signed_in.get("/admin/tokens").get_data(as_text=True)
    assert "从未使用" not in listing  # last used: now, in Beijing time


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "1 到 100"), ("   ", "1 到 100"), ("令" * 101, "1 到 100"), ("a\x00b", "控制字符")],
)
def test_invalid_name_is_422_and_creates_nothing(
    signed_in, factory: Factory, name, message
) -> None:  # type: ignore[no-untyped-def]
    before = factory.counts()
    answer = signed_in.post(
        "/admin/tokens", data={"name": name, "csrf_token": form_token(signed_in)}
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert message in re.search(r'id="error-name">([^<]*)<', page).group(1)  # type: ignore[union-attr]
    assert f'name="name" value="{name.replace(chr(0), "")}"' in page
    assert factory.counts() == before


def test_revoke_asks_first_then_the_api_says_401(signed_in, factory: Factory, ctx) -> None:  # type: ignore[no-untyped-def]
    token = factory.token("旧脚本")
    kept = factory.token("旧脚本")  # a namesake: revoked by id, it stays valid
    row = token_service.list_tokens(ctx)[0]
    confirm = signed_in.get(f"/admin/tokens/{row.id}/revoke")
    assert confirm.status_code == 200
    assert "确认吊销" in confirm.get_data(as_text=True)
    assert all(r.revoked_at is None for r in token_service.list_tokens(ctx))

    answer = signed_in.post(
        f"/admin/tokens/{row.id}/revoke", data={"csrf_token": form_token(signed_in)}
    )
    assert answer.status_code == 303
    listing = signed_in.get("/admin/tokens").get_data(as_text=True)
    assert "已吊销令牌“旧脚本”" in listing
    assert "已吊销（" in listing
    body = {"slug": "baoxian", "name": "保险"}
    revoked = {"Authorization": f"Bearer {token}"}
    assert signed_in.post("/api/v1/categories", json=body, headers=revoked).status_code == 401
    live = {"Authorization": f"Bearer {kept}"}
    assert signed_in.post("/api/v1/categories", json=body, headers=live).status_code == 201


def test_unknown_token_is_404(signed_in) -> None:  # type: ignore[no-untyped-def]
    assert signed_in.get("/admin/tokens/99/revoke").status_code == 404
    assert signed_in.get("/admin/tokens/١/revoke").status_code == 404
    data = {"csrf_token": form_token(signed_in)}
    assert signed_in.post("/admin/tokens/99999999999/revoke", data=data).status_code == 404
