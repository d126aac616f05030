"""Signed in, the new admin pages meet hostile path segments and form values with a 4xx or a
page, never a 5xx (tests/test_fuzz_routes.py fuzzes them signed out, where each is a 302)."""

from __future__ import annotations

import pytest

from tests.admin.conftest import form_token
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

SEGMENTS = ["%00", "%FF%FE", "9" * 40, "%D9%A1", "-1", "0", "a" * 8192, "%E4%BF%9D%E9%99%A9"]
VALUES = ["\x00", "\ufffe", "9" * 40, "١٢", "-1", " ", "x" * 10_000, "<b>&"]


@pytest.mark.parametrize("segment", SEGMENTS)
def test_hostile_path_segments(signed_in, factory: Factory, segment: str) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    token = form_token(signed_in)
    for path in (
        f"/admin/categories/{segment}",
        f"/admin/tokens/{segment}/revoke",
        f"/admin/sources/{segment}",
        f"/admin/sources/{segment}/delete",
    ):
        assert signed_in.get(path).status_code < 500, path
    for path in (
        f"/admin/categories/{segment}",
        f"/admin/categories/{segment}/delete",
        f"/admin/categories/{segment}/move",
        f"/admin/tokens/{segment}/revoke",
        f"/admin/jobs/{segment}/run",
        f"/admin/sources/{segment}",
        f"/admin/sources/{segment}/enabled",
        f"/admin/sources/{segment}/refresh",
        f"/admin/sources/{segment}/delete",
    ):
        answer = signed_in.post(path, data={"csrf_token": token, "name": "名"})
        assert answer.status_code < 500, path


@pytest.mark.parametrize("value", VALUES)
def test_hostile_form_values(signed_in, factory: Factory, value: str) -> None:  # type: ignore[no-untyped-def]
    factory.category()
    factory.category("jijin")
    token = form_token(signed_in)
    fields = ("slug", "name", "description", "language", "feed_length", "position")
    for path in ("/admin/categories", "/admin/categories/jijin"):
        for name in fields:
            data = {"slug": "baoxian", "name": "保险", "feed_length": "20", "position": "0"}
            data |= {"language": "zh-CN", name: value, "csrf_token": token}
            answer = signed_in.post(path, data=data)
            assert answer.status_code in (303, 422), (path, name, answer.status_code)
    delete = signed_in.post(
        "/admin/categories/licai-fangfa/delete", data={"move_to": value, "csrf_token": token}
    )
    assert delete.status_code in (303, 409, 422)
    answer = signed_in.post("/admin/tokens", data={"name": value, "csrf_token": token})
    assert answer.status_code in (200, 422)


@pytest.mark.parametrize("value", VALUES)
def test_hostile_source_form_values(signed_in, factory: Factory, value: str) -> None:  # type: ignore[no-untyped-def]
    factory.category("jijin")
    token = form_token(signed_in)
    form = {"url": "https://partner.example.cn/feed", "category": "jijin", "mode": "related"}
    form |= {"interval_minutes": "30", "enabled": "on"}
    assert signed_in.post("/admin/sources", data={**form, "csrf_token": token}).status_code == 303
    for path, fields in (
        ("/admin/sources", ("url", "category", "mode", "interval_minutes", "enabled")),
        ("/admin/sources/1", ("category", "mode", "interval_minutes", "enabled")),
    ):
        for name in fields:
            data = {**form, "url": "https://other.example.cn/feed", name: value}
            answer = signed_in.post(path, data={**data, "csrf_token": token})
            assert answer.status_code in (303, 422), (path, name, answer.status_code)
    answer = signed_in.post(
        "/admin/sources/1/enabled", data={"enabled": value, "csrf_token": token}
    )
    assert answer.status_code == 422
