"""Bad input: the right 4xx, a JSON error body, and nothing changed in the database."""

from __future__ import annotations

import json

import pytest

from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

GOOD = {"title": "标题", "category": "licai-fangfa", "content": "正文。"}


def _with(**changes):  # type: ignore[no-untyped-def]
    body = {**GOOD, **changes}
    return {key: value for key, value in body.items() if value is not ...}


# (name, method, path, raw body or json, content type, status, code, field)
CASES = [
    (
        "malformed json",
        "post",
        "/api/v1/posts",
        b'{"title": "x",',
        "application/json",
        400,
        "bad_request",
        None,
    ),
    (
        "json array",
        "post",
        "/api/v1/posts",
        b"[1, 2]",
        "application/json",
        400,
        "bad_request",
        None,
    ),
    (
        "json string",
        "post",
        "/api/v1/posts",
        b'"text"',
        "application/json",
        400,
        "bad_request",
        None,
    ),
    (
        "bad utf-8",
        "post",
        "/api/v1/posts",
        b'{"title": "\xff\xfe"}',
        "application/json",
        400,
        "bad_request",
        None,
    ),
    (
        "form body",
        "post",
        "/api/v1/posts",
        b"title=x",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "text body",
        "post",
        "/api/v1/posts",
        json.dumps(GOOD).encode(),
        "text/plain",
        415,
        "unsupported_media_type",
        None,
    ),
    ("no title", "post", "/api/v1/posts", _with(title=...), None, 422, "invalid", "title"),
    ("empty title", "post", "/api/v1/posts", _with(title="   "), None, 422, "invalid", "title"),
    (
        "title too long",
        "post",
        "/api/v1/posts",
        _with(title="长" * 301),
        None,
        422,
        "invalid",
        "title",
    ),
    ("null title", "post", "/api/v1/posts", _with(title=None), None, 422, "invalid", "title"),
    ("title not a string", "post", "/api/v1/posts", _with(title=42), None, 422, "invalid", "title"),
    ("no category", "post", "/api/v1/posts", _with(category=...), None, 422, "invalid", "category"),
    (
        "unknown category",
        "post",
        "/api/v1/posts",
        _with(category="no-such"),
        None,
        422,
        "invalid",
        "category",
    ),
    ("no content", "post", "/api/v1/posts", _with(content=...), None, 422, "invalid", "content"),
    (
        "content only script",
        "post",
        "/api/v1/posts",
        _with(content="<script>x</script>", format="html"),
        None,
        422,
        "invalid",
        "content",
    ),
    # Nesting a parser would take quadratic time over (html5ever: 6 s for 50,000 levels).
    (
        "markdown nested too deep",
        "post",
        "/api/v1/posts",
        _with(content="> " * 101 + "引用"),
        None,
        422,
        "invalid",
        "content",
    ),
    (
        "html nested too deep",
        "post",
        "/api/v1/posts",
        _with(content="<div>" * 50_000 + "正文", format="html"),
        None,
        422,
        "invalid",
        "content",
    ),
    (
        "patch content nested too deep",
        "patch",
        "/api/v1/posts/{post}",
        {"content": "> " * 150 + "引用"},
        None,
        422,
        "invalid",
        "content",
    ),
    (
        "unparseable date",
        "post",
        "/api/v1/posts",
        _with(published_at="2026年3月15日"),
        None,
        422,
        "invalid",
        "published_at",
    ),
    (
        "date as number",
        "post",
        "/api/v1/posts",
        _with(published_at=1700000000),
        None,
        422,
        "invalid",
        "published_at",
    ),
    (
        "impossible date",
        "post",
        "/api/v1/posts",
        _with(published_at="2026-02-30T10:00:00"),
        None,
        422,
        "invalid",
        "published_at",
    ),
    (
        "unknown status",
        "post",
        "/api/v1/posts",
        _with(status="archived"),
        None,
        422,
        "invalid",
        "status",
    ),
    (
        "unknown format",
        "post",
        "/api/v1/posts",
        _with(format="rst"),
        None,
        422,
        "invalid",
        "format",
    ),
    ("bad slug", "post", "/api/v1/posts", _with(slug="Not A Slug!"), None, 422, "invalid", "slug"),
    ("chinese slug", "post", "/api/v1/posts", _with(slug="中文"), None, 422, "invalid", "slug"),
    ("tags not a list", "post", "/api/v1/posts", _with(tags="定投"), None, 422, "invalid", "tags"),
    (
        "empty tag",
        "post",
        "/api/v1/posts",
        _with(tags=["定投", ""]),
        None,
        422,
        "invalid",
        "tags.1",
    ),
    ("unknown field", "post", "/api/v1/posts", _with(colour="red"), None, 422, "invalid", "colour"),
    ("slug taken", "post", "/api/v1/posts", _with(slug="taken"), None, 409, "conflict", "slug"),
    (
        "patch unknown id",
        "patch",
        "/api/v1/posts/99999",
        {"title": "x"},
        None,
        404,
        "not_found",
        None,
    ),
    (
        "patch null title",
        "patch",
        "/api/v1/posts/{post}",
        {"title": None},
        None,
        422,
        "invalid",
        "title",
    ),
    (
        "patch slug taken",
        "patch",
        "/api/v1/posts/{post}",
        {"slug": "taken"},
        None,
        409,
        "conflict",
        "slug",
    ),
    (
        "patch bad category",
        "patch",
        "/api/v1/posts/{post}",
        {"category": "no-such"},
        None,
        422,
        "invalid",
        "category",
    ),
    (
        "patch year 0001",
        "patch",
        "/api/v1/posts/{post}",
        {"published_at": "0001-01-01T00:00:00"},
        None,
        422,
        "invalid",
        "published_at",
    ),
    ("delete unknown id", "delete", "/api/v1/posts/99999", None, None, 404, "not_found", None),
    (
        "category bad slug",
        "post",
        "/api/v1/categories",
        {"slug": "理财", "name": "理财"},
        None,
        422,
        "invalid",
        "slug",
    ),
    (
        "category reserved slug",
        "post",
        "/api/v1/categories",
        {"slug": "all", "name": "全部"},
        None,
        422,
        "invalid",
        "slug",
    ),
    (
        "category exists",
        "post",
        "/api/v1/categories",
        {"slug": "licai-fangfa", "name": "重复"},
        None,
        409,
        "conflict",
        "slug",
    ),
    (
        "category no name",
        "post",
        "/api/v1/categories",
        {"slug": "baoxian"},
        None,
        422,
        "invalid",
        "name",
    ),
    (
        "category feed_length 0",
        "post",
        "/api/v1/categories",
        {"slug": "baoxian", "name": "保险", "feed_length": 0},
        None,
        422,
        "invalid",
        "feed_length",
    ),
    (
        "category slug change",
        "patch",
        "/api/v1/categories/licai-fangfa",
        {"slug": "new"},
        None,
        422,
        "invalid",
        "slug",
    ),
    (
        "category unknown",
        "patch",
        "/api/v1/categories/no-such",
        {"name": "x"},
        None,
        404,
        "not_found",
        None,
    ),
    (
        "category with posts",
        "delete",
        "/api/v1/categories/licai-fangfa",
        None,
        None,
        409,
        "conflict",
        "move_to",
    ),
    (
        "category move to unknown",
        "delete",
        "/api/v1/categories/licai-fangfa?move_to=no-such",
        None,
        None,
        422,
        "invalid",
        "move_to",
    ),
    (
        "category move to itself",
        "delete",
        "/api/v1/categories/licai-fangfa?move_to=licai-fangfa",
        None,
        None,
        422,
        "invalid",
        "move_to",
    ),
    ("list bad limit", "get", "/api/v1/posts?limit=0", None, None, 400, "bad_request", None),
    ("list limit too big", "get", "/api/v1/posts?limit=101", None, None, 400, "bad_request", None),
    (
        "list bad cursor",
        "get",
        "/api/v1/posts?cursor=garbage!!",
        None,
        None,
        400,
        "bad_request",
        None,
    ),
    (
        "list forged cursor",
        "get",
        "/api/v1/posts?cursor=WyJ4IiwgMV0",
        None,
        None,
        400,
        "bad_request",
        None,
    ),
    (
        "list unknown status",
        "get",
        "/api/v1/posts?status=gone",
        None,
        None,
        400,
        "bad_request",
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "content_type", "status", "code", "field"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_bad_input(
    client, factory: Factory, auth, name, method, path, body, content_type, status, code, field
) -> None:
    factory.post(slug="taken")
    factory.post(slug="other")
    factory.category("jijin")
    kwargs: dict = {"headers": dict(auth)}
    if isinstance(body, bytes):
        kwargs["data"] = body
        kwargs["headers"]["Content-Type"] = content_type
    elif body is not None:
        kwargs["json"] = body
    url = path.format(post=factory.post(slug="target").id) if "{post}" in path else path
    before, counts = factory.snapshot(), factory.counts()
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status, response.json
    assert response.is_json
    error = response.json["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    if field is not None:
        assert field in error["fields"], error
    assert factory.snapshot() == before and factory.counts() == counts


def test_body_over_the_size_limit_is_413(client, factory: Factory, auth, ctx) -> None:
    factory.category()
    before = factory.counts()
    big = "长" * (ctx.settings.http.max_request_bytes // 2)
    response = client.post("/api/v1/posts", json={**GOOD, "content": big}, headers=auth)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large"
    assert factory.counts() == before


def test_unknown_api_path_is_json_404(client, factory: Factory) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert client.put("/api/v1/posts").status_code == 405
