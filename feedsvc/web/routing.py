"""What every route may receive: URL converters and request guards for the whole app.

Fixing these here, once, is what keeps hostile input away from the drivers:
- a path segment with NUL matches no route (PostgreSQL text cannot hold NUL, SQLite can, so
  without this the same URL was a 404 on one backend and a 500 on the other);
- an ``<int:...>`` segment is ASCII digits within what both backends store as an id (Werkzeug's
  own converter matches ``\\d``, i.e. '٣' too, and any size), anything else is a 404;
- a query string with NUL is a 400 before any view reads it;
- a response without a body carries no Content-Type (RFC 9110 §8.3: there is no content to
  describe; Flask would otherwise label a 204 or an OPTIONS answer text/html).
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.routing import Map, UnicodeConverter
from werkzeug.routing.converters import BaseConverter

from feedsvc.schemas import MAX_ID, parse_id


class TextConverter(UnicodeConverter):
    """Werkzeug's default converter, minus NUL."""

    def __init__(
        self, map: Map, minlength: int = 1, maxlength: int | None = None, length: int | None = None
    ) -> None:
        super().__init__(map, minlength, maxlength, length)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]", 1)


class IdConverter(BaseConverter):
    """A row id: ASCII digits, 1..MAX_ID (see feedsvc.schemas.parse_id)."""

    regex = "[0-9]+"
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        ident = parse_id(value)
        if ident is None:
            # Not ValidationError: Werkzeug would go on matching and answer 405 for the
            # methods of a sibling rule. No other rule takes this segment: it is a 404.
            raise NotFound(f"there is nothing at this id: ids are whole numbers from 1 to {MAX_ID}")
        return ident


def init_app(app: Flask) -> None:
    """Register before any blueprint: rules read their converters when they are added."""
    app.url_map.converters.update(default=TextConverter, string=TextConverter, int=IdConverter)

    @app.before_request
    def _no_nul_in_query() -> None:
        if not request.query_string:  # most feed polls: nothing to parse
            return
        if b"\x00" in request.query_string or any(
            "\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)
        ):
            raise BadRequest("the query string must not contain NUL characters")

    @app.after_request
    def _no_type_without_body(response: Response) -> Response:
        bodiless = response.status_code in (204, 304) or (
            request.method == "OPTIONS" and not response.is_streamed and not response.get_data()
        )
        if bodiless:
            response.headers.pop("Content-Type", None)
        return response
