"""One set of rules for the whole API: paging, filters, tokens, strict input, body limits."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from feedsvc.web.api import cursor
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

LISTS = [
    "/api/v1/posts",
    "/api/v1/categories",
    "/api/v1/sources",
    "/api/v1/jobs",
    "/api/v1/jobs/runs",
    "/api/v1/posts/{post}/related",
]


def _walk(client, path: str, auth: dict[str, str], limit: int) -> list[dict]:
    items: list[dict] = []
    url = f"{path}?limit={limit}"
    for _ in range(100):
        response = client.get(url, headers=auth)
        assert response.status_code == 200, response.json
        body = response.get_json()
        assert len(body["items"]) <= limit
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        url = f"{path}?limit={limit}&cursor={body['next_cursor']}"
    raise AssertionError("paging did not end")


@pytest.fixture
def lists(client, auth, factory: Factory, ctx) -> dict[str, str]:
    for slug in ("jijin", "gupiao", "licai-fangfa"):
        factory.category(slug)
    topics = [
        ("指数基金定投的节奏", "指数基金 定投 费率 估值 长期 复利"),
        ("定投指数基金要选费率低的", "指数基金 费率 定投 管理费 托管费 长期"),
        ("指数基金估值怎么看", "指数基金 估值 市盈率 定投 长期 分位"),
        ("债券基金为什么会亏", "债券基金 利率 久期 回撤 信用 违约"),
        ("利率上行时的债券基金", "债券基金 利率 久期 回撤 加息 价格"),
        ("信用债基金的违约风险", "债券基金 信用 违约 评级 回撤 利率"),
    ]
    posts = [
        factory.post("jijin", title=title, content=f"{words}。{words}。", tags=words.split()[:2])
        for title, words in topics
    ]
    for n in range(3):
        body = {"url": f"http://127.0.0.1:9/feed{n}.xml", "category": "jijin"}
        assert client.post("/api/v1/sources", json=body, headers=auth).status_code == 201
    from feedsvc import jobs
    from feedsvc.schedule import JOBS

    for name in ("related-rebuild", "related-refresh", "related-refresh"):
        assert jobs.run_job(ctx, JOBS[name], trigger="cli") is jobs.Outcome.SUCCEEDED
    return {path: path.format(post=posts[0].id) for path in LISTS}


def test_every_list_pages_with_limit_and_cursor(client, auth, lists: dict[str, str]) -> None:
    for path in lists.values():
        whole = client.get(f"{path}?limit=100", headers=auth).get_json()["items"]
        assert whole, path
        for limit in (1, 2):
            walked = _walk(client, path, auth, limit)
            assert walked == whole, (path, limit)


@pytest.mark.parametrize("limit", ["0", "101", "99999999999999999999", "%C2%B2", "%D9%A3", "x"])
def test_every_list_rejects_a_limit_out_of_bounds_naming_them(
    client, auth, lists: dict[str, str], limit: str
) -> None:
    for path in lists.values():
        response = client.get(f"{path}?limit={limit}", headers=auth)
        assert response.status_code == 400, path
        error = response.get_json()["error"]
        assert error["message"] == "limit must be a whole number from 1 to 100"
        assert error["fields"] == {"limit": "must be a whole number from 1 to 100"}


def _forged(kind: str, *values: object) -> str:
    # A cursor with a valid tag but a value the API never gives out: the strict checks hold.
    payload = json.dumps([kind, *values]).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + cursor._tag(payload)


@pytest.mark.parametrize(
    "raw",
    [
        "not-a-cursor",
        "e30",
        _forged("posts", "2026-01-01T00:00:00+00:00", True),
        _forged("posts", "2026-01-01T00:00:00+00:00", 1.5),
        _forged("posts", "2026-01-01T00:00:00+00:00", 10**30),
        _forged("posts", "2026-01-01T00:00:00+00:00", -1),
        _forged("posts", "9999-12-31T23:59:59-12:00", 1),
        _forged("posts", "2026-01-01T00:00:00", 1),  # naive
        _forged("posts", "2026-01-01T00:00:00+00:00"),
        _forged("sources", 1),  # another list's cursor
        "WyJwb3N0cyIsIjFlOTk5IiwxXQ.AAAAAAAAAAA",  # wrong tag
        "x" * 600,
        "游标.标签",  # non-ASCII: was a 500 (found by tests/test_cursor_properties.py)
    ],
)
def test_a_cursor_the_api_did_not_give_out_is_a_400(client, auth, raw: str) -> None:
    response = client.get("/api/v1/posts", query_string={"cursor": raw}, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"cursor": "is not one this API gave out"}


def test_a_json_infinity_or_huge_number_in_a_cursor_is_a_400(client) -> None:
    payload = b'["posts","2026-01-01T00:00:00+00:00",1e999]'
    raw = base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + cursor._tag(payload)
    assert client.get("/api/v1/posts", query_string={"cursor": raw}).status_code == 400


def test_a_tampered_cursor_is_a_400(client, auth, factory: Factory) -> None:
    for _ in range(3):
        factory.post()
    good = client.get("/api/v1/posts?limit=1").get_json()["next_cursor"]
    assert client.get(f"/api/v1/posts?cursor={good}").status_code == 200
    body, tag = good.split(".")
    for index in range(len(body)):
        flipped = body[:index] + ("A" if body[index] != "A" else "B") + body[index + 1 :]
        response = client.get(f"/api/v1/posts?cursor={flipped}.{tag}")
        assert response.status_code == 400, flipped


def test_a_filter_that_names_nothing_is_an_empty_page_for_every_filter(
    client, auth, factory: Factory
) -> None:
    factory.post()
    for query in ("category=no-such", "tag=没有这个标签", "category=%E4%B8%AD"):
        response = client.get(f"/api/v1/posts?{query}", headers=auth)
        assert response.status_code == 200
        assert response.get_json() == {"items": [], "next_cursor": None}
    runs = client.get("/api/v1/jobs/runs?job=no-such", headers=auth)
    assert runs.get_json() == {"items": [], "next_cursor": None}
    bad = client.get("/api/v1/posts?status=archived", headers=auth)
    assert bad.status_code == 400 and "status" in bad.get_json()["error"]["fields"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/posts", "/api/v1/categories", "/api/v1/categories/x", "/api/v1/openapi.json"],
)
@pytest.mark.parametrize(
    "header", ["Bearer wrong", "Bearer fs_nope", "Basic dXNlcjpwYXNz", "Bearer", "token"]
)
def test_a_wrong_token_is_a_401_on_public_reads_too(client, path: str, header: str) -> None:
    response = client.get(path, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/categories", {"slug": "baoxian", "name": "保险", "position": True}, "position"),
        ("/api/v1/categories", {"slug": "baoxian", "name": "保险", "position": "3"}, "position"),
        (
            "/api/v1/categories",
            {"slug": "baoxian", "name": "保险", "feed_length": 2.0},
            "feed_length",
        ),
        (
            "/api/v1/sources",
            {"url": "http://127.0.0.1:9/a.xml", "category": "licai-fangfa", "enabled": "true"},
            "enabled",
        ),
        (
            "/api/v1/sources",
            {
                "url": "http://127.0.0.1:9/a.xml",
                "category": "licai-fangfa",
                "interval_minutes": 1e999,
            },
            "interval_minutes",
        ),
        ("/api/v1/posts", {"title": 1, "category": "licai-fangfa", "content": "正文"}, "title"),
    ],
)
def test_input_types_are_strict(client, auth, factory: Factory, path, body, field) -> None:
    factory.category()
    before = factory.snapshot()
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert factory.snapshot() == before


def test_feed_length_cannot_exceed_the_sites_maximum(client, auth, factory: Factory, ctx) -> None:
    ceiling = ctx.settings.feeds.max_length
    factory.category()
    before = factory.snapshot()
    body = {"slug": "baoxian", "name": "保险", "feed_length": ceiling + 1}
    created = client.post("/api/v1/categories", json=body, headers=auth)
    edited = client.patch(
        "/api/v1/categories/licai-fangfa", json={"feed_length": ceiling + 1}, headers=auth
    )
    for response in (created, edited):
        assert response.status_code == 422
        message = response.get_json()["error"]["fields"]["feed_length"]
        assert message == f"must be at most feeds.max_length ({ceiling})"
    assert factory.snapshot() == before
    body["feed_length"] = ceiling
    assert client.post("/api/v1/categories", json=body, headers=auth).status_code == 201


def test_string_limits_speak_of_characters(client, auth, factory: Factory) -> None:
    factory.category()
    body = {"title": "长" * 301, "category": "licai-fangfa", "content": "正文"}
    response = client.post("/api/v1/posts", json=body, headers=auth)
    assert response.status_code == 422
    assert (
        response.get_json()["error"]["fields"]["title"]
        == "String should have at most 300 characters"
    )


def test_json_nested_100000_deep_is_a_400(client, auth, factory: Factory) -> None:
    factory.category()
    before = factory.snapshot()
    body = b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post(
        "/api/v1/posts", data=body, content_type="application/json", headers=auth
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "malformed JSON: nested too deeply"
    assert factory.snapshot() == before


@pytest.fixture
def live_url(app) -> Iterator[str]:
    """The app behind a real HTTP server (Werkzeug's, which decodes chunked bodies)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.port}"
    server.shutdown()


def _chunked_post(host: str, path: str, body: bytes, token: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(host, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    try:
        connection.request("POST", path, body=chunks(), headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_2_mb_chunked_body_is_a_413(live_url: str, token: str, factory: Factory) -> None:
    factory.category()
    before = factory.snapshot()
    content = "正" * 700_000  # about 2 MB of UTF-8
    body = json.dumps({"title": "长文", "category": "licai-fangfa", "content": content}).encode()
    status, error = _chunked_post(live_url, "/api/v1/posts", body, token)
    assert status == 413 and error["error"]["code"] == "too_large"
    assert factory.snapshot() == before
    small = json.dumps({"title": "短文", "category": "licai-fangfa", "content": "正文"}).encode()
    assert _chunked_post(live_url, "/api/v1/posts", small, token)[0] == 201
