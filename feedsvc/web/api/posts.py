"""/api/v1/posts: create, list (filters + cursor), show, edit, delete.

Anonymous readers see published, due posts; drafts and scheduled posts need a token.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from feedsvc.errors import NotFound, Unauthorized
from feedsvc.models import Post
from feedsvc.repo import categories as category_repo
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from feedsvc.schemas import PostCreate, PostUpdate, parse_input
from feedsvc.services import posts as post_service
from feedsvc.web import ctx
from feedsvc.web.api import (
    bp,
    current_token,
    decode_cursor,
    encode_cursor,
    json_body,
    page_limit,
    require_token,
)
from feedsvc.web.api.serialize import post_json, related_json


def _public(post: Post) -> bool:
    return post.status == "published" and post.published_at <= ctx().clock.now()


@bp.post("/posts")
def create_post() -> tuple[Response, int, dict[str, str]]:
    require_token()
    post = post_service.create_post(ctx(), parse_input(PostCreate, json_body()))
    return jsonify(post_json(ctx(), post)), 201, {"Location": f"/api/v1/posts/{post.id}"}


def _cursor() -> post_repo.SortKey | None:
    raw = request.args.get("cursor")
    if raw is None:
        return None
    values = decode_cursor(raw)
    try:
        when, ident = datetime.fromisoformat(values[0]), int(values[1])
    except (IndexError, TypeError, ValueError):
        raise BadRequest("cursor is not one this API gave out") from None
    if when.tzinfo is None or len(values) != 2:
        raise BadRequest("cursor is not one this API gave out")
    return post_repo.SortKey(when, ident)


@bp.get("/posts")
def list_posts() -> Response:
    authed = current_token() is not None
    status = request.args.get("status")
    if status is not None and status not in ("draft", "published"):
        raise BadRequest("status must be draft or published")
    if status == "draft" and not authed:
        raise Unauthorized("listing drafts needs 'Authorization: Bearer <token>'")
    limit, after = page_limit(), _cursor()
    with ctx().db.read() as session:
        category_id = tag_id = None
        if (slug := request.args.get("category")) is not None:
            category = category_repo.get_category(session, slug)
            if category is None:
                raise BadRequest(f"unknown category {slug!r}")
            category_id = category.id
        if (name := request.args.get("tag")) is not None:
            tag = post_repo.get_tag(session, name)
            if tag is None:
                return jsonify({"items": [], "next_cursor": None})
            tag_id = tag.id
        where = post_repo.PostFilter(
            category_id=category_id,
            status=status,
            tag_id=tag_id,
            visible_at=None if authed else ctx().clock.now(),
        )
        rows = post_repo.list_posts(session, where, limit=limit + 1, after=after)
        items = [post_json(ctx(), row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.published_at.isoformat(), last.id])
    return jsonify({"items": items, "next_cursor": next_cursor})


def _readable_post(session: Session, post_id: int) -> Post:
    """The post, if this caller may read it: drafts and scheduled posts need a token."""
    post = post_repo.get_post(session, post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    if not _public(post) and current_token() is None:
        raise Unauthorized("reading a draft or scheduled post needs a token")
    return post


@bp.get("/posts/<int:post_id>")
def show_post(post_id: int) -> Response:
    with ctx().db.read() as session:
        return jsonify(post_json(ctx(), _readable_post(session, post_id)))


@bp.get("/posts/<int:post_id>/related")
def show_related(post_id: int) -> Response:
    """The stored 相关内容 list, with scores (computed by the scheduler, never here)."""
    now = ctx().clock.now()
    with ctx().db.read() as session:
        _readable_post(session, post_id)
        items = related_repo.related_views(session, [post_id], now).get(post_id, [])
    return jsonify({"items": related_json(ctx(), items), "next_cursor": None})


@bp.patch("/posts/<int:post_id>")
def edit_post(post_id: int) -> Response:
    require_token()
    data = parse_input(PostUpdate, json_body())
    return jsonify(post_json(ctx(), post_service.update_post(ctx(), post_id, data)))


@bp.delete("/posts/<int:post_id>")
def delete_post(post_id: int) -> tuple[str, int]:
    require_token()
    post_service.delete_post(ctx(), post_id)
    return "", 204
