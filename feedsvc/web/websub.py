"""/websub: the built-in WebSub hub's endpoint (W3C WebSub §5.1), when websub.hub = "builtin".

A subscriber POSTs a form (``hub.mode``, ``hub.topic``, ``hub.callback``, and optionally
``hub.lease_seconds`` and ``hub.secret``); a well-formed request is recorded and answered 202
Accepted, and the scheduler process verifies it with the callback (or tells it it was denied)
within seconds. A malformed one is a 4xx with a JSON message, and changes nothing.

The form is read strictly, by hand: its bytes must be ASCII (application/x-www-form-urlencoded
escapes everything else) and each escaped value UTF-8, and no ``hub.*`` parameter may come
twice. Werkzeug's own form parsing would drop undecodable fields without a word, keep
undecodable escapes as text (a secret of %FF would be signed with the three characters
"%FF"), and take the first of a repeated parameter.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import UnsupportedMediaType

from feedsvc.config import HUB_PATH
from feedsvc.errors import BadRequest
from feedsvc.schemas import HubRequest, parse_query
from feedsvc.services import websub as websub_service
from feedsvc.web import ctx

bp = Blueprint("websub", __name__)

FORM = "application/x-www-form-urlencoded"
# More parameters than a subscriber could mean (5 hub.* and a few of its own).
MAX_PARAMETERS = 50


def _form() -> dict[str, str]:
    chunks = []
    # Read to the end: a chunked body has no Content-Length, and Werkzeug's stream raises 413
    # only when a read goes past http.max_request_bytes.
    while chunk := request.stream.read(65536):
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("the form must be URL-encoded: its bytes must be ASCII") from None
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_PARAMETERS,
        )
    except UnicodeDecodeError:
        raise BadRequest("the form must be URL-encoded UTF-8 (a value is not UTF-8)") from None
    except ValueError:  # more than MAX_PARAMETERS
        raise BadRequest(f"the form has more than {MAX_PARAMETERS} parameters") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise BadRequest("the form must not contain NUL characters")
        if key.startswith("hub.") and key in form:
            raise BadRequest(f"{key} is given twice", fields={key: "is given twice"})
        form.setdefault(key, value)
    return form


@bp.post(HUB_PATH)
def hub() -> tuple[Response, int]:
    # §5.1: a form-encoded body. (A multipart form is refused too: no file ever belongs here.)
    if request.mimetype != FORM:
        raise UnsupportedMediaType(f"send the request as a form: 'Content-Type: {FORM}'")
    hub_request = parse_query(HubRequest, _form())
    websub_service.request_subscription(ctx(), hub_request)
    return jsonify(
        {
            "status": "accepted",
            "message": f"{hub_request.mode} request accepted: the callback will be asked to "
            "confirm it (hub.challenge) within seconds",
        }
    ), 202
