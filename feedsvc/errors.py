"""Errors that carry their layer and a message a user can act on.

Services raise these; the API maps them to a status code in one place (web/errors.py) and
the CLI prints the message on one line and exits non-zero.
"""

from __future__ import annotations


class FeedsvcError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class BadRequest(FeedsvcError):
    status, code = 400, "bad_request"


class Unauthorized(FeedsvcError):
    status, code = 401, "unauthorized"


class NotFound(FeedsvcError):
    status, code = 404, "not_found"


class Conflict(FeedsvcError):
    status, code = 409, "conflict"


class Invalid(FeedsvcError):
    status, code = 422, "invalid"


class Unavailable(FeedsvcError):
    """The database cannot serve this request now (down, read-only, full, not migrated)."""

    status, code = 503, "unavailable"
