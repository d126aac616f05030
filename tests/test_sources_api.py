"""/api/v1/sources: add, list, show, edit and remove upstream feeds; the categories.toml sync."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from feedsvc.errors import Invalid
from feedsvc.models import ExternalItem, Post, Source, SourceEntry
from feedsvc.related import refresh
from feedsvc.services import categories as category_service
from feedsvc.services import sources as source_service
from feedsvc.sources.poll import poll_sources
from tests.conftest import NOW
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

URL = "https://partner.example.cn/feed.xml"
RECENT = "Fri, 20 Nov 2026 09:00:00 +0800"  # within sources.external_max_age_days of NOW


def rss(*items: tuple[str, str, str], title: str = "合作博客") -> bytes:
    """An RSS 2.0 feed of (guid, title, body) items dated RECENT."""
    entries = "".join(
        f'<item><guid isPermaLink="false">{guid}</guid><title>{heading}</title>'
        f"<link>http://partner.test/{guid}</link><pubDate>{RECENT}</pubDate>"
        f"<description><![CDATA[<p>{body}</p>]]></description></item>"
        for guid, heading, body in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>http://partner.test/</link><description>d</description>"
        f"{entries}</channel></rss>"
    ).encode()


BOND_FEED = rss(
    ("x1", "国债收益率下行，储蓄国债更抢手", "国债 收益率 储蓄国债 期限 久期 利率。"),
    ("x2", "国债期限怎么选", "国债 期限 久期 收益率 储蓄国债。"),
    title="财经通讯社",
)


def create(client, auth, **body: Any):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/sources", json=body, headers=auth)


def source_rows(ctx) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    """Every column of every source, to prove a rejected request changed nothing."""
    with ctx.db.read() as session:
        return [
            tuple(getattr(row, column.key) for column in Source.__table__.columns)
            for row in session.scalars(select(Source).order_by(Source.id))
        ]


def state_of(ctx, factory: Factory) -> tuple[Any, ...]:  # type: ignore[no-untyped-def]
    return factory.snapshot(), factory.counts(), source_rows(ctx)


def post_rows(factory: Factory) -> list[tuple[Any, ...]]:
    """The posts part of the snapshot (categories' versions move when feeds change)."""
    return [row for row in factory.snapshot() if len(row) == 9]


def count(ctx, model: type) -> int:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def assert_error(  # type: ignore[no-untyped-def]
    response,
    status: int,
    code: str,
    fields: set[str] | None = None,
) -> dict[str, Any]:
    """The one error shape: {"error": {"code", "message", "fields"}}, with this status."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.content_type
    error = response.json["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["fields"], dict)
    if fields is not None:
        assert set(error["fields"]) == fields, error
        assert all(isinstance(v, str) and v for v in error["fields"].values()), error
    return error


@pytest.fixture
def jijin(factory: Factory):  # type: ignore[no-untyped-def]
    factory.category("jijin")
    factory.category("gupiao")


# -- create, list, show --------------------------------------------------------------------------


@pytest.mark.usefixtures("jijin")
def test_create_answers_201_with_location_and_the_full_source(client, auth) -> None:
    response = create(client, auth, url=URL, category="jijin", mode="posts", interval_minutes=15)
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"] == f"/api/v1/sources/{body['id']}"
    created_at = NOW.isoformat()  # "2026-11-28T12:00:00+08:00": Beijing time
    assert body == {
        "id": body["id"],
        "url": URL,
        "category": "jijin",
        "mode": "posts",
        "interval_minutes": 15,
        "enabled": True,
        "title": "",
        "state": {
            "etag": None,
            "last_modified": None,
            "last_status": None,
            "last_fetched_at": None,
            "next_fetch_at": created_at,  # due at once
            "consecutive_errors": 0,
            "last_error": None,
            "disabled_reason": None,
        },
        "created_at": created_at,
        "updated_at": created_at,
    }
    # The Location answers with the same source.
    shown = client.get(response.headers["Location"], headers=auth)
    assert shown.status_code == 200 and shown.json == body


@pytest.mark.usefixtures("jijin")
def test_create_defaults_to_related_mode_and_the_default_interval(client, auth) -> None:
    body = create(client, auth, url=URL, category="jijin").json
    assert (body["mode"], body["interval_minutes"], body["enabled"]) == ("related", 30, True)
    # The minimum itself is allowed.
    fast = create(client, auth, url=URL + "?fast", category="jijin", interval_minutes=5)
    assert fast.status_code == 201 and fast.json["interval_minutes"] == 5


@pytest.mark.usefixtures("jijin")
def test_a_source_created_disabled_is_never_due(client, auth, ctx) -> None:
    body = create(client, auth, url="http://127.0.0.1:9/feed", category="jijin", enabled=False)
    assert body.json["enabled"] is False
    assert poll_sources(ctx, None) == []


@pytest.mark.usefixtures("jijin")
def test_list_returns_every_source_in_order(client, auth) -> None:
    assert client.get("/api/v1/sources", headers=auth).json == {"items": [], "next_cursor": None}
    first = create(client, auth, url=URL, category="jijin").json
    second = create(client, auth, url=URL + "?2", category="gupiao", mode="posts").json
    listed = client.get("/api/v1/sources", headers=auth)
    assert listed.status_code == 200
    assert listed.json == {"items": [first, second], "next_cursor": None}


# -- edit --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("jijin")
def test_patch_changes_only_the_given_fields(client, auth, clock) -> None:
    created = create(client, auth, url=URL, category="jijin").json
    clock.advance(minutes=10)
    path = f"/api/v1/sources/{created['id']}"
    edited = client.patch(path, json={"mode": "posts", "interval_minutes": 60}, headers=auth)
    assert edited.status_code == 200, edited.json
    body = edited.json
    assert (body["mode"], body["interval_minutes"], body["category"]) == ("posts", 60, "jijin")
    assert body["updated_at"] == (NOW + timedelta(minutes=10)).isoformat()
    assert body["created_at"] == created["created_at"]
    moved = client.patch(path, json={"category": "gupiao"}, headers=auth).json
    assert moved["category"] == "gupiao" and moved["mode"] == "posts"
    assert client.get(path, headers=auth).json == moved
    # An empty PATCH changes nothing, not even updated_at.
    clock.advance(minutes=10)
    assert client.patch(path, json={}, headers=auth).json == moved


@pytest.mark.usefixtures("jijin")
def test_disabling_records_why_and_reenabling_clears_the_errors(
    httpserver: HTTPServer, client, auth, ctx, clock
) -> None:
    httpserver.expect_ordered_request("/feed").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request("/feed").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request("/feed").respond_with_data(BOND_FEED)
    created = create(client, auth, url=httpserver.url_for("/feed"), category="jijin").json
    path = f"/api/v1/sources/{created['id']}"
    poll_sources(ctx, None)
    clock.advance(hours=2)
    poll_sources(ctx, None)
    failing = client.get(path, headers=auth).json["state"]
    assert failing["consecutive_errors"] == 2 and "500" in failing["last_error"]
    assert failing["next_fetch_at"] > clock.now().isoformat()  # backed off

    disabled = client.patch(path, json={"enabled": False}, headers=auth)
    assert disabled.status_code == 200
    assert disabled.json["enabled"] is False
    assert disabled.json["state"]["disabled_reason"] == "disabled by the publisher"
    clock.advance(days=2)
    assert poll_sources(ctx, None) == []  # a disabled source is never polled

    enabled = client.patch(path, json={"enabled": True}, headers=auth).json
    assert enabled["enabled"] is True
    assert enabled["state"]["disabled_reason"] is None
    assert enabled["state"]["consecutive_errors"] == 0
    assert enabled["state"]["next_fetch_at"] == clock.now().isoformat()  # due now
    (outcome,) = poll_sources(ctx, None)
    assert outcome.error is None and outcome.report.new == 2
    polled = client.get(path, headers=auth).json["state"]
    assert polled["last_status"] == 200 and polled["last_error"] is None


@pytest.mark.usefixtures("jijin")
def test_reenabling_a_gone_source_makes_it_due(httpserver: HTTPServer, client, auth, ctx) -> None:
    httpserver.expect_ordered_request("/gone").respond_with_data("", status=410)
    httpserver.expect_ordered_request("/gone").respond_with_data(BOND_FEED)
    created = create(client, auth, url=httpserver.url_for("/gone"), category="jijin").json
    path = f"/api/v1/sources/{created['id']}"
    poll_sources(ctx, None)
    gone = client.get(path, headers=auth).json
    assert gone["enabled"] is False and gone["state"]["disabled_reason"] == "gone (410)"
    assert gone["state"]["next_fetch_at"] is None
    enabled = client.patch(path, json={"enabled": True}, headers=auth).json
    assert enabled["state"]["disabled_reason"] is None
    assert enabled["state"]["next_fetch_at"] == NOW.isoformat()
    assert [o.source_id for o in poll_sources(ctx, None)] == [created["id"]]


@pytest.mark.usefixtures("jijin")
def test_switching_to_posts_mode_imports_the_entries_already_seen(
    httpserver: HTTPServer, client, auth, ctx, clock
) -> None:
    httpserver.expect_request("/wire").respond_with_data(BOND_FEED)
    created = create(client, auth, url=httpserver.url_for("/wire"), category="jijin").json
    (first,) = poll_sources(ctx, None)
    assert first.report.new == 2 and count(ctx, ExternalItem) == 2
    path = f"/api/v1/sources/{created['id']}"
    assert client.patch(path, json={"mode": "posts"}, headers=auth).status_code == 200
    clock.advance(minutes=31)
    (second,) = poll_sources(ctx, None)
    assert second.error is None
    with ctx.db.read() as session:
        titles = sorted(session.scalars(select(Post.title)))
    assert titles == sorted(["国债收益率下行，储蓄国债更抢手", "国债期限怎么选"])


# -- remove ------------------------------------------------------------------------------------


def test_delete_removes_external_items_and_keeps_imported_posts(
    httpserver: HTTPServer, client, auth, ctx, factory: Factory
) -> None:
    httpserver.expect_request("/wire").respond_with_data(BOND_FEED)
    httpserver.expect_request("/blog").respond_with_data(
        rss(("b1", "我的应急基金放在哪里", "六个月的生活费。"), title="合作博客")
    )
    bond = factory.post(
        "licai-fangfa",
        title="储蓄国债值得买吗",
        content="储蓄国债 国债 收益率 期限 久期 利率。",
        tags=["国债"],
    )
    wire = create(
        client, auth, url=httpserver.url_for("/wire"), category="licai-fangfa", mode="related"
    ).json
    factory.ensure_category("jijin")
    blog = create(
        client, auth, url=httpserver.url_for("/blog"), category="jijin", mode="posts"
    ).json
    poll_sources(ctx, None)
    refresh.refresh(ctx, None)
    related = client.get(f"/api/v1/posts/{bond.id}/related").json["items"]
    assert any(i["kind"] == "external" for i in related)
    assert count(ctx, ExternalItem) == 2 and count(ctx, SourceEntry) == 1
    posts_before = post_rows(factory)

    for source in (wire, blog):
        deleted = client.delete(f"/api/v1/sources/{source['id']}", headers=auth)
        assert deleted.status_code == 204 and deleted.data == b""
        assert_error(client.get(f"/api/v1/sources/{source['id']}", headers=auth), 404, "not_found")
    assert client.get("/api/v1/sources", headers=auth).json["items"] == []
    assert count(ctx, ExternalItem) == 0 and count(ctx, SourceEntry) == 0
    # The imported post stays, still linking to its original article.
    assert post_rows(factory) == posts_before
    with ctx.db.read() as session:
        imported = session.scalar(select(Post).where(Post.title == "我的应急基金放在哪里"))
    assert imported is not None and imported.origin_link == "http://partner.test/b1"
    # The related block that showed the wire's items is refilled without them.
    refresh.refresh(ctx, None)
    related = client.get(f"/api/v1/posts/{bond.id}/related").json["items"]
    assert all(i["kind"] != "external" for i in related)
    # Deleting again: 404, nothing else changes.
    assert_error(client.delete(f"/api/v1/sources/{wire['id']}", headers=auth), 404, "not_found")


# -- authentication ----------------------------------------------------------------------------

CALLS = [
    ("get", "/api/v1/sources", None),
    ("post", "/api/v1/sources", {"url": URL, "category": "jijin"}),
    ("get", "/api/v1/sources/{id}", None),
    ("patch", "/api/v1/sources/{id}", {"enabled": False}),
    ("delete", "/api/v1/sources/{id}", None),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["no-header", "unknown-token", "basic-scheme", "empty-bearer"],
)
@pytest.mark.parametrize("method,path,body", CALLS, ids=[f"{m}-{p}" for m, p, _ in CALLS])
@pytest.mark.usefixtures("jijin")
def test_every_call_needs_a_valid_token(
    client, auth, ctx, factory, headers, method, path, body
) -> None:
    existing = create(client, auth, url=URL + "?existing", category="jijin").json
    before = state_of(ctx, factory)
    response = getattr(client, method)(path.format(id=existing["id"]), json=body, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert state_of(ctx, factory) == before


def test_a_revoked_token_is_refused(client, auth, ctx, factory, token) -> None:
    from feedsvc.services import tokens as token_service

    token_service.revoke_token(ctx, "tests")
    assert_error(client.get("/api/v1/sources", headers=auth), 401, "unauthorized")


# -- bad input ---------------------------------------------------------------------------------

# A number or a list where a string belongs is a 422 naming the field, never a 500.
GOOD = {"url": URL, "category": "jijin", "mode": "posts", "interval_minutes": 30}

BAD_CREATES = [
    pytest.param({**GOOD, "url": "ftp://partner.example.cn/feed.xml"}, {"url"}, id="ftp-url"),
    pytest.param({**GOOD, "url": "file:///etc/passwd"}, {"url"}, id="file-url"),
    pytest.param({**GOOD, "url": "/etc/passwd"}, {"url"}, id="bare-path"),
    pytest.param({**GOOD, "url": "partner.example.cn/feed"}, {"url"}, id="no-scheme"),
    pytest.param({**GOOD, "url": "javascript:alert(1)"}, {"url"}, id="javascript-url"),
    pytest.param({**GOOD, "url": "http://"}, {"url"}, id="no-host"),
    pytest.param({**GOOD, "url": ""}, {"url"}, id="empty-url"),
    # A malformed internationalised name (IDNA): a 500, and a traceback at every poll, before.
    pytest.param({**GOOD, "url": "http://xn--/feed"}, {"url"}, id="bad-a-label"),
    pytest.param({**GOOD, "url": "http://xn--a.com/feed"}, {"url"}, id="bad-punycode"),
    pytest.param({**GOOD, "url": "http://partner.example.cn:99999/"}, {"url"}, id="bad-port"),
    pytest.param({**GOOD, "url": 42}, {"url"}, id="url-a-number"),
    pytest.param({**GOOD, "url": [URL]}, {"url"}, id="url-a-list"),
    pytest.param({**GOOD, "category": 42}, {"category"}, id="category-a-number"),
    pytest.param({k: v for k, v in GOOD.items() if k != "url"}, {"url"}, id="missing-url"),
    pytest.param({k: v for k, v in GOOD.items() if k != "category"}, {"category"}, id="no-cat"),
    pytest.param({**GOOD, "category": "nope"}, {"category"}, id="unknown-category"),
    pytest.param({**GOOD, "category": "Not A Slug"}, {"category"}, id="bad-category-slug"),
    pytest.param({**GOOD, "mode": "all"}, {"mode"}, id="unknown-mode"),
    pytest.param({**GOOD, "interval_minutes": 4}, {"interval_minutes"}, id="interval-4"),
    pytest.param({**GOOD, "interval_minutes": 0}, {"interval_minutes"}, id="interval-0"),
    pytest.param({**GOOD, "interval_minutes": -30}, {"interval_minutes"}, id="interval-negative"),
    pytest.param({**GOOD, "interval_minutes": "often"}, {"interval_minutes"}, id="interval-text"),
    pytest.param({**GOOD, "interval_minutes": 10_081}, {"interval_minutes"}, id="interval-huge"),
    pytest.param({**GOOD, "enabled": "maybe"}, {"enabled"}, id="enabled-not-bool"),
    pytest.param({**GOOD, "colour": "red"}, {"colour"}, id="unknown-field"),
]


@pytest.mark.parametrize("body,fields", BAD_CREATES)
@pytest.mark.usefixtures("jijin")
def test_bad_creates_answer_422_and_change_nothing(client, auth, ctx, factory, body, fields):
    before = state_of(ctx, factory)
    error = assert_error(create(client, auth, **body), 422, "invalid", fields)
    assert all(name in error["message"] for name in fields)
    assert state_of(ctx, factory) == before


@pytest.mark.usefixtures("jijin")
def test_the_interval_error_names_the_minimum(client, auth) -> None:
    error = assert_error(
        create(client, auth, **{**GOOD, "interval_minutes": 4}),
        422,
        "invalid",
        {"interval_minutes"},
    )
    assert "5" in error["fields"]["interval_minutes"]
    mode = assert_error(create(client, auth, **{**GOOD, "mode": "all"}), 422, "invalid", {"mode"})
    assert "related" in mode["fields"]["mode"] and "posts" in mode["fields"]["mode"]
    missing = assert_error(create(client, auth, category="jijin"), 422, "invalid", {"url"})
    assert missing["fields"]["url"] == "is required"


@pytest.mark.usefixtures("jijin")
def test_a_duplicate_url_is_409(client, auth, ctx, factory) -> None:
    assert create(client, auth, **GOOD).status_code == 201
    before = state_of(ctx, factory)
    # Same URL, whatever else differs.
    again = create(client, auth, url=URL, category="gupiao", mode="related")
    error = assert_error(again, 409, "conflict", {"url"})
    assert URL in error["message"]
    assert state_of(ctx, factory) == before
    assert count(ctx, Source) == 1


@pytest.mark.usefixtures("jijin")
def test_unknown_ids_are_404(client, auth, ctx, factory) -> None:
    before = state_of(ctx, factory)
    for response in (
        client.get("/api/v1/sources/999", headers=auth),
        client.patch("/api/v1/sources/999", json={"enabled": False}, headers=auth),
        client.delete("/api/v1/sources/999", headers=auth),
    ):
        error = assert_error(response, 404, "not_found")
        assert "999" in error["message"]
    assert state_of(ctx, factory) == before


BAD_PATCHES = [
    pytest.param({"enabled": None}, {"enabled"}, id="null-enabled"),
    pytest.param(
        {"mode": None, "interval_minutes": None}, {"mode", "interval_minutes"}, id="nulls"
    ),
    pytest.param({"category": None}, {"category"}, id="null-category"),
    pytest.param({"mode": "all"}, {"mode"}, id="unknown-mode"),
    pytest.param({"interval_minutes": 4}, {"interval_minutes"}, id="interval-4"),
    pytest.param({"interval_minutes": 0}, {"interval_minutes"}, id="interval-0"),
    pytest.param({"category": "nope"}, {"category"}, id="unknown-category"),
    pytest.param({"enabled": "maybe"}, {"enabled"}, id="enabled-not-bool"),
    pytest.param({"category": 42}, {"category"}, id="category-a-number"),
    pytest.param({"url": "https://elsewhere.example.cn/feed"}, {"url"}, id="url-not-editable"),
]


@pytest.mark.parametrize("body,fields", BAD_PATCHES)
@pytest.mark.usefixtures("jijin")
def test_bad_patches_answer_422_and_change_nothing(client, auth, ctx, factory, body, fields):
    source_id = create(client, auth, **GOOD).json["id"]
    before = state_of(ctx, factory)
    response = client.patch(f"/api/v1/sources/{source_id}", json=body, headers=auth)
    assert_error(response, 422, "invalid", fields)
    assert state_of(ctx, factory) == before


@pytest.mark.parametrize("method", ["post", "patch"])
@pytest.mark.usefixtures("jijin")
def test_malformed_json_is_400_and_other_bodies_415(client, auth, ctx, factory, method) -> None:
    source_id = create(client, auth, **GOOD).json["id"]
    path = "/api/v1/sources" if method == "post" else f"/api/v1/sources/{source_id}"
    send = getattr(client, method)
    before = state_of(ctx, factory)
    json_headers = {**auth, "Content-Type": "application/json"}
    for raw in ('{"url": "https://a.example.cn/feed", ', "", "\xff", "[1, 2]", '"text"'):
        data = raw.encode("latin-1")
        assert_error(send(path, data=data, headers=json_headers), 400, "bad_request")
    form = send(path, data={"url": "https://a.example.cn/feed", "category": "jijin"}, headers=auth)
    assert_error(form, 415, "unsupported_media_type")
    text = send(path, data='{"enabled": false}', headers={**auth, "Content-Type": "text/plain"})
    assert_error(text, 415, "unsupported_media_type")
    assert state_of(ctx, factory) == before


# -- the categories.toml sync (feedsvc init) ----------------------------------------------------

CATEGORIES_TOML = """
[[categories]]
slug = "jijin"
name = "基金"

[[categories.sources]]
url = "https://partner.example.cn/jijin.xml"
mode = "posts"
interval_minutes = 60

[[categories.sources]]
url = "https://wire.example.cn/rss"

[[categories]]
slug = "gupiao"
name = "股票"

[[categories.sources]]
url = "https://stocks.example.cn/atom.xml"
mode = "related"
interval_minutes = 15
"""


# The same file, edited: one interval and one mode changed, the gupiao category left out.
EDITED_TOML = """
[[categories]]
slug = "jijin"
name = "基金"

[[categories.sources]]
url = "https://partner.example.cn/jijin.xml"
mode = "posts"
interval_minutes = 120

[[categories.sources]]
url = "https://wire.example.cn/rss"
mode = "posts"
"""


def sync(ctx, path: Path) -> source_service.SourceSyncReport:  # type: ignore[no-untyped-def]
    """What `feedsvc init` does with the file: categories first, then their sources."""
    category_service.sync_categories(ctx, path)
    return source_service.sync_sources(ctx, category_service.read_category_sources(path))


def test_init_sync_adds_sources_once(tmp_path: Path, ctx, factory: Factory, client, auth) -> None:
    path = tmp_path / "categories.toml"
    path.write_text(CATEGORIES_TOML, encoding="utf-8")
    assert category_service.read_category_sources(path) == [
        (
            "jijin",
            {
                "url": "https://partner.example.cn/jijin.xml",
                "mode": "posts",
                "interval_minutes": 60,
            },
        ),
        ("jijin", {"url": "https://wire.example.cn/rss"}),
        (
            "gupiao",
            {
                "url": "https://stocks.example.cn/atom.xml",
                "mode": "related",
                "interval_minutes": 15,
            },
        ),
    ]
    factory.post("jijin")
    factory.post("gupiao")
    posts_before = post_rows(factory)

    first = sync(ctx, path)
    assert (first.added, first.updated, first.unchanged) == (3, 0, 0)
    listed = client.get("/api/v1/sources", headers=auth).json["items"]
    assert [(s["url"], s["category"], s["mode"], s["interval_minutes"]) for s in listed] == [
        ("https://partner.example.cn/jijin.xml", "jijin", "posts", 60),
        ("https://wire.example.cn/rss", "jijin", "related", 30),
        ("https://stocks.example.cn/atom.xml", "gupiao", "related", 15),
    ]
    rows = source_rows(ctx)

    second = sync(ctx, path)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 3)
    assert source_rows(ctx) == rows

    # An edited entry is updated; a source dropped from the file stays; posts are never deleted.
    path.write_text(EDITED_TOML, encoding="utf-8")
    third = sync(ctx, path)
    assert (third.added, third.updated, third.unchanged) == (0, 2, 0)
    listed = client.get("/api/v1/sources", headers=auth).json["items"]
    assert [(s["url"], s["mode"], s["interval_minutes"]) for s in listed] == [
        ("https://partner.example.cn/jijin.xml", "posts", 120),
        ("https://wire.example.cn/rss", "posts", 30),
        ("https://stocks.example.cn/atom.xml", "related", 15),
    ]
    assert post_rows(factory) == posts_before


def test_init_sync_keeps_changes_made_through_the_api(tmp_path: Path, ctx, client, auth) -> None:
    path = tmp_path / "categories.toml"
    path.write_text(CATEGORIES_TOML, encoding="utf-8")
    sync(ctx, path)
    first_id = client.get("/api/v1/sources", headers=auth).json["items"][0]["id"]
    client.patch(f"/api/v1/sources/{first_id}", json={"enabled": False}, headers=auth)
    again = sync(ctx, path)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    # The publisher's "disabled" is not undone by the file (which says nothing about it).
    assert client.get(f"/api/v1/sources/{first_id}", headers=auth).json["enabled"] is False


BAD_TOML_SOURCE = """
[[categories]]
slug = "jijin"
name = "基金"

[[categories.sources]]
url = "https://partner.example.cn/jijin.xml"

[[categories.sources]]
url = "ftp://partner.example.cn/bad.xml"
"""


def test_init_sync_refuses_a_bad_source_entry(tmp_path: Path, ctx) -> None:
    path = tmp_path / "categories.toml"
    path.write_text(BAD_TOML_SOURCE, encoding="utf-8")
    category_service.sync_categories(ctx, path)
    with pytest.raises(Invalid) as raised:
        source_service.sync_sources(ctx, category_service.read_category_sources(path))
    assert "url" in raised.value.message


def test_init_sync_with_a_bad_entry_adds_no_source(tmp_path: Path, ctx) -> None:
    path = tmp_path / "categories.toml"
    path.write_text(BAD_TOML_SOURCE, encoding="utf-8")
    category_service.sync_categories(ctx, path)
    with pytest.raises(Invalid):
        source_service.sync_sources(ctx, category_service.read_category_sources(path))
    assert count(ctx, Source) == 0


def test_init_sync_error_names_the_file_and_category(tmp_path: Path, ctx) -> None:
    path = tmp_path / "categories.toml"
    path.write_text(BAD_TOML_SOURCE, encoding="utf-8")
    category_service.sync_categories(ctx, path)
    with pytest.raises(Invalid) as raised:
        source_service.sync_sources(ctx, category_service.read_category_sources(path))
    assert str(path) in raised.value.message and "jijin" in raised.value.message


@pytest.mark.usefixtures("jijin")
def test_new_interval_reschedules_and_reenabling_clears_the_error(
    httpserver: HTTPServer, client, auth, ctx, clock
) -> None:
    httpserver.expect_ordered_request("/wire").respond_with_data(BOND_FEED)
    httpserver.expect_ordered_request("/wire").respond_with_data("oops", status=500)
    created = create(client, auth, url=httpserver.url_for("/wire"), category="jijin").json
    path = f"/api/v1/sources/{created['id']}"
    poll_sources(ctx, None)
    longer = client.patch(path, json={"interval_minutes": 120}, headers=auth).json
    assert longer["state"]["next_fetch_at"] == (NOW + timedelta(minutes=120)).isoformat()
    clock.advance(minutes=121)
    poll_sources(ctx, None)
    failed = client.get(path, headers=auth).json["state"]
    assert failed["consecutive_errors"] == 1 and "500" in failed["last_error"]
    client.patch(path, json={"enabled": False}, headers=auth)
    again = client.patch(path, json={"enabled": True}, headers=auth).json["state"]
    assert again["last_error"] is None and again["consecutive_errors"] == 0


def test_a_source_added_meanwhile_is_a_conflict(client, auth, ctx, factory: Factory, monkeypatch):
    """Two adds of one URL at once: the check misses the other's row, the unique index not."""
    from feedsvc.repo import sources as source_repo

    factory.category("jijin")
    url = "https://上游.example/同一个.xml"
    assert create(client, auth, url=url, category="jijin").status_code == 201
    before = state_of(ctx, factory)
    monkeypatch.setattr(source_repo, "find_source", lambda session, url: None)
    again = create(client, auth, url=url, category="jijin")
    assert again.status_code == 409
    assert again.json["error"]["fields"] == {"url": "is already a source"}
    assert state_of(ctx, factory) == before
