"""The JSON API under /api/v1: request helpers shared by its modules, and its contract.

Auth is one rule everywhere: a request without a token is anonymous (public reads work, the
rest is a 401); a request with a wrong, malformed or revoked token is a 401 on every call,
public reads included, so a client learns at once that its token is bad.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from feedsvc import __version__, cursor
from feedsvc.errors import Unauthorized
from feedsvc.models import ApiToken
from feedsvc.schemas import parse_query
from feedsvc.services.tokens import authenticate
from feedsvc.web import ctx
from feedsvc.web.api.contract import openapi_document, openapi_path, operation

bp = Blueprint("api", __name__, url_prefix="/api/v1")

Q = TypeVar("Q", bound=BaseModel)
T = TypeVar("T")
View = TypeVar("View", bound=Callable[..., Any])


def route(method: str, rule: str, **spec: Any) -> Callable[[View], View]:
    """Register a view with Flask and declare it in the OpenAPI contract: one method, one path."""

    def register(view: View) -> View:
        bp.add_url_rule(rule, view_func=view, methods=[method])
        operation(method, openapi_path(f"{bp.url_prefix}{rule}"), **spec)
        return view

    return register


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@bp.before_request
def _check_token() -> None:
    g.api_token = None
    if not request.headers.get("Authorization"):
        return
    token = bearer_token()
    if token is None:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    row = authenticate(ctx(), token)
    if row is None:
        raise Unauthorized("the token is unknown or has been revoked")
    g.api_token = row


def current_token() -> ApiToken | None:
    """The caller's live token (checked before the view ran), None when anonymous."""
    token: ApiToken | None = g.get("api_token")
    return token


def require_token() -> ApiToken:
    row = current_token()
    if row is None:
        raise Unauthorized(
            "this request needs 'Authorization: Bearer <token>' (feedsvc token create)"
        )
    return row


def json_body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as JSON with 'Content-Type: application/json'")
    # Read to the end: a chunked body has no Content-Length, and Werkzeug's stream raises 413
    # only when a read goes past http.max_request_bytes (get_data() would truncate silently).
    chunks = []
    while chunk := request.stream.read(65536):
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def query(model: type[Q]) -> Q:
    """The query string read into ``model`` (the first value of a repeated key): 400 if bad."""
    return parse_query(model, request.args.to_dict())


def page(
    kind: str,
    rows: Sequence[T],
    limit: int,
    key: Callable[[T], Sequence[int | str | datetime]],
    render: Callable[[T], dict[str, Any]],
) -> Response:
    """One page of a list: ``rows`` holds up to limit + 1 items, the extra one means "more"."""
    items = [render(row) for row in rows[:limit]]
    next_cursor = cursor.encode(kind, key(rows[limit - 1])) if len(rows) > limit else None
    return jsonify({"items": items, "next_cursor": next_cursor})


def cursor_key(kind: str, raw: str | None, shape: cursor.Shape) -> cursor.Key | None:
    """The sort key a ?cursor= carries (None: the first page); a bad cursor is a 400."""
    return None if raw is None else cursor.decode(kind, raw, shape)


def in_order_after(
    rows: Sequence[T],
    key: Callable[[T], tuple[Any, ...]],
    start: tuple[Any, ...] | None,
    limit: int,
) -> list[T]:
    """For short lists kept in memory (categories, jobs, a related list): rows past ``start``."""
    return [row for row in rows if start is None or key(row) > start][: limit + 1]


@bp.get("/openapi.json")
def openapi() -> Response:
    document = current_app.extensions.get("feedsvc.openapi")
    if document is None:
        document = openapi_document(__version__, max_feed_length=ctx().settings.feeds.max_length)
        current_app.extensions["feedsvc.openapi"] = document
    return jsonify(document)


from feedsvc.web.api import categories, jobs, posts, sources, websub  # noqa: E402, F401  (register routes)
