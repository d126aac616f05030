"""Bearer tokens: every write and every read of a draft, for each kind of credential."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from feedsvc.models import ApiToken
from feedsvc.services import tokens as token_service
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

WRITES = [
    ("post", "/api/v1/posts", {"title": "标题", "category": "licai-fangfa", "content": "正文"}),
    ("patch", "/api/v1/posts/{post}", {"title": "新标题"}),
    ("delete", "/api/v1/posts/{post}", None),
    ("post", "/api/v1/categories", {"slug": "baoxian", "name": "保险"}),
    ("patch", "/api/v1/categories/licai-fangfa", {"name": "改名"}),
    ("delete", "/api/v1/categories/licai-fangfa", None),
    ("get", "/api/v1/posts/{draft}", None),
    ("get", "/api/v1/posts?status=draft", None),
]


@pytest.fixture
def tokens(factory: Factory, ctx):  # type: ignore[no-untyped-def]
    good = factory.token("editor")
    revoked = factory.token("old")
    token_service.revoke_token(ctx, "old")
    return {
        "none": None,
        "malformed": "Basic dXNlcjpwYXNz",
        "wrong": "Bearer fsv_this-is-not-a-real-token",
        "revoked": f"Bearer {revoked}",
        "good": f"Bearer {good}",
    }


@pytest.mark.parametrize("credential", ["none", "malformed", "wrong", "revoked", "good"])
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_auth_matrix(client, factory: Factory, tokens, credential, method, path, body) -> None:
    post = factory.post()
    draft = factory.post(status="draft")
    headers = {} if tokens[credential] is None else {"Authorization": tokens[credential]}
    before = factory.snapshot()
    url = path.format(post=post.id, draft=draft.id)
    if method == "delete" and "categories" in url:
        url += "?move_to=jijin"
        factory.category("jijin")
        before = factory.snapshot()
    kwargs = {"json": body} if body is not None else {}
    response = getattr(client, method)(url, headers=headers, **kwargs)
    if credential == "good":
        assert response.status_code in (200, 201, 204)
        return
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"]["code"] == "unauthorized"
    assert response.json["error"]["message"]
    assert factory.snapshot() == before


def test_public_reads_need_no_token(client, factory: Factory) -> None:
    post = factory.post()
    assert client.get(f"/api/v1/posts/{post.id}").status_code == 200
    assert client.get("/api/v1/posts").status_code == 200
    assert client.get("/api/v1/categories").status_code == 200
    assert client.get("/api/v1/categories/licai-fangfa").status_code == 200


def test_only_the_hash_is_stored(factory: Factory, ctx) -> None:
    token = factory.token("hash-check")
    with ctx.db.read() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.name == "hash-check"))
    assert row.token_hash == token_service.hash_token(token)
    assert token not in row.token_hash


def test_last_used_is_recorded(client, factory: Factory, ctx, auth) -> None:
    client.get("/api/v1/posts?status=draft", headers=auth)
    (row,) = token_service.list_tokens(ctx)
    assert row.last_used_at == ctx.clock.now()
