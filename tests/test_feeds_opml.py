"""/feeds.opml: an OPML 2.0 subscription list of the site feed and every category's feed."""

from __future__ import annotations

import gzip
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from lxml import etree
from werkzeug.http import parse_date

from tests.conftest import BASE_URL, NOW
from tests.factories import Factory
from tests.feedcheck import parse

pytestmark = pytest.mark.usefixtures("backend")

OPML = "/feeds.opml"


def _opml(client: Any) -> etree._Element:
    response = client.get(OPML)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/x-opml; charset=utf-8"
    root = etree.fromstring(response.data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    return root


def test_lists_the_site_and_every_category(client, factory: Factory) -> None:
    factory.category("jijin", position=1)
    factory.category("licai-fangfa", position=2)
    factory.category("gupiao", position=1)
    factory.post("jijin", title="基金一")
    root = _opml(client)
    assert root.findtext("head/title") == "测试理财站"
    assert root.findtext("head/ownerName") == "测试编辑部"
    assert root.findtext("head/docs") == "http://opml.org/spec2.opml"
    modified = parsedate_to_datetime(root.findtext("head/dateModified"))
    assert modified == NOW  # the categories were made at NOW (the frozen clock)
    outlines = root.findall("body/outline")
    assert [(o.get("text"), o.get("title")) for o in outlines] == [
        ("测试理财站", "测试理财站"),
        ("股票", "股票"),  # the site's order: by position, then slug
        ("基金", "基金"),
        ("理财方法", "理财方法"),
    ]
    assert [(o.get("xmlUrl"), o.get("htmlUrl")) for o in outlines] == [
        (f"{BASE_URL}/feeds/all.rss", f"{BASE_URL}/"),
        (f"{BASE_URL}/feeds/gupiao.rss", f"{BASE_URL}/categories/gupiao"),
        (f"{BASE_URL}/feeds/jijin.rss", f"{BASE_URL}/categories/jijin"),
        (f"{BASE_URL}/feeds/licai-fangfa.rss", f"{BASE_URL}/categories/licai-fangfa"),
    ]
    assert all(o.get("type") == "rss" for o in outlines)
    assert outlines[2].get("description") == "指数基金、债券基金与定投。"
    assert outlines[2].get("language") == "zh-CN"
    # Every feed it lists is there, and parses.
    for outline in outlines:
        url = urlsplit(outline.get("xmlUrl"))
        response = client.get(url.path)
        assert response.status_code == 200, url.path
        parse(response.data)


def test_names_are_escaped(client, factory: Factory) -> None:
    name = "理财<script>\"引号\"</script> & '单引号' 「书名」"
    factory.category("licai-fangfa", name=name, description="收益 < 3% & 风险 > 0\x00")
    (_, outline) = _opml(client).findall("body/outline")
    assert outline.get("text") == name and outline.get("title") == name
    assert outline.get("description") == "收益 < 3% & 风险 > 0"


def test_validators_304_head_gzip(client, factory: Factory, clock, auth) -> None:
    factory.category("jijin")
    first = client.get(OPML)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert parse_date(last_modified) == NOW
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    assert client.get(OPML, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(OPML, headers={"If-Modified-Since": last_modified}).status_code == 304
    head = client.head(OPML)
    assert head.status_code == 200 and head.data == b"" and head.headers["ETag"] == etag
    zipped = client.get(OPML, headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(zipped.data) == first.data

    clock.advance(minutes=5)  # a post changes the feeds, not the list of them
    factory.post("jijin")
    again = client.get(OPML, headers={"If-None-Match": etag})
    assert again.status_code == 304

    clock.advance(minutes=5)  # a new category: a new list
    factory.category("gupiao")
    added = client.get(OPML, headers={"If-None-Match": etag})
    assert added.status_code == 200 and added.headers["ETag"] != etag
    assert parse_date(added.headers["Last-Modified"]) == NOW + timedelta(minutes=10)

    clock.advance(minutes=5)  # a rename
    renamed = client.patch("/api/v1/categories/gupiao", json={"name": "A股"}, headers=auth)
    assert renamed.status_code == 200
    root = _opml(client)
    texts = {o.get("xmlUrl"): o.get("text") for o in root.findall("body/outline")}
    assert texts[f"{BASE_URL}/feeds/gupiao.rss"] == "A股"
    assert parsedate_to_datetime(root.findtext("head/dateModified")) == NOW + timedelta(minutes=15)

    clock.advance(minutes=5)  # a removal
    assert client.delete("/api/v1/categories/gupiao", headers=auth).status_code == 204
    removed = client.get(OPML)
    assert parse_date(removed.headers["Last-Modified"]) == NOW + timedelta(minutes=20)
    assert len(etree.fromstring(removed.data).findall("body/outline")) == 2


def test_no_categories_is_a_valid_list(client) -> None:
    root = _opml(client)
    assert [o.get("xmlUrl") for o in root.findall("body/outline")] == [f"{BASE_URL}/feeds/all.rss"]
    assert (
        client.get(root.findall("body/outline")[0].get("xmlUrl")[len(BASE_URL) :]).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/feeds.opml?x=%00", 400),
        ("/feeds.opml/", 404),
        ("/feeds.opml.rss", 404),
        ("/feeds/all.opml", 404),
        ("/feeds.OPML", 404),
        ("/feeds.opml?limit=99999999999999999999", 200),  # no parameters: ignored
    ],
)
def test_hostile_requests(client, path: str, status: int) -> None:
    assert client.get(path).status_code == status


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_other_methods_are_405(client, method: str) -> None:
    assert getattr(client, method)(OPML).status_code == 405
