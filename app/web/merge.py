"""The merge action of the duplicates endpoint (being built)."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from app.errors import AppError


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["merge"]
    object_name: str


class MergeResponse(BaseModel):
    master_id: str


async def handle_merge(request: web.Request, body: dict[str, Any]) -> web.Response:
    raise AppError("merge is not available yet")
