"""HTTP semantics of feeds: validators, 304, HEAD, gzip, Cache-Control, errors, processes."""

from __future__ import annotations

import gzip
from datetime import timedelta

import pytest
from werkzeug.http import http_date, parse_date

from feedsvc import create_app
from tests.conftest import NOW
from tests.factories import Factory
from tests.feedcheck import parse

pytestmark = pytest.mark.usefixtures("backend")

FEED = "/feeds/licai-fangfa.rss"


@pytest.fixture
def feed(client, factory: Factory):  # type: ignore[no-untyped-def]
    factory.post(title="第一篇")
    factory.post(title="第二篇")
    return client.get(FEED)


def test_validators_and_caching_headers(feed, ctx) -> None:
    assert feed.status_code == 200
    etag = feed.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert feed.headers["Cache-Control"] == f"public, max-age={ctx.settings.feeds.cache_max_age}"
    assert feed.headers["Vary"] == "Accept-Encoding"
    assert feed.headers["Content-Length"] == str(len(feed.data))
    # Last-Modified is the newest change in the feed (the second post's write), not "now".
    assert parse_date(feed.headers["Last-Modified"]) == NOW.replace(microsecond=0)


def test_same_data_same_bytes_and_etag(client, feed, clock) -> None:
    clock.advance(hours=5)
    again = client.get(FEED)
    assert again.data == feed.data and again.headers["ETag"] == feed.headers["ETag"]
    assert again.headers["Last-Modified"] == feed.headers["Last-Modified"]


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("If-None-Match", "{etag}", 304),
        ("If-None-Match", "W/{etag}", 304),  # weakened by a compressing proxy
        ("If-None-Match", '"other", {etag}', 304),  # a list
        ("If-None-Match", '"other",W/{etag}', 304),
        ("If-None-Match", "*", 304),
        ("If-None-Match", '"something-else"', 200),
        ("If-None-Match", "{gzip_etag}", 304),  # the gzip representation's tag
        ("If-Modified-Since", "{last_modified}", 304),
        ("If-Modified-Since", "{later}", 304),
        ("If-Modified-Since", "{earlier}", 200),
        ("If-Modified-Since", "not a date", 200),
    ],
)
def test_conditional_get_forms(client, feed, header: str, value: str, status: int) -> None:
    etag = feed.headers["ETag"]
    last_modified = parse_date(feed.headers["Last-Modified"])
    value = value.format(
        etag=etag,
        gzip_etag=etag[:-1] + '-gzip"',
        last_modified=feed.headers["Last-Modified"],
        later=http_date(last_modified + timedelta(days=1)),
        earlier=http_date(last_modified - timedelta(seconds=1)),
    )
    response = client.get(FEED, headers={header: value})
    assert response.status_code == status
    assert response.headers["ETag"] == etag
    if status == 304:
        # RFC 9110 §15.4.5: a 304 carries ETag, Cache-Control and Vary as a 200 would.
        assert response.data == b""
        assert response.headers["Cache-Control"] == feed.headers["Cache-Control"]
        assert response.headers["Vary"] == "Accept-Encoding"
    else:
        assert response.data == feed.data


def test_if_none_match_wins_over_if_modified_since(client, feed) -> None:
    response = client.get(
        FEED,
        headers={"If-None-Match": '"stale"', "If-Modified-Since": feed.headers["Last-Modified"]},
    )
    assert response.status_code == 200


def test_head_has_headers_and_no_body(client, feed) -> None:
    response = client.head(FEED)
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["ETag"] == feed.headers["ETag"]
    assert response.headers["Content-Length"] == str(len(feed.data))
    conditional = client.head(FEED, headers={"If-None-Match": feed.headers["ETag"]})
    assert conditional.status_code == 304


def test_gzip_when_accepted(client, feed) -> None:
    response = client.get(FEED, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data) == feed.data
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["Vary"] == "Accept-Encoding"
    etag = response.headers["ETag"]
    assert etag != feed.headers["ETag"]  # RFC 9110 §8.8.3: another coding, another tag
    again = client.get(FEED, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag
    refused = client.get(FEED, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.data == feed.data


def test_gzip_bytes_are_compressed_once(client, feed, app) -> None:
    first = client.get(FEED, headers={"Accept-Encoding": "gzip"})
    second = client.get(FEED, headers={"Accept-Encoding": "gzip"})
    assert first.data == second.data  # identical bytes: cached, not recompressed (mtime=0)
    assert app.extensions["feedsvc.feed_cache"].hits >= 2


def test_write_in_one_category_leaves_other_feeds_validators(client, factory: Factory, clock):
    factory.post("jijin", title="基金一")
    factory.post("gupiao", title="股票一")
    jijin = client.get("/feeds/jijin.rss")
    gupiao = client.get("/feeds/gupiao.atom")
    site = client.get("/feeds/all.rss")
    clock.advance(minutes=10)
    factory.post("jijin", title="基金二")
    assert client.get("/feeds/gupiao.atom").headers["ETag"] == gupiao.headers["ETag"]
    assert (
        client.get("/feeds/gupiao.atom").headers["Last-Modified"] == gupiao.headers["Last-Modified"]
    )
    changed = client.get("/feeds/jijin.rss")
    assert changed.headers["ETag"] != jijin.headers["ETag"]
    assert parse_date(changed.headers["Last-Modified"]) == (NOW + timedelta(minutes=10))
    assert client.get("/feeds/all.rss").headers["ETag"] != site.headers["ETag"]


def test_drafts_do_not_change_validators(client, factory: Factory, clock) -> None:
    factory.post(title="已发布")
    before = client.get(FEED)
    clock.advance(minutes=1)
    factory.post(title="草稿", status="draft")
    after = client.get(FEED)
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.headers["Last-Modified"] == before.headers["Last-Modified"]


def test_deleting_the_newest_post_moves_last_modified_forward(client, factory, auth, clock):
    factory.post(title="旧")
    newest = factory.post(title="新")
    before = client.get(FEED)
    clock.advance(minutes=3)
    assert client.delete(f"/api/v1/posts/{newest.id}", headers=auth).status_code == 204
    after = client.get(FEED, headers={"If-Modified-Since": before.headers["Last-Modified"]})
    assert after.status_code == 200
    assert parse_date(after.headers["Last-Modified"]) == NOW + timedelta(minutes=3)
    assert [e.title for e in parse(after.data)[0].entries] == ["旧"]


def test_other_process_never_serves_older_bytes(client, factory: Factory, settings, clock):
    """Two apps on one database stand for two gunicorn workers with their own caches."""
    factory.post(title="第一篇")
    other = create_app(settings=settings, clock=clock).test_client()
    first = other.get(FEED)
    assert [e.title for e in parse(first.data)[0].entries] == ["第一篇"]
    factory.post(title="第二篇")  # written through the first app's database handle
    second = other.get(FEED)
    assert [e.title for e in parse(second.data)[0].entries] == ["第二篇", "第一篇"]
    assert second.headers["ETag"] == client.get(FEED).headers["ETag"]
    other.application.extensions["feedsvc"].db.dispose()


def test_unknown_category_is_a_readable_404(client, factory: Factory) -> None:
    for url in ("/feeds/no-such.rss", "/feeds/no-such.atom"):
        response = client.get(url)
        assert response.status_code == 404
        assert "no-such" in response.get_data(as_text=True)
    assert client.get("/feeds/licai-fangfa.xml").status_code == 404


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_other_methods_are_405(client, feed, method: str) -> None:
    response = getattr(client, method)(FEED)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    "limit",
    ["0", "-1", "abc", "1.5", "", "99999999999", "%C2%B2", "%D9%A3", "%EF%BC%93", "+3", " 3"],
)
def test_bad_limit_is_400(client, feed, limit: str) -> None:
    response = client.get(f"{FEED}?limit={limit}")
    assert response.status_code == 400
    assert "limit must be a whole number from 1 to 100" in response.get_data(as_text=True)


def test_healthz_reports_the_database(client, settings, clock) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "writes": "ok"}
    # A database that does not answer (nothing listens on port 1 of loopback).
    down = settings.model_copy(
        update={
            "database": settings.database.model_copy(
                update={"url": "postgresql+psycopg://postgres@127.0.0.1:1/feedsvc"}
            )
        }
    )
    broken = create_app(settings=down, clock=clock).test_client()
    response = broken.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unreachable", "writes": "unknown"}
