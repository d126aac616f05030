"""/api/v1/categories and the categories.toml sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc.services.categories import sync_categories
from tests.conftest import BASE_URL
from tests.factories import Factory
from tests.feedcheck import parse

pytestmark = pytest.mark.usefixtures("backend")


def test_create_list_show(client, auth) -> None:
    body = {
        "slug": "baoxian",
        "name": "保险",
        "description": "保险配置。",
        "position": 4,
        "feed_length": 10,
    }
    created = client.post("/api/v1/categories", json=body, headers=auth)
    assert created.status_code == 201
    assert created.headers["Location"] == "/api/v1/categories/baoxian"
    assert created.json["feeds"]["rss"] == f"{BASE_URL}/feeds/baoxian.rss"
    client.post(
        "/api/v1/categories", json={"slug": "jijin", "name": "基金", "position": 1}, headers=auth
    )
    listing = client.get("/api/v1/categories").json
    assert [c["slug"] for c in listing["items"]] == ["jijin", "baoxian"]  # by position
    assert listing["next_cursor"] is None
    shown = client.get("/api/v1/categories/baoxian").json
    assert shown["name"] == "保险" and shown["feed_length"] == 10 and shown["language"] == "zh-CN"
    assert client.get("/api/v1/categories/nope").status_code == 404


def test_patch_changes_the_feed(client, factory: Factory, auth, clock) -> None:
    factory.post()
    before = client.get("/feeds/licai-fangfa.rss")
    clock.advance(minutes=1)
    response = client.patch(
        "/api/v1/categories/licai-fangfa",
        json={"name": "理财技巧", "description": "新描述"},
        headers=auth,
    )
    assert response.status_code == 200 and response.json["name"] == "理财技巧"
    after = client.get("/feeds/licai-fangfa.rss")
    assert after.headers["ETag"] != before.headers["ETag"]
    parsed, _ = parse(after.data)
    assert parsed.feed.title.startswith("理财技巧") and parsed.feed.subtitle == "新描述"
    site, _ = parse(client.get("/feeds/all.rss").data)
    assert site.entries[0].tags[0].term == "理财技巧"


def test_delete_empty_category(client, factory: Factory, auth) -> None:
    factory.category("gupiao")
    assert client.delete("/api/v1/categories/gupiao", headers=auth).status_code == 204
    assert client.get("/feeds/gupiao.rss").status_code == 404
    assert client.delete("/api/v1/categories/gupiao", headers=auth).status_code == 404


def test_delete_moving_posts(client, factory: Factory, auth) -> None:
    post = factory.post("gupiao")
    factory.category("jijin")
    response = client.delete("/api/v1/categories/gupiao?move_to=jijin", headers=auth)
    assert response.status_code == 204
    assert client.get(f"/api/v1/posts/{post.id}").json["category"] == "jijin"
    parsed, _ = parse(client.get("/feeds/jijin.atom").data)
    assert [e.id for e in parsed.entries] == [post.guid]


def test_sync_adds_and_updates_but_never_deletes(ctx, factory: Factory, tmp_path: Path) -> None:
    factory.post("gupiao")  # a category not in the file keeps its posts
    path = tmp_path / "categories.toml"
    path.write_text(
        '[[categories]]\nslug = "jijin"\nname = "基金"\nposition = 2\n\n'
        '[[categories]]\nslug = "gupiao"\nname = "股票投资"\nposition = 3\n',
        encoding="utf-8",
    )
    kept = sync_categories(ctx, path)  # without overwrite: added, and what differs kept
    assert (kept.added, kept.updated, kept.unchanged, kept.differs) == (1, 0, 0, 1)
    report = sync_categories(ctx, path, overwrite=True)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    assert report.changes == ["updated category gupiao: name, description, position"]
    again = sync_categories(ctx, path, overwrite=True)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert factory.counts()["posts"] == 1


def test_shipped_categories_file_is_valid(ctx) -> None:
    from feedsvc.services.categories import read_categories_file
    from feedsvc.services.samples import SAMPLE_CATEGORIES

    categories = read_categories_file(SAMPLE_CATEGORIES)
    assert len(categories) >= 4
    assert {"理财方法", "基金", "股票", "保险"} <= {c.name for c in categories}
    assert all(c.slug.isascii() for c in categories)


# -- removing a category that has upstream sources ---------------------------------------------


def add_source(client, auth, category: str, url: str) -> int:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/sources", json={"url": url, "category": category}, headers=auth)
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def test_delete_refuses_while_the_category_has_sources(client, factory: Factory, auth) -> None:
    factory.category("gupiao")
    source_id = add_source(client, auth, "gupiao", "https://上游.example/股票.xml")
    before = factory.snapshot()
    response = client.delete("/api/v1/categories/gupiao", headers=auth)
    assert response.status_code == 409
    assert response.json["error"]["message"] == (
        "category 'gupiao' still has 1 upstream sources; move them to another category "
        "(move_to) or remove them first"
    )
    assert factory.snapshot() == before
    assert client.get(f"/api/v1/sources/{source_id}", headers=auth).json["category"] == "gupiao"
    factory.post("gupiao")
    both = client.delete("/api/v1/categories/gupiao", headers=auth)
    assert both.status_code == 409
    assert "still has 1 posts and 1 upstream sources" in both.json["error"]["message"]


def test_delete_moves_sources_with_posts(client, factory: Factory, auth) -> None:
    post = factory.post("gupiao")
    factory.category("jijin")
    source_id = add_source(client, auth, "gupiao", "https://上游.example/股票.xml")
    response = client.delete("/api/v1/categories/gupiao?move_to=jijin", headers=auth)
    assert response.status_code == 204
    assert client.get(f"/api/v1/sources/{source_id}", headers=auth).json["category"] == "jijin"
    assert client.get(f"/api/v1/posts/{post.id}").json["category"] == "jijin"
    assert client.get("/api/v1/categories/gupiao").status_code == 404


def test_cli_remove_with_sources(runner, client, factory: Factory, auth) -> None:
    from feedsvc.cli import cli

    factory.category("gupiao")
    factory.category("jijin")
    source_id = add_source(client, auth, "gupiao", "https://上游.example/股票.xml")
    refused = runner.invoke(cli, ["category", "remove", "gupiao"])
    assert refused.exit_code == 1
    assert refused.output == (
        "feedsvc: error: category 'gupiao' still has 1 upstream sources; move them to another "
        "category (move_to) or remove them first\n"
    )
    moved = runner.invoke(cli, ["category", "remove", "gupiao", "--move-to", "jijin"])
    assert moved.exit_code == 0, moved.output
    assert moved.output == "removed category gupiao (1 sources moved to jijin)\n"
    assert client.get(f"/api/v1/sources/{source_id}", headers=auth).json["category"] == "jijin"


def test_openapi_describes_the_move(client) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    operation = paths["/api/v1/categories/{slug}"]["delete"]
    assert "upstream sources move" in operation["summary"]
    (move_to,) = [p for p in operation["parameters"] if p["name"] == "move_to"]
    assert "posts and sources" in move_to["schema"]["anyOf"][0]["description"]
