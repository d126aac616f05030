"""/api/v1/posts: create, list (filters + cursor), show, edit, delete.

Anonymous readers see published, due posts; drafts and scheduled posts need a token.
A filter naming nothing (an unknown category or tag) matches nothing: an empty page.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response, jsonify
from sqlalchemy.orm import Session

from feedsvc.errors import NotFound, Unauthorized
from feedsvc.models import Post
from feedsvc.repo import categories as category_repo
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from feedsvc.schemas import ListQuery, PostCreate, PostListQuery, PostUpdate, parse_input
from feedsvc.services import posts as post_service
from feedsvc.web import ctx
from feedsvc.web.api import (
    current_token,
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
from feedsvc.web.api.serialize import post_json, related_json

_POST_LINKS = {
    "GetPost": follow("getPost", post_id="id"),
    "EditPost": follow("editPost", post_id="id"),
    "DeletePost": follow("deletePost", post_id="id"),
    "GetRelated": follow("getRelated", post_id="id"),
}


def _public(post: Post) -> bool:
    return post.status == "published" and post.published_at <= ctx().clock.now()


@route(
    "POST",
    "/posts",
    operation_id="createPost",
    summary="Create a post (published, draft, or scheduled by a future published_at)",
    tag="posts",
    ok=201,
    response=shapes.Post,
    body=PostCreate,
    errors=(409,),
    links=_POST_LINKS,
)
def create_post() -> tuple[Response, int, dict[str, str]]:
    require_token()
    post = post_service.create_post(ctx(), parse_input(PostCreate, json_body()))
    return jsonify(post_json(ctx(), post)), 201, {"Location": f"/api/v1/posts/{post.id}"}


@route(
    "GET",
    "/posts",
    operation_id="listPosts",
    summary="Posts, newest first; drafts and scheduled posts only with a token",
    tag="posts",
    ok=200,
    response=shapes.Page[shapes.Post],
    query=PostListQuery,
    auth="optional",
)
def list_posts() -> Response:
    authed = current_token() is not None
    args = query(PostListQuery)
    if args.status == "draft" and not authed:
        raise Unauthorized("listing drafts needs 'Authorization: Bearer <token>'")
    start = cursor_key("posts", args.cursor, (datetime, int))
    with ctx().db.read() as session:
        category = tag = None
        if args.category is not None:
            category = category_repo.get_category(session, args.category)
        if args.tag is not None:
            tag = post_repo.get_tag(session, args.tag)
        if (args.category is not None and category is None) or (
            args.tag is not None and tag is None
        ):
            return jsonify({"items": [], "next_cursor": None})
        where = post_repo.PostFilter(
            category_id=category.id if category else None,
            status=args.status,
            tag_id=tag.id if tag else None,
            visible_at=None if authed else ctx().clock.now(),
        )
        # decode() checked the shape: (an aware datetime, an int).
        sort_key = None if start is None else post_repo.SortKey(*start)  # type: ignore[arg-type]
        rows = post_repo.list_posts(session, where, limit=args.limit + 1, after=sort_key)
        return page(
            "posts",
            rows,
            args.limit,
            lambda row: (row.published_at, row.id),
            lambda row: post_json(ctx(), row),
        )


def _readable_post(session: Session, post_id: int) -> Post:
    """The post, if this caller may read it: drafts and scheduled posts need a token."""
    post = post_repo.get_post(session, post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    if not _public(post) and current_token() is None:
        raise Unauthorized("reading a draft or scheduled post needs a token")
    return post


@route(
    "GET",
    "/posts/<int:post_id>",
    operation_id="getPost",
    summary="One post; a draft or scheduled post only with a token",
    tag="posts",
    ok=200,
    response=shapes.Post,
    auth="optional",
    errors=(404,),
)
def show_post(post_id: int) -> Response:
    with ctx().db.read() as session:
        return jsonify(post_json(ctx(), _readable_post(session, post_id)))


@route(
    "GET",
    "/posts/<int:post_id>/related",
    operation_id="getRelated",
    summary="The stored 相关内容 list of a post, with scores (computed by the scheduler)",
    tag="posts",
    ok=200,
    response=shapes.Page[shapes.RelatedItem],
    query=ListQuery,
    auth="optional",
    errors=(404,),
)
def show_related(post_id: int) -> Response:
    args = query(ListQuery)
    start = cursor_key("related", args.cursor, (int,))
    now = ctx().clock.now()
    with ctx().db.read() as session:
        _readable_post(session, post_id)
        items = related_repo.related_views(session, [post_id], now).get(post_id, [])
    rows = in_order_after(items, lambda item: (item.rank,), start, args.limit)
    return page(
        "related",
        rows,
        args.limit,
        lambda item: (item.rank,),
        lambda item: related_json(ctx(), [item])[0],
    )


@route(
    "PATCH",
    "/posts/<int:post_id>",
    operation_id="editPost",
    summary="Change some fields of a post (a field left out keeps its value)",
    tag="posts",
    ok=200,
    response=shapes.Post,
    body=PostUpdate,
    errors=(404, 409),
)
def edit_post(post_id: int) -> Response:
    require_token()
    data = parse_input(PostUpdate, json_body())
    return jsonify(post_json(ctx(), post_service.update_post(ctx(), post_id, data)))


@route(
    "DELETE",
    "/posts/<int:post_id>",
    operation_id="deletePost",
    summary="Delete a post (its id is never given out again)",
    tag="posts",
    ok=204,
    response=None,
    errors=(404,),
)
def delete_post(post_id: int) -> tuple[str, int]:
    require_token()
    post_service.delete_post(ctx(), post_id)
    return "", 204
