"""The records API: `/api/v1/records/{object}` and its single-record, batch and
association routes. Member and admin tokens alike.

A malformed id in a path names no record: it is answered 404 `RECORD_NOT_FOUND`, like
an id that exists nowhere or in another organization.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel

from app.errors import ValidationFailed
from app.services import records as service
from app.services.records import OrgScope
from app.web.keys import DATABASE, MODELS, PRINCIPAL
from app.web.routing import Endpoint, parse_body, read_json

TAG = "records"
_LIST_OPTIONS = frozenset({"limit", "cursor"})


class RecordIn(RootModel[dict[str, Any]]):
    """A record's field values by name; see `GET /api/v1/schema/{object}`."""


class RecordOut(RootModel[dict[str, Any]]):
    """`id`, every field, `created_at` and `updated_at` (UTC, ISO 8601)."""


class RecordList(BaseModel):
    data: list[dict[str, Any]]
    total: int
    nextCursor: str | None


class ListQuery(BaseModel):
    """Besides these, any field of the object filters by equality (`?contact_id=`)."""

    limit: int = Field(default=service.LIMIT_DEFAULT, ge=1, le=service.LIMIT_MAX)
    cursor: str | None = None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=service.BATCH_MAX)


class BatchOut(BaseModel):
    data: list[dict[str, Any]]


class LinkIn(RootModel[dict[str, Any]]):
    """The link's extra fields, such as `{"role": "decision maker"}`; may be empty."""


class LinkOut(RootModel[dict[str, Any]]):
    """`id` of the linked record and the link's extra fields."""


def _scope(request: web.Request) -> OrgScope:
    return OrgScope.of(request[PRINCIPAL])


def _object(request: web.Request) -> str:
    return request.match_info["object"]


async def _record_body(request: web.Request) -> dict[str, Any]:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object of field values")
    return data


async def list_records(request: web.Request) -> web.Response:
    options: dict[str, str] = {}
    filters: dict[str, str] = {}
    for name in request.query:
        given = request.query.getall(name)
        if len(given) > 1:
            raise ValidationFailed(f"query parameter {name} is given more than once")
        (options if name in _LIST_OPTIONS else filters)[name] = given[0]
    page = await service.list_records(
        request.app[DATABASE],
        request.app[MODELS],
        _scope(request),
        _object(request),
        service.parse_limit(options.get("limit")),
        options.get("cursor"),
        filters,
    )
    return web.json_response(page.as_json())


async def create_record(request: web.Request) -> web.Response:
    data = await _record_body(request)
    record = await service.create_record(
        request.app[DATABASE],
        request.app[MODELS],
        _scope(request),
        _object(request),
        data,
    )
    return web.json_response(record, status=201)


async def create_batch(request: web.Request) -> web.Response:
    body = await parse_body(request, BatchIn)
    created = await service.create_batch(
        request.app[DATABASE],
        request.app[MODELS],
        _scope(request),
        _object(request),
        body.records,
    )
    return web.json_response({"data": created}, status=201)


async def get_record(request: web.Request) -> web.Response:
    record = await service.get_record(
        request.app[DATABASE],
        request.app[MODELS],
        _scope(request),
        _object(request),
        request.match_info["id"],
    )
    return web.json_response(record)


async def _update(request: web.Request, *, partial: bool) -> web.Response:
    data = await _record_body(request)
    record = await service.update_record(
        request.app[DATABASE],
        request.app[MODELS],
        _scope(request),
        _object(request),
        request.match_info["id"],
        data,
        partial=partial,
    )
    return web.json_response(record)


async def replace_record(request: web.Request) -> web.Response:
    return await _update(request, partial=False)


async def patch_record(request: web.Request) -> web.Response:
    return await _update(request, partial=True)


async def delete_record(request: web.Request) -> web.Response:
    await service.delete_record(
        request.app[DATABASE],
        request.app[MODELS],
        _scope(request),
        _object(request),
        request.match_info["id"],
    )
    return web.Response(status=204)


async def put_association(request: web.Request) -> web.Response:
    # The body is optional: a link without extra fields needs none.
    body: Any = await read_json(request) if (await request.read()).strip() else {}
    if not isinstance(body, dict):
        raise ValidationFailed("request body must be a JSON object of link fields")
    result = await service.put_association(
        request.app[DATABASE],
        request.app[MODELS],
        _scope(request),
        _object(request),
        request.match_info["id"],
        request.match_info["to_object"],
        request.match_info["to_id"],
        body,
    )
    return web.json_response(result.link, status=201 if result.created else 200)


async def delete_association(request: web.Request) -> web.Response:
    await service.delete_association(
        request.app[DATABASE],
        request.app[MODELS],
        _scope(request),
        _object(request),
        request.match_info["id"],
        request.match_info["to_object"],
        request.match_info["to_id"],
    )
    return web.Response(status=204)


_RECORDS = "/api/v1/records/{object}"
_RECORD = _RECORDS + "/{id}"
_LINK = _RECORD + "/associations/{to_object}/{to_id}"

ENDPOINTS = [
    Endpoint(
        "GET",
        _RECORDS,
        list_records,
        "List records oldest first, 20 a page by default (at most 100), with an "
        "opaque cursor; any field given as a query parameter filters by equality.",
        query=ListQuery,
        response=RecordList,
        tag=TAG,
    ),
    Endpoint(
        "POST",
        _RECORDS,
        create_record,
        "Create one record.",
        body=RecordIn,
        response=RecordOut,
        ok_status=201,
        tag=TAG,
    ),
    Endpoint(
        "POST",
        _RECORDS + "/batch/create",
        create_batch,
        "Create up to 100 records, all or none; the answer keeps the input order.",
        body=BatchIn,
        response=BatchOut,
        ok_status=201,
        tag=TAG,
    ),
    Endpoint(
        "GET",
        _RECORD,
        get_record,
        "Read one record, with its MANY_TO_MANY links.",
        response=RecordOut,
        tag=TAG,
    ),
    Endpoint(
        "PUT",
        _RECORD,
        replace_record,
        "Replace every field of a record (fields left out become null).",
        body=RecordIn,
        response=RecordOut,
        tag=TAG,
    ),
    Endpoint(
        "PATCH",
        _RECORD,
        patch_record,
        "Change the given fields of a record.",
        body=RecordIn,
        response=RecordOut,
        tag=TAG,
    ),
    Endpoint(
        "DELETE",
        _RECORD,
        delete_record,
        "Delete a record; its links and dependent notes go with it.",
        ok_status=204,
        tag=TAG,
    ),
    Endpoint(
        "PUT",
        _LINK,
        put_association,
        "Link two records through a MANY_TO_MANY relation, or set the link's "
        "fields (201 when created, 200 when it existed).",
        body=LinkIn,
        response=LinkOut,
        tag=TAG,
    ),
    Endpoint(
        "DELETE",
        _LINK,
        delete_association,
        "Unlink two records (204 also when they were not linked).",
        ok_status=204,
        tag=TAG,
    ),
]
