"""The admin's fixtures: a site with a secret key, cheap password hashes, signed-in clients."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from argon2 import PasswordHasher

from feedsvc.config import load_settings
from feedsvc.services import users as user_service
from tests.conftest import overrides_for

SECRET = "k" * 20 + "tests-only-secret-key-0123456789"
PASSWORD = "正确的密码-correct-horse"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Argon2id still, at test cost: 64 MiB and 3 passes per hash would add seconds.
    monkeypatch.setattr(
        user_service, "hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    user_service._dummy_hash.cache_clear()


def admin_overrides(db_url: str, **site: Any) -> dict[str, Any]:
    overrides = overrides_for(db_url)
    overrides["site"].update({"secret_key": SECRET, **site})
    return overrides


@pytest.fixture
def settings(db_url: str):  # type: ignore[no-untyped-def]
    return load_settings(admin_overrides(db_url), environ={})


@pytest.fixture
def admin_user(ctx) -> str:  # type: ignore[no-untyped-def]
    user_service.create_user(ctx, "编辑小王", PASSWORD)
    return "编辑小王"


def csrf_of(client, base_url: str = "http://localhost") -> str:  # type: ignore[no-untyped-def]
    """The CSRF token of the client's session, read from the login page's form."""
    page = client.get("/admin/login", base_url=base_url).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def form_token(client) -> str:  # type: ignore[no-untyped-def]
    """The CSRF token of the client's session, signed in or not (signed in, the login page
    redirects: the dashboard's sign-out form carries it)."""
    answer = client.get("/admin/login")
    if answer.status_code == 302:
        answer = client.get("/admin")
    found = re.search(r'name="csrf_token" value="([^"]+)"', answer.get_data(as_text=True))
    assert found
    return found.group(1)


def sign_in(client, name: str, password: str = PASSWORD, **extra: Any):  # type: ignore[no-untyped-def]
    token = csrf_of(client, extra.get("base_url", "http://localhost"))
    return client.post(
        "/admin/login" + extra.pop("query", ""),
        data={"name": name, "password": password, "csrf_token": token},
        **extra,
    )


@pytest.fixture
def signed_in(client, admin_user: str):  # type: ignore[no-untyped-def]
    answer = sign_in(client, admin_user)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def post(client, path: str, **data: Any):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": form_token(client), **data})


def field_error(page: str, name: str) -> str:
    found = re.search(rf'id="error-{name}">([^<]*)<', page)
    assert found, f"no message next to {name}"
    return html.unescape(found.group(1))


def typed_value(page: str, name: str) -> str:
    """The value a field shows: an input's, a textarea's text, a select's chosen option."""
    found = re.search(rf'id="field-{name}" name="{name}" value="([^"]*)"', page)
    if found is None:
        # A textarea's first line break is the template's (HTML drops it when parsing).
        found = re.search(rf'id="field-{name}" name="{name}"[^>]*>\n?([^<]*)</textarea>', page)
    if found is None:
        select = re.search(rf'id="field-{name}" name="{name}".*?</select>', page, re.S)
        assert select, name
        found = re.search(r'<option value="([^"]*)" selected>', select.group(0))
    assert found, name
    return html.unescape(found.group(1))
