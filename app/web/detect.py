"""The detect action of the duplicates endpoint (being built)."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from app.errors import AppError


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["detect"]
    object_name: str


class DetectResponse(BaseModel):
    total_groups: int


async def handle_detect(request: web.Request, body: dict[str, Any]) -> web.Response:
    raise AppError("detect is not available yet")
