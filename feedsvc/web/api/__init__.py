"""The JSON API under /api/v1: request helpers shared by its modules."""

from __future__ import annotations

import base64
import json
from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from feedsvc.errors import Unauthorized
from feedsvc.models import ApiToken
from feedsvc.services.tokens import authenticate
from feedsvc.web import ctx

bp = Blueprint("api", __name__, url_prefix="/api/v1")

DEFAULT_PAGE, MAX_PAGE = 20, 100


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_token() -> ApiToken | None:
    """The caller's live token, None when anonymous; a wrong or revoked token is a 401."""
    token = bearer_token()
    if token is None:
        if request.headers.get("Authorization"):
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return None
    row = authenticate(ctx(), token)
    if row is None:
        raise Unauthorized("the token is unknown or has been revoked")
    return row


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
    raw = request.get_data(cache=False)  # over the size limit: 413 from Werkzeug
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def page_limit() -> int:
    raw = request.args.get("limit", str(DEFAULT_PAGE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        raise BadRequest("cursor is not one this API gave out") from None
    if not isinstance(values, list):
        raise BadRequest("cursor is not one this API gave out")
    return values


from feedsvc.web.api import categories, jobs, posts, sources  # noqa: E402, F401  (register routes)
