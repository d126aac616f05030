"""/api/v1/websub: the built-in hub's subscriptions (auth for every call): list, remove."""

from __future__ import annotations

from flask import Response

from feedsvc.repo import websub as websub_repo
from feedsvc.schemas import ListQuery
from feedsvc.services import websub as websub_service
from feedsvc.web import ctx
from feedsvc.web.api import cursor_key, page, query, require_token, route
from feedsvc.web.api import responses as shapes
from feedsvc.web.api.serialize import request_json, subscription_json


@route(
    "GET",
    "/websub/subscriptions",
    operation_id="listWebSubSubscriptions",
    summary="The built-in WebSub hub's verified subscriptions, oldest first",
    tag="websub",
    ok=200,
    response=shapes.Page[shapes.WebSubSubscription],
    query=ListQuery,
)
def list_subscriptions() -> Response:
    require_token()
    args = query(ListQuery)
    start = cursor_key("websub", args.cursor, (int,))
    after_id = None if start is None else int(str(start[0]))
    with ctx().db.read() as session:
        rows = websub_repo.list_subscriptions(session, after_id=after_id, limit=args.limit + 1)
    return page(
        "websub",
        rows,
        args.limit,
        lambda row: (row[0].id,),
        lambda row: subscription_json(ctx(), row[0], row[1]),
    )


@route(
    "DELETE",
    "/websub/subscriptions/<int:subscription_id>",
    operation_id="deleteWebSubSubscription",
    summary="Remove a subscription now (the subscriber is not told; it may subscribe again)",
    tag="websub",
    ok=204,
    response=None,
    errors=(404,),
)
def delete_subscription(subscription_id: int) -> tuple[str, int]:
    require_token()
    websub_service.remove_subscription(ctx(), subscription_id)
    return "", 204


@route(
    "GET",
    "/websub/requests",
    operation_id="listWebSubRequests",
    summary="Requests the built-in hub still has to verify (or to tell they were denied)",
    tag="websub",
    ok=200,
    response=shapes.Page[shapes.WebSubRequest],
    query=ListQuery,
)
def list_requests() -> Response:
    require_token()
    args = query(ListQuery)
    start = cursor_key("websub-requests", args.cursor, (int,))
    after_id = None if start is None else int(str(start[0]))
    with ctx().db.read() as session:
        rows = websub_repo.list_intents(session, after_id=after_id, limit=args.limit + 1)
    return page(
        "websub-requests",
        rows,
        args.limit,
        lambda row: (row.id,),
        lambda row: request_json(ctx(), row),
    )
