"""/api/v1/sources: upstream feeds (auth for every call): list, add, show, edit, remove."""

from __future__ import annotations

from flask import Response, jsonify

from feedsvc.errors import NotFound
from feedsvc.repo import sources as source_repo
from feedsvc.schemas import ListQuery, SourceCreate, SourceUpdate, parse_input
from feedsvc.services import sources as source_service
from feedsvc.web import ctx
from feedsvc.web.api import cursor_key, json_body, page, query, require_token, route
from feedsvc.web.api import responses as shapes
from feedsvc.web.api.contract import follow
from feedsvc.web.api.serialize import source_json

_SOURCE_LINKS = {
    "GetSource": follow("getSource", source_id="id"),
    "EditSource": follow("editSource", source_id="id"),
    "DeleteSource": follow("deleteSource", source_id="id"),
}


@route(
    "GET",
    "/sources",
    operation_id="listSources",
    summary="Upstream sources with their fetch state, oldest first",
    tag="sources",
    ok=200,
    response=shapes.Page[shapes.Source],
    query=ListQuery,
)
def list_sources() -> Response:
    require_token()
    args = query(ListQuery)
    start = cursor_key("sources", args.cursor, (int,))
    after_id = None if start is None else int(str(start[0]))
    with ctx().db.read() as session:
        rows = source_repo.list_sources(session, after_id=after_id, limit=args.limit + 1)
        return page(
            "sources",
            rows,
            args.limit,
            lambda row: (row.id,),
            lambda row: source_json(ctx(), row),
        )


@route(
    "POST",
    "/sources",
    operation_id="createSource",
    summary="Add an upstream feed to poll (related items, or posts)",
    tag="sources",
    ok=201,
    response=shapes.Source,
    body=SourceCreate,
    errors=(409,),
    links=_SOURCE_LINKS,
)
def create_source() -> tuple[Response, int, dict[str, str]]:
    require_token()
    source = source_service.create_source(ctx(), parse_input(SourceCreate, json_body()))
    return jsonify(source_json(ctx(), source)), 201, {"Location": f"/api/v1/sources/{source.id}"}


@route(
    "GET",
    "/sources/<int:source_id>",
    operation_id="getSource",
    summary="One source with its fetch state",
    tag="sources",
    ok=200,
    response=shapes.Source,
    errors=(404,),
)
def show_source(source_id: int) -> Response:
    require_token()
    with ctx().db.read() as session:
        source = source_repo.get_source(session, source_id)
        if source is None:
            raise NotFound(f"no source with id {source_id}")
        return jsonify(source_json(ctx(), source))


@route(
    "PATCH",
    "/sources/<int:source_id>",
    operation_id="editSource",
    summary="Change a source's category, mode, interval or enabled flag",
    tag="sources",
    ok=200,
    response=shapes.Source,
    body=SourceUpdate,
    errors=(404, 409),
)
def edit_source(source_id: int) -> Response:
    require_token()
    data = parse_input(SourceUpdate, json_body())
    return jsonify(source_json(ctx(), source_service.update_source(ctx(), source_id, data)))


@route(
    "DELETE",
    "/sources/<int:source_id>",
    operation_id="deleteSource",
    summary="Remove a source; posts it brought in stay",
    tag="sources",
    ok=204,
    response=None,
    errors=(404,),
)
def delete_source(source_id: int) -> tuple[str, int]:
    require_token()
    source_service.delete_source(ctx(), source_id)
    return "", 204
