"""`GET /api/v1/schema` and `GET /api/v1/schema/{object}`: the object model of the
caller's organization, as its metadata describes it."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from app.services import records as service
from app.services.records import OrgScope
from app.web.keys import DATABASE, MODELS, PRINCIPAL
from app.web.routing import Endpoint

TAG = "schema"


class FieldOut(BaseModel):
    name: str
    type: str
    required: bool
    match_field: Literal["email", "phone", "linkedin", "name"] | None
    target_object: str | None = None


class RelationOut(BaseModel):
    name: str
    kind: Literal["BELONGS_TO_ONE", "MANY_TO_MANY"]
    target_object: str
    field: str | None = None
    fields: list[str] | None = None


class ObjectOut(BaseModel):
    name: str
    label: str
    kind: Literal["person", "company", "other"]
    fields: list[FieldOut]
    relations: list[RelationOut]
    match_fields: list[str]


class SchemaOut(BaseModel):
    data: list[ObjectOut]


async def _describe(request: web.Request, object_name: str | None) -> dict[str, Any]:
    return await service.describe_schema(
        request.app[DATABASE],
        request.app[MODELS],
        OrgScope.of(request[PRINCIPAL]),
        object_name,
    )


async def get_schema(request: web.Request) -> web.Response:
    return web.json_response(await _describe(request, None))


async def get_object_schema(request: web.Request) -> web.Response:
    return web.json_response(await _describe(request, request.match_info["object"]))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/schema",
        get_schema,
        "Every object of the organization: fields, relations, match fields.",
        response=SchemaOut,
        tag=TAG,
    ),
    Endpoint(
        "GET",
        "/api/v1/schema/{object}",
        get_object_schema,
        "One object of the organization.",
        response=ObjectOut,
        tag=TAG,
    ),
]
