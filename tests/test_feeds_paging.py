"""RFC 5005 §3 paged feeds: first/next/previous links, ?before= keyset cursors, per-page
validators, and a walk along "next" that sees every post once while posts keep coming."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from feedsvc import cursor
from feedsvc.feeds.document import EntryDocument, FeedDocument, PageLinks
from feedsvc.feeds.render import EntryCache, render_atom, render_cached, render_json, render_rss
from tests.conftest import BASE_URL, NOW
from tests.factories import Factory
from tests.feedcheck import NS, check_json_feed, parse

pytestmark = pytest.mark.usefixtures("backend")

FEED = "/feeds/licai-fangfa"


def _path(url: str) -> str:
    assert url.startswith(BASE_URL), url
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _page(client: Any, url: str, fmt: str) -> tuple[list[str], dict[str, str]]:
    """(the entries' ids, the page links by rel) of one page, parsed as a reader would."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.get_data(as_text=True))
    if fmt == "json":
        feed = check_json_feed(response.data)
        links = {"self": feed["feed_url"]}
        if "next_url" in feed:
            links["next"] = feed["next_url"]
        return [item["id"] for item in feed["items"]], links
    parsed, root = parse(response.data)
    path = "channel/atom:link" if fmt == "rss" else "atom:link"
    links = {link.get("rel"): link.get("href") for link in root.findall(path, NS)}
    return [entry.id for entry in parsed.entries], links


def _posts(factory: Factory, count: int, **fields: Any) -> list[str]:
    """Guids, newest first."""
    return [factory.post(**fields).guid for _ in range(count)][::-1]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_pages_and_their_links(client, factory: Factory, fmt: str) -> None:
    guids = _posts(factory, 7)
    first_url = f"{BASE_URL}{FEED}.{fmt}?limit=3"
    ids, links = _page(client, f"{FEED}.{fmt}?limit=3", fmt)
    assert ids == guids[:3]
    assert links["self"] == first_url and links["first"] == first_url
    assert "previous" not in links
    second_url = links["next"]
    assert second_url.startswith(f"{BASE_URL}{FEED}.{fmt}?before=")
    assert second_url.endswith("&limit=3")

    ids, links = _page(client, _path(second_url), fmt)
    assert ids == guids[3:6]
    assert links["self"] == second_url and links["first"] == first_url
    assert links["previous"] == first_url
    third_url = links["next"]

    ids, links = _page(client, _path(third_url), fmt)
    assert ids == guids[6:]
    assert links["self"] == third_url and links["first"] == first_url
    assert links["previous"] == second_url
    assert "next" not in links


def test_a_feed_on_one_page_has_no_page_links(client, factory: Factory) -> None:
    _posts(factory, 3)
    for fmt in ("rss", "atom"):
        _, links = _page(client, f"{FEED}.{fmt}", fmt)
        assert set(links) == ({"self", "alternate"} if fmt == "atom" else {"self"})
    assert "next_url" not in check_json_feed(client.get(f"{FEED}.json").data)


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_following_next_sees_every_post_once_while_posts_arrive(
    client, factory: Factory, clock, fmt: str
) -> None:
    guids = _posts(factory, 11)
    seen: list[str] = []
    url: str | None = f"{FEED}.{fmt}?limit=4"
    pages = 0
    while url is not None:
        ids, links = _page(client, url, fmt)
        seen += ids
        pages += 1
        # Meanwhile new posts are published, and the feed's version moves on.
        clock.advance(minutes=1)
        factory.post(title=f"途中发布的第{pages}篇", published_at=clock.now())
        url = _path(links["next"]) if "next" in links else None
    assert pages == 3
    assert seen == guids  # each once, in order, none of those published during the walk


def test_every_page_has_its_own_validators(client, factory: Factory) -> None:
    _posts(factory, 5)
    first = client.get(f"{FEED}.rss?limit=2")
    _, links = _page(client, f"{FEED}.rss?limit=2", "rss")
    second_path = _path(links["next"])
    second = client.get(second_path)
    assert second.headers["ETag"] != first.headers["ETag"]
    assert (
        client.get(second_path, headers={"If-None-Match": second.headers["ETag"]}).status_code
        == 304
    )
    assert (
        client.get(second_path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 200
    )
    head = client.head(second_path)
    assert head.status_code == 200 and head.headers["ETag"] == second.headers["ETag"]
    zipped = client.get(second_path, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"


def test_json_feed_next_url_and_tag_feeds_page_too(client, factory: Factory) -> None:
    guids = _posts(factory, 5, tags=["定投"])
    ids, links = _page(client, "/feeds/tags/ding-tou.json?limit=2", "json")
    assert ids == guids[:2]
    ids, links = _page(client, _path(links["next"]), "json")
    assert ids == guids[2:4]
    ids, links = _page(client, _path(links["next"]), "json")
    assert ids == guids[4:] and "next" not in links
    atom_ids, atom_links = _page(client, "/feeds/tags/ding-tou.atom?limit=2", "atom")
    assert atom_ids == guids[:2] and atom_links["next"].startswith(f"{BASE_URL}/feeds/tags/")
    # A tag named by its name redirects with its page.
    named = client.get(f"/feeds/tags/%E5%AE%9A%E6%8A%95.json?{urlsplit(links['self']).query}")
    assert named.status_code == 301
    assert named.headers["Location"] == _path(links["self"])


def test_the_site_feed_pages_across_categories(client, factory: Factory) -> None:
    posts = [factory.post(category).guid for category in ("jijin", "gupiao", "licai-fangfa")]
    ids, links = _page(client, "/feeds/all.rss?limit=2", "rss")
    assert ids == posts[::-1][:2]
    ids, _ = _page(client, _path(links["next"]), "rss")
    assert ids == posts[::-1][2:]


def test_a_page_past_the_end_is_empty_and_valid(client, factory: Factory) -> None:
    _posts(factory, 2)
    old = cursor.encode("feed", (datetime(2000, 1, 1, tzinfo=UTC), 1))
    ids, links = _page(client, f"{FEED}.atom?before={old}", "atom")
    assert ids == [] and "next" not in links and links["previous"] == f"{BASE_URL}{FEED}.atom"


@pytest.mark.parametrize(
    "before",
    [
        "",
        "abc",
        "x.y",
        "%00",
        "%E9%95%BF.abc",
        "A" * 600,
        "{tampered}",
        "{other_kind}",
        "{forged_shape}",
    ],
)
def test_a_cursor_we_did_not_give_out_is_a_400(client, factory: Factory, before: str) -> None:
    _posts(factory, 3)
    _, links = _page(client, f"{FEED}.rss?limit=1", "rss")
    good = urlsplit(links["next"]).query.split("&")[0].removeprefix("before=")
    body, _, tag = good.partition(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    before = before.format(
        tampered=f"{flipped}.{tag}",
        other_kind=cursor.encode("posts", (NOW, 1)),
        forged_shape=cursor.encode("feed", ("x", 1)),
    )
    for url in (f"{FEED}.rss", f"{FEED}.json", "/feeds/all.atom", "/feeds/tags/chu-xu.rss"):
        response = client.get(f"{url}?before={before}")
        assert response.status_code == 400, (url, before)
        if "%00" not in before:
            assert "before is not a page cursor" in response.get_data(as_text=True)


def test_rendered_pages_are_the_renderers_bytes() -> None:
    """render_cached splices cached entries into the frame: page links must not move them."""
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    entry = EntryDocument(
        guid="tag:x.test,2026-01-01:post/1",
        title="第一篇",
        link="https://x.test/posts/1",
        author="林晓",
        summary="摘要",
        content_html="<p>正文</p>",
        published=moment,
        updated=moment,
        category_name="理财方法",
        category_url="https://x.test/categories/licai",
        tags=("定投",),
    )
    doc = FeedDocument(
        feed_id="tag:x.test,2026-01-01:feeds/licai",
        title="理财",
        subtitle="理财方法",
        link="https://x.test/categories/licai",
        self_url="https://x.test/feeds/licai.rss?before=a.b",
        language="zh-CN",
        author="编辑部",
        updated=moment + timedelta(days=1),
        entries=(entry, replace(entry, guid="tag:x.test,2026-01-01:post/2")),
        pages=PageLinks(
            first="https://x.test/feeds/licai.rss",
            next="https://x.test/feeds/licai.rss?before=c.d&limit=2",
            previous="https://x.test/feeds/licai.rss",
        ),
    )
    cache = EntryCache(1024 * 1024)
    for fmt, render in (("rss", render_rss), ("atom", render_atom), ("json", render_json)):
        assert render_cached(doc, fmt, cache) == render(doc)
        assert render_cached(doc, fmt, cache) == render(doc)  # warm


@pytest.mark.parametrize(
    "position",
    [
        (datetime(1, 1, 1, tzinfo=UTC), 0),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), 2147483647),
        (datetime(1970, 1, 1, tzinfo=UTC), 1),
    ],
)
def test_a_forged_cursor_at_the_edges_is_a_plain_page(client, factory: Factory, position) -> None:
    """The cursor's key is no secret: a forged one still names only a position in the list."""
    _posts(factory, 2)
    forged = cursor.encode("feed", position)
    for fmt in ("rss", "atom", "json"):
        response = client.get(f"{FEED}.{fmt}?before={forged}")
        assert response.status_code == 200, (fmt, position)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_next_to_the_last_page_and_back_through_previous(
    client, factory: Factory, fmt: str
) -> None:
    guids = _posts(factory, 10)
    forward: list[list[str]] = []
    url: str | None = f"{FEED}.{fmt}?limit=3"
    while url is not None:
        ids, links = _page(client, url, fmt)
        forward.append(ids)
        last = links
        url = _path(links["next"]) if "next" in links else None
    assert [guid for ids in forward for guid in ids] == guids and len(forward) == 4
    backward: list[list[str]] = []
    url = _path(last["previous"])
    while url is not None:
        ids, links = _page(client, url, fmt)
        backward.append(ids)
        url = _path(links["previous"]) if "previous" in links else None
    assert backward == forward[-2::-1]  # every page again, newest page last
