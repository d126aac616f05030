"""W3C WebSub §4 (discovery): with a hub configured, every feed's canonical URL (its first
page at its default length) names the hub (rel="hub") and itself (rel="self"), in the feed
(RSS atom:link, Atom link, JSON Feed 1.1 "hubs") and in an HTTP Link header (RFC 8288).

Pages past the first and ?limit= variants are no topics: they name no hub. With WebSub off,
nothing of a feed changes (the byte-exact feed tests elsewhere hold that too).

Every test runs with WebSub off, the built-in hub and an external one (the ``websub``
fixture), on every backend.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.http import parse_options_header

from feedsvc.config import load_settings
from tests.conftest import BASE_URL, overrides_for
from tests.factories import Factory
from tests.feedcheck import NS, check_json_feed, parse

pytestmark = pytest.mark.usefixtures("backend")

FORMATS = ("rss", "atom", "json")
EXTERNAL_HUB = "https://hub.example.test/"
LENGTH = 3  # feeds.default_length and 理财方法's: a feed of more posts is paged
# The three kinds of feed, each at its canonical URL; 理财方法 and the site feed are paged
# (more posts than LENGTH: their first page has a rel="next"), 基金 and 定投 fit on one page.
PAGED = ("/feeds/licai-fangfa", "/feeds/all")
ONE_PAGE = ("/feeds/jijin", "/feeds/tags/ding-tou")


@pytest.fixture(
    params=[
        pytest.param(("", None), id="off"),
        pytest.param(("builtin", f"{BASE_URL}/websub"), id="builtin"),
        pytest.param((EXTERNAL_HUB, EXTERNAL_HUB), id="external"),
    ]
)
def websub(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(the websub.hub setting, the hub URL feeds must name, None when off)."""
    value: tuple[str, str | None] = request.param
    return value


@pytest.fixture
def hub(websub: tuple[str, str | None]) -> str | None:
    return websub[1]


@pytest.fixture
def settings(db_url: str, websub: tuple[str, str | None]):  # type: ignore[no-untyped-def]
    """The conftest app, client and factory, with this websub.hub and short feeds."""
    extra = {"websub": {"hub": websub[0]}, "feeds": {"default_length": LENGTH}}
    return load_settings(overrides_for(db_url, **extra), environ={})


@pytest.fixture
def posts(factory: Factory) -> None:
    factory.category("licai-fangfa", feed_length=LENGTH)  # a category's length is its own
    for _ in range(LENGTH + 1):
        factory.post()  # 理财方法: one page and one more post
    factory.post("jijin", tags=["定投"])


def _path(url: str) -> str:
    assert url.startswith(BASE_URL), url
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _feed_links(body: bytes, fmt: str) -> dict[str, str]:
    """The feed's links by rel, as a reader parses them (feedparser; json.loads for JSON
    Feed), after the checks every emitted feed passes (tests/feedcheck.py)."""
    if fmt == "json":
        check_json_feed(body)
        feed = json.loads(body)
        links = {"self": feed["feed_url"]}
        if "next_url" in feed:
            links["next"] = feed["next_url"]
        hubs = feed.get("hubs", [])
        assert len(hubs) <= 1, hubs
        for found in hubs:
            assert found["type"] == "WebSub", found
            links["hub"] = found["url"]
        return links
    parsed, root = parse(body)  # bozo-free and well-formed, hub or not
    links = {}
    for link in parsed.feed.links:
        assert link.rel not in links, f"two links rel={link.rel!r}"
        links[link.rel] = link.href
    # lxml reads the same atom:links at feed level (RSS: every link but <link>, the alternate).
    where = "channel/atom:link" if fmt == "rss" else "atom:link"
    rels = sorted(link.get("rel") for link in root.findall(where, NS))
    assert rels == sorted(rel for rel in links if fmt == "atom" or rel != "alternate")
    return links


def _link_header(response: Any) -> dict[str, str] | None:
    """The Link header's URLs by rel (RFC 8288), or None when there is none."""
    values = response.headers.getlist("Link")
    if not values:
        return None
    assert len(values) == 1, values
    links = {}
    for part in values[0].split(","):  # our URLs carry no comma
        target, options = parse_options_header(part.strip())
        assert target.startswith("<") and target.endswith(">"), part
        assert options["rel"] not in links, values[0]
        links[options["rel"]] = target[1:-1]
    return links


@pytest.mark.usefixtures("posts")
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("feed", PAGED + ONE_PAGE)
def test_a_feeds_canonical_url_names_the_hub_and_itself(
    client, hub: str | None, feed: str, fmt: str
) -> None:
    url = f"{feed}.{fmt}"
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    links = _feed_links(response.data, fmt)
    assert links["self"] == f"{BASE_URL}{url}"
    assert links.get("hub") == hub
    assert ("next" in links) == (feed in PAGED)  # a paged feed's first page, or a whole feed
    expected = None if hub is None else {"hub": hub, "self": f"{BASE_URL}{url}"}
    assert _link_header(response) == expected
    # Served again from the cache (web/feeds.py's fast path): the same bytes and headers.
    again = client.get(url)
    assert again.data == response.data and _link_header(again) == expected
    head = client.head(url)
    assert head.status_code == 200 and not head.data
    assert _link_header(head) == expected
    assert head.headers["ETag"] == response.headers["ETag"]
    zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert _link_header(zipped) == expected


@pytest.mark.usefixtures("posts")
@pytest.mark.parametrize("fmt", FORMATS)
def test_pages_past_the_first_and_limit_variants_name_no_hub(client, fmt: str) -> None:
    first = _feed_links(client.get(f"/feeds/licai-fangfa.{fmt}").data, fmt)
    others = [
        _path(first["next"]),  # ?before=: the second page
        f"/feeds/licai-fangfa.{fmt}?limit=2",  # paged too
        f"/feeds/licai-fangfa.{fmt}?limit={LENGTH}",  # the default length, by another URL
        f"/feeds/tags/ding-tou.{fmt}?limit=10",
    ]
    for url in others:
        response = client.get(url)
        assert response.status_code == 200, (url, response.get_data(as_text=True))
        links = _feed_links(response.data, fmt)
        assert "hub" not in links, url
        assert links["self"] == f"{BASE_URL}{url}"  # everything else as it was
        assert _link_header(response) is None, url
        assert _link_header(client.head(url)) is None, url
    assert "next" in _feed_links(client.get(others[1]).data, fmt)


@pytest.mark.usefixtures("posts")
def test_opml_and_pages_carry_no_link_header(client) -> None:
    for url in ("/feeds.opml", "/", "/categories/licai-fangfa", "/tags/ding-tou"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert _link_header(response) is None, url


@pytest.mark.usefixtures("posts")
@pytest.mark.parametrize("fmt", FORMATS)
def test_validators_with_the_hub(client, factory: Factory, hub: str | None, fmt: str) -> None:
    url = f"/feeds/licai-fangfa.{fmt}"
    first = client.get(url)
    etag = first.headers["ETag"]
    # Unchanged: 304, from the view and from the fast path alike (a 304 needs no Link).
    for _ in range(2):
        unchanged = client.get(url, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and not unchanged.data
        assert unchanged.headers["ETag"] == etag
    assert client.head(url, headers={"If-None-Match": etag}).status_code == 304
    # A write: a new ETag, a 200 for the old one, and the hub named still.
    factory.post(title="新的一篇：先记账再预算")
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert _feed_links(changed.data, fmt).get("hub") == hub
    expected = None if hub is None else {"hub": hub, "self": f"{BASE_URL}{url}"}
    assert _link_header(changed) == expected
    again = client.get(url, headers={"If-None-Match": changed.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.usefixtures("posts")
@pytest.mark.parametrize("websub", [("", None)], ids=["off"])
def test_with_websub_off_no_feed_names_a_hub(client) -> None:
    for feed in PAGED + ONE_PAGE:
        for fmt in FORMATS:
            response = client.get(f"{feed}.{fmt}")
            assert b"hub" not in response.data, (feed, fmt)
            assert "Link" not in response.headers


@pytest.mark.parametrize(
    "hubs", [[], {}, [{"url": EXTERNAL_HUB}], [{"type": "WebSub", "url": "/websub"}]]
)
def test_the_json_feed_check_refuses_malformed_hubs(hubs: Any) -> None:
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "理财", "items": []}
    with pytest.raises(AssertionError, match="hubs"):
        check_json_feed(json.dumps({**feed, "hubs": hubs}).encode())
