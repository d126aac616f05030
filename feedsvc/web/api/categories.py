"""/api/v1/categories: list, create, show, edit, delete (moving posts with ?move_to=)."""

from __future__ import annotations

from flask import Response, jsonify, request

from feedsvc.errors import NotFound
from feedsvc.repo import categories as category_repo
from feedsvc.schemas import CategoryCreate, CategoryUpdate, parse_input
from feedsvc.services import categories as category_service
from feedsvc.web import ctx
from feedsvc.web.api import bp, json_body, require_token
from feedsvc.web.api.serialize import category_json


@bp.get("/categories")
def list_categories() -> Response:
    with ctx().db.read() as session:
        rows = category_repo.list_categories(session)
        items = [category_json(ctx(), row) for row in rows]
    # Categories are few and ordered by position: one page, no cursor.
    return jsonify({"items": items, "next_cursor": None})


@bp.post("/categories")
def create_category() -> tuple[Response, int, dict[str, str]]:
    require_token()
    data = parse_input(CategoryCreate, json_body())
    category = category_service.create_category(ctx(), data)
    body = category_json(ctx(), category)
    return jsonify(body), 201, {"Location": f"/api/v1/categories/{category.slug}"}


@bp.get("/categories/<slug>")
def show_category(slug: str) -> Response:
    with ctx().db.read() as session:
        category = category_repo.get_category(session, slug)
        if category is None:
            raise NotFound(f"no category {slug!r}")
        return jsonify(category_json(ctx(), category))


@bp.patch("/categories/<slug>")
def edit_category(slug: str) -> Response:
    require_token()
    data = parse_input(CategoryUpdate, json_body())
    return jsonify(category_json(ctx(), category_service.update_category(ctx(), slug, data)))


@bp.delete("/categories/<slug>")
def delete_category(slug: str) -> tuple[str, int]:
    require_token()
    category_service.delete_category(ctx(), slug, move_to=request.args.get("move_to"))
    return "", 204
