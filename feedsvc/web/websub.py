"""/websub: the built-in WebSub hub's endpoint (W3C WebSub §5.1), when websub.hub = "builtin".

A subscriber POSTs a form (``hub.mode``, ``hub.topic``, ``hub.callback``, and optionally
``hub.lease_seconds`` and ``hub.secret``); a well-formed request is recorded and answered 202
Accepted, and the scheduler process verifies it with the callback (or tells it it was denied)
within seconds. A malformed one is a 4xx with a JSON message, and changes nothing.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import UnsupportedMediaType

from feedsvc.config import HUB_PATH
from feedsvc.errors import BadRequest
from feedsvc.schemas import HubRequest, parse_query
from feedsvc.services import websub as websub_service
from feedsvc.web import ctx

bp = Blueprint("websub", __name__)

FORM = "application/x-www-form-urlencoded"


@bp.post(HUB_PATH)
def hub() -> tuple[Response, int]:
    # §5.1: a form-encoded body. (A multipart form is refused too: no file ever belongs here.)
    if request.mimetype != FORM:
        raise UnsupportedMediaType(f"send the request as a form: 'Content-Type: {FORM}'")
    form = request.form.to_dict()  # the first value of a repeated parameter
    if any("\x00" in key or "\x00" in value for key, value in form.items()):
        raise BadRequest("the form must not contain NUL characters")
    hub_request = parse_query(HubRequest, form)
    websub_service.request_subscription(ctx(), hub_request)
    return jsonify(
        {
            "status": "accepted",
            "message": f"{hub_request.mode} request accepted: the callback will be asked to "
            "confirm it (hub.challenge) within seconds",
        }
    ), 202
