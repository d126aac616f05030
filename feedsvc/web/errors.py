"""Every error in one place: JSON under /api/, a short readable page elsewhere.

API errors have one shape: {"error": {"code", "message", "fields"}}.

A database that is down, read-only, full or not migrated is not a bug of ours: its driver
errors go through ``storage_fault()`` and answer 503 with ``Retry-After`` (RFC 9110 §15.6.4,
§10.2.3), logged once with their cause. Anything else unexpected stays a logged 500.
"""

from __future__ import annotations

import logging
from html import escape
from http import HTTPStatus

from flask import Flask, Response, current_app, jsonify, render_template, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from feedsvc.config import HUB_PATH, Settings
from feedsvc.db import storage_fault
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
    503: "unavailable",
}
# How long a client should wait before retrying when storage is unavailable (RFC 9110 §10.2.3).
RETRY_AFTER_SECONDS = 30


def _wants_json() -> bool:
    # The WebSub hub's callers are programs too (feedsvc/web/websub.py).
    return request.path.startswith("/api/") or request.path == HUB_PATH


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
        response = Response(_page(status, message), status=status, content_type=_HTML)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="feedsvc"'
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


_HTML = "text/html; charset=utf-8"
# What a reader is told, in the site's language; the message below says the details.
_REASONS = {
    400: "请求有误",
    401: "需要登录",
    404: "页面不存在",
    405: "不支持的请求方法",
    413: "请求过大",
    500: "服务器出错了",
    503: "暂时无法访问",
}


def _page(status: int, message: str) -> str:
    """The error page in the site's layout, or under /admin in the admin's, in Chinese (no
    database read: it must render when the database is what failed); a bare page if even
    that fails."""
    reason = _REASONS.get(status) or HTTPStatus(status).phrase
    try:
        settings = current_app.extensions["feedsvc"].settings
        from feedsvc.web.admin import under_admin

        if under_admin(request.path):
            return _admin_page(settings, status, message)
        from feedsvc.web.pages import layout

        return render_template(
            "error.html", status=status, reason=reason, message=message, **layout(settings)
        )
    except Exception:  # a broken template must not hide the error being reported
        log.exception("error page %d could not be rendered", status)
        return (
            f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>{status}</title>'
            f"<h1>{status} {escape(reason)}</h1><p>{escape(message)}</p></html>"
        )


def _admin_page(settings: Settings, status: int, message: str) -> str:
    from feedsvc.web.admin import error_messages, session
    from feedsvc.web.admin.layout import admin_layout

    shown = admin_layout(settings)
    return render_template(
        "admin/error.html",
        status=status,
        reason=_REASONS.get(status)
        or error_messages.REASONS.get(status)
        or HTTPStatus(status).phrase,
        message=error_messages.in_chinese(
            status, message, max_request_bytes=settings.http.max_request_bytes
        ),
        # The layout's sign-out button, for whoever is signed in.
        csrf_token=session.csrf_token() if shown["user"] else "",
        **shown,
    )


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

    @app.errorhandler(SQLAlchemyError)
    def _storage(error: SQLAlchemyError) -> Response:
        fault = storage_fault(error)
        if fault is None:
            return _unexpected(error)
        # One line with the driver's own words: the operator needs the cause, not a traceback.
        said = str(getattr(error, "orig", None) or error).strip().splitlines()
        cause = said[0] if said else type(error).__name__
        log.error("%s %s: 503: %s (%s)", request.method, request.path, fault.message, cause)
        return error_response(fault.status, fault.message, code=fault.code)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error; it has been logged")
