"""The OpenAPI 3.1 contract of /api/v1, generated from the models the API itself runs on.

Every view is declared with ``@operation(...)``: its request body model (schemas.py, the one
that validates input), its query model (schemas.py, the one that reads the query string), its
response model (responses.py, the one the serializers fill) and the statuses it can answer.
``openapi_document()`` assembles them; pydantic's JSON Schema is draft 2020-12, which is what
OpenAPI 3.1 uses (OpenAPI 3.1 §4.8.24), so the schemas go in unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from feedsvc.schemas import MAX_ID
from feedsvc.web.api.responses import Error

# Every operation can answer these: a bad query string, a wrong token (a 401 on every call,
# public reads included), a database that is down or read-only.
_ALWAYS = (400, 401, 503)
# ... and every operation with a JSON body these.
_WITH_BODY = (413, 415, 422)

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad request: malformed JSON, a bad query parameter or cursor",
    401: "No token where one is needed, or a wrong or revoked token",
    404: "No such resource",
    409: "Conflict with the current state (a taken slug, a busy job, posts left)",
    413: "The body is larger than http.max_request_bytes",
    415: "The body is not application/json",
    422: "The body is JSON but not valid input (see error.fields)",
    503: "The database is unreachable, read-only or full; try again later",
}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    summary: str
    tag: str
    ok: int
    response: type[BaseModel] | None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: Literal["required", "optional"] = "required"
    errors: tuple[int, ...] = ()
    # OpenAPI links from the success response (stateful testing follows them).
    links: dict[str, dict[str, Any]] = field(default_factory=dict)

    def statuses(self) -> list[int]:
        extra = _WITH_BODY if self.body is not None else ()
        return sorted({self.ok, *_ALWAYS, *extra, *self.errors})


OPERATIONS: list[Operation] = []


def operation(method: str, path: str, **spec: Any) -> None:
    """Declare an operation in the contract (web/api's ``route`` does, with the Flask rule)."""
    OPERATIONS.append(Operation(method=method, path=path, **spec))


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path template: /posts/<int:post_id> → /posts/{post_id}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def follow(target: str, **parameters: str) -> dict[str, Any]:
    """A link to ``target`` with its parameters taken from the response body."""
    return {
        "operationId": target,
        "parameters": {name: f"$response.body#/{pointer}" for name, pointer in parameters.items()},
    }


def _path_parameter(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = (
        {"type": "integer", "minimum": 1, "maximum": MAX_ID}
        if name.endswith("_id")
        else {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^/\\x00]+$"}
    )
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    properties = schemas["properties"]
    return [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in properties.items()
    ]


def openapi_document(version: str, *, max_feed_length: int) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Error, "serialization")]
    for op in OPERATIONS:
        if op.response is not None:
            models.append((op.response, "serialization"))
        if op.body is not None:
            models.append((op.body, "validation"))
    refs, definitions = models_json_schema(
        list(dict.fromkeys(models)), ref_template="#/components/schemas/{model}"
    )
    error_ref = refs[(Error, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        parameters = [_path_parameter(name) for name in re.findall(r"{(\w+)}", op.path)]
        if op.query is not None:
            parameters += _query_parameters(op.query, op.query.model_json_schema())
        responses: dict[str, Any] = {}
        for status in op.statuses():
            answer: dict[str, Any] = {"description": _REASONS[status]}
            if status == op.ok and op.response is not None:
                schema = refs[(op.response, "serialization")]
                answer["content"] = {"application/json": {"schema": schema}}
                if op.ok == 201:
                    answer["headers"] = {
                        "Location": {"schema": {"type": "string"}, "required": True}
                    }
                if op.links:
                    answer["links"] = op.links
            elif status >= 400:
                answer["content"] = {"application/json": {"schema": error_ref}}
            responses[str(status)] = answer
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": parameters,
            "responses": responses,
            "security": [{"bearer": []}] if op.auth == "required" else [{}, {"bearer": []}],
        }
        if op.body is not None:
            body_ref = refs[(op.body, "validation")]
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_ref}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    schemas = definitions.get("$defs", {})
    for name in ("CategoryCreate", "CategoryUpdate"):
        # The static bound is 1000; this site's feeds.max_length is the real one.
        schemas[name]["properties"]["feed_length"]["maximum"] = max_feed_length
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "feedsvc API",
            "version": version,
            "description": (
                "Posts, categories, upstream sources and jobs of a feedsvc site. Errors are "
                '{"error": {"code", "message", "fields"}}. Lists are paged: ?limit= (1-100) '
                "and ?cursor= (next_cursor of the previous page)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token from `feedsvc token create NAME`",
                }
            },
        },
    }
