"""The detect action of `POST /api/v1/duplicates`."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from app.matching.normalize import MatchField
from app.services import detect as service
from app.web.keys import DATABASE, MODELS, PRINCIPAL, SETTINGS
from app.web.routing import validate

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class DetectRequest(BaseModel):
    """Find groups of records that share a match key."""

    # Strict: `"limit": true`, `"limit": "5"` and `"limit": 5.0` are refused rather
    # than coerced, and an unknown field is an error, never a silent default.
    model_config = ConfigDict(extra="forbid", strict=True)

    action: Literal["detect"]
    object_name: str = Field(
        max_length=100, description="The object to scan, e.g. contacts or companies."
    )
    fields: list[MatchField] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Match only on these fields (repeats are harmless). "
            "Omitted or null: every field the object can match on."
        ),
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIMIT,
        description=f"Most groups returned; omitted or null means {DEFAULT_LIMIT}.",
    )


class DuplicateGroupOut(BaseModel):
    records: list[dict[str, Any]] = Field(
        description="At most 100 records, oldest first (created_at, then id)."
    )
    match_reason: MatchField = Field(
        description="The first of email, phone, linkedin, name that made the group."
    )
    match_reasons: list[MatchField] = Field(
        description="Every field whose key yields exactly this set of records."
    )
    match_value: str = Field(description="The match key of match_reason.")
    record_count: int = Field(description="How many records the group holds.")


class DetectResponse(BaseModel):
    duplicate_groups: list[DuplicateGroupOut]
    total_groups: int = Field(description="Every group found, before limit.")
    records_scanned: int = Field(description="Records in the scan window.")


async def handle_detect(request: web.Request, body: dict[str, Any]) -> web.Response:
    """Validates the body, runs detection and answers the groups."""
    parsed = validate(DetectRequest, body)
    params = service.DetectParams(
        object_name=parsed.object_name,
        fields=tuple(parsed.fields) if parsed.fields is not None else None,
        limit=parsed.limit if parsed.limit is not None else DEFAULT_LIMIT,
    )
    detection = await service.detect(
        request.app[DATABASE],
        request.app[MODELS],
        request[PRINCIPAL],
        params,
        request.app[SETTINGS].detect_window,
    )
    return web.json_response(detection.as_json())
