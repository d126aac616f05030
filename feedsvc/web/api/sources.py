"""/api/v1/sources: upstream feeds (auth for every call): list, add, show, edit, remove."""

from __future__ import annotations

from flask import Response, jsonify

from feedsvc.errors import NotFound
from feedsvc.repo import sources as source_repo
from feedsvc.schemas import SourceCreate, SourceUpdate, parse_input
from feedsvc.services import sources as source_service
from feedsvc.web import ctx
from feedsvc.web.api import bp, json_body, require_token
from feedsvc.web.api.serialize import source_json


@bp.get("/sources")
def list_sources() -> Response:
    require_token()
    with ctx().db.read() as session:
        items = [source_json(ctx(), source) for source in source_repo.list_sources(session)]
    return jsonify({"items": items, "next_cursor": None})


@bp.post("/sources")
def create_source() -> tuple[Response, int, dict[str, str]]:
    require_token()
    source = source_service.create_source(ctx(), parse_input(SourceCreate, json_body()))
    return jsonify(source_json(ctx(), source)), 201, {"Location": f"/api/v1/sources/{source.id}"}


@bp.get("/sources/<int:source_id>")
def show_source(source_id: int) -> Response:
    require_token()
    with ctx().db.read() as session:
        source = source_repo.get_source(session, source_id)
        if source is None:
            raise NotFound(f"no source with id {source_id}")
        return jsonify(source_json(ctx(), source))


@bp.patch("/sources/<int:source_id>")
def edit_source(source_id: int) -> Response:
    require_token()
    data = parse_input(SourceUpdate, json_body())
    return jsonify(source_json(ctx(), source_service.update_source(ctx(), source_id, data)))


@bp.delete("/sources/<int:source_id>")
def delete_source(source_id: int) -> tuple[str, int]:
    require_token()
    source_service.delete_source(ctx(), source_id)
    return "", 204
