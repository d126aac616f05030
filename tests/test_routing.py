"""The app-wide guards: NUL and out-of-range ids match no route, on both backends."""

from __future__ import annotations

import pytest

from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")


@pytest.mark.parametrize(
    "path", ["/feeds/a%00b.rss", "/feeds/a%00b.atom", "/categories/a%00b", "/posts/a%00b"]
)
def test_nul_in_a_page_or_feed_path_is_a_404_page(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/posts/9223372036854775808",
        "/api/v1/posts/2147483648",
        "/api/v1/posts/0",
        "/api/v1/posts/%D9%A3",  # ٣, an Arabic-Indic three
        "/api/v1/posts/%C2%B2",  # ², a superscript two
        "/api/v1/sources/99999999999999999999",
        "/api/v1/categories/a%00b",
    ],
)
def test_out_of_range_or_non_ascii_ids_are_json_404s(client, auth, path: str) -> None:
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(path, headers=auth, json={})
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"]["code"] == "not_found"
    related = client.get(f"{path}/related", headers=auth)
    assert related.status_code == 404 or path.startswith(("/api/v1/sources", "/api/v1/categories"))


def test_the_largest_id_is_a_plain_404(client, auth) -> None:
    response = client.get("/api/v1/posts/2147483647", headers=auth)
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == "no post with id 2147483647"


@pytest.mark.parametrize(
    "query", ["tag=%00", "category=a%00", "cursor=%00", "limit=1%00", "a%00=1", "status=%00"]
)
def test_nul_in_the_query_string_is_a_400_and_changes_nothing(
    client, auth, factory: Factory, query: str
) -> None:
    factory.post()
    before = factory.snapshot()
    for path in ("/api/v1/posts", "/feeds/licai-fangfa.rss", "/", "/api/v1/categories"):
        response = client.get(f"{path}?{query}", headers=auth)
        assert response.status_code == 400, (path, query)
    response = client.delete("/api/v1/categories/licai-fangfa?move_to=%00", headers=auth)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("the query string must not")
    assert factory.snapshot() == before


def test_bodiless_responses_carry_no_content_type(client, auth, factory: Factory) -> None:
    post = factory.post()
    options = client.options("/api/v1/posts")
    assert options.status_code == 200 and "Content-Type" not in options.headers
    assert "GET" in options.headers["Allow"]
    deleted = client.delete(f"/api/v1/posts/{post.id}", headers=auth)
    assert deleted.status_code == 204 and "Content-Type" not in deleted.headers
    feed = client.get("/feeds/licai-fangfa.rss")
    again = client.get("/feeds/licai-fangfa.rss", headers={"If-None-Match": feed.headers["ETag"]})
    assert again.status_code == 304 and "Content-Type" not in again.headers


def test_an_unknown_category_page_is_a_404_page(client, factory: Factory) -> None:
    factory.category("jijin")
    response = client.get("/categories/%E6%B2%A1%E6%9C%89")  # /categories/没有
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    # The site's own layout (stylesheet, a way home), the reason and the details, escaped.
    assert "<h1>404 页面不存在</h1>" in page and "There is no category &#39;没有&#39;." in page
    assert "/static/site.css?v=" in page and ">回到首页</a>" in page
    assert client.get("/categories/jijin").status_code == 200
