"""/api/v1/categories: list, create, show, edit, delete (moving posts and sources: ?move_to=)."""

from __future__ import annotations

from flask import Response, jsonify

from feedsvc.errors import NotFound
from feedsvc.repo import categories as category_repo
from feedsvc.schemas import (
    CategoryCreate,
    CategoryDeleteQuery,
    CategoryUpdate,
    ListQuery,
    parse_input,
)
from feedsvc.services import categories as category_service
from feedsvc.web import ctx
from feedsvc.web.api import (
    cursor_key,
    in_order_after,
    json_body,
    page,
    query,
    require_token,
    route,
)
from feedsvc.web.api import responses as shapes
from feedsvc.web.api.contract import follow
from feedsvc.web.api.serialize import category_json

_CATEGORY_LINKS = {
    "GetCategory": follow("getCategory", slug="slug"),
    "EditCategory": follow("editCategory", slug="slug"),
    "DeleteCategory": follow("deleteCategory", slug="slug"),
}


@route(
    "GET",
    "/categories",
    operation_id="listCategories",
    summary="Categories in their position order",
    tag="categories",
    ok=200,
    response=shapes.Page[shapes.Category],
    query=ListQuery,
    auth="optional",
)
def list_categories() -> Response:
    args = query(ListQuery)
    start = cursor_key("categories", args.cursor, (int, str))
    with ctx().db.read() as session:
        # Categories are few: ordered by (position, slug) in SQL, paged here.
        every = category_repo.list_categories(session)
        rows = in_order_after(every, lambda row: (row.position, row.slug), start, args.limit)
        return page(
            "categories",
            rows,
            args.limit,
            lambda row: (row.position, row.slug),
            lambda row: category_json(ctx(), row),
        )


@route(
    "POST",
    "/categories",
    operation_id="createCategory",
    summary="Create a category (its slug is its feed's URL, fixed for ever)",
    tag="categories",
    ok=201,
    response=shapes.Category,
    body=CategoryCreate,
    errors=(409,),
    links=_CATEGORY_LINKS,
)
def create_category() -> tuple[Response, int, dict[str, str]]:
    require_token()
    data = parse_input(CategoryCreate, json_body())
    category = category_service.create_category(ctx(), data)
    body = category_json(ctx(), category)
    return jsonify(body), 201, {"Location": f"/api/v1/categories/{category.slug}"}


@route(
    "GET",
    "/categories/<slug>",
    operation_id="getCategory",
    summary="One category",
    tag="categories",
    ok=200,
    response=shapes.Category,
    auth="optional",
    errors=(404,),
)
def show_category(slug: str) -> Response:
    with ctx().db.read() as session:
        category = category_repo.get_category(session, slug)
        if category is None:
            raise NotFound(f"no category {slug!r}")
        return jsonify(category_json(ctx(), category))


@route(
    "PATCH",
    "/categories/<slug>",
    operation_id="editCategory",
    summary="Change some fields of a category (the slug never changes)",
    tag="categories",
    ok=200,
    response=shapes.Category,
    body=CategoryUpdate,
    errors=(404,),
)
def edit_category(slug: str) -> Response:
    require_token()
    data = parse_input(CategoryUpdate, json_body())
    return jsonify(category_json(ctx(), category_service.update_category(ctx(), slug, data)))


@route(
    "DELETE",
    "/categories/<slug>",
    operation_id="deleteCategory",
    summary=(
        "Delete a category; its posts and upstream sources move with ?move_to= "
        "(409 while it has either and no move_to: nothing is deleted with it)"
    ),
    tag="categories",
    ok=204,
    response=None,
    query=CategoryDeleteQuery,
    errors=(404, 409, 422),
)
def delete_category(slug: str) -> tuple[str, int]:
    require_token()
    move_to = query(CategoryDeleteQuery).move_to
    category_service.delete_category(ctx(), slug, move_to=move_to)
    return "", 204
