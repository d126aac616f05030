"""Every error in one place: JSON under /api/, a short readable page elsewhere.

API errors have one shape: {"error": {"code", "message", "fields"}}.
"""

from __future__ import annotations

import logging
from html import escape

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from feedsvc.errors import FeedsvcError, Unauthorized

log = logging.getLogger("feedsvc.web")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    500: "internal_error",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(
    status: int, message: str, *, code: str | None = None, fields: dict[str, str] | None = None
) -> Response:
    if _wants_json():
        body = {
            "error": {
                "code": code or _HTTP_CODES.get(status, "error"),
                "message": message,
                "fields": fields or {},
            }
        }
        response = jsonify(body)
        response.status_code = status
    else:
        page = (
            f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>{status}</title>'
            f"<h1>{status}</h1><p>{escape(message)}</p></html>"
        )
        response = Response(page, status=status, content_type="text/html; charset=utf-8")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="feedsvc"'
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(FeedsvcError)
    def _domain(error: FeedsvcError) -> Response:
        response = error_response(error.status, error.message, code=error.code, fields=error.fields)
        if isinstance(error, Unauthorized):
            response.headers["WWW-Authenticate"] = 'Bearer realm="feedsvc", error="invalid_token"'
        return response

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        response = error_response(status, error.description or error.name)
        if status == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error; it has been logged")
