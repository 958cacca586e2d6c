"""`POST /api/v1/import/{object}` (admin): up to 50 records; duplicates and invalid
records are counted, not created, and the counts add up to the input."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from app.services import importer
from app.services.records import OrgScope
from app.web.keys import DATABASE, MODELS, PRINCIPAL
from app.web.routing import Endpoint, parse_body

TAG = "records"


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items are checked one by one, so that one bad item fails only itself.
    records: list[Any] = Field(min_length=1, max_length=importer.API_IMPORT_MAX)


class ImportFailure(BaseModel):
    index: int
    code: str
    message: str


class ImportOut(BaseModel):
    object_name: str
    created: int
    duplicates: int
    failed: int
    errors: list[ImportFailure]


async def import_records(request: web.Request) -> web.Response:
    body = await parse_body(request, ImportIn)
    result = await importer.import_records(
        request.app[DATABASE],
        request.app[MODELS],
        OrgScope.of(request[PRINCIPAL]),
        request.match_info["object"],
        body.records,
    )
    return web.json_response(result.as_json())


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/import/{object}",
        import_records,
        "Import up to 50 records: duplicates of stored records or of earlier ones "
        "in the request are skipped, invalid ones reported by index.",
        "admin",
        body=ImportIn,
        response=ImportOut,
        tag=TAG,
    )
]
