"""`POST /api/v1/duplicates`: one endpoint, two actions, dispatched on `action`."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, RootModel

from app.errors import ValidationFailed
from app.web import detect, merge
from app.web.routing import Endpoint, read_json

_ACTIONS = {"detect": detect.handle_detect, "merge": merge.handle_merge}


class DuplicatesRequest(RootModel[Any]):
    """Either a detect or a merge request, told apart by `action`."""

    root: Annotated[
        detect.DetectRequest | merge.MergeRequest, Field(discriminator="action")
    ]


class DuplicatesResponse(RootModel[Any]):
    root: detect.DetectResponse | merge.MergeResponse


async def duplicates(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationFailed("request body must be a JSON object")
    action = body.get("action")
    if "action" not in body:
        raise ValidationFailed("action is required: 'detect' or 'merge'")
    handler = _ACTIONS.get(action) if isinstance(action, str) else None
    if handler is None:
        raise ValidationFailed("action must be 'detect' or 'merge'")
    return await handler(request, body)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/duplicates",
        duplicates,
        "Detect duplicate records, or merge duplicates into a master record.",
        "admin",
        body=DuplicatesRequest,
        response=DuplicatesResponse,
        tag="duplicates",
    )
]
