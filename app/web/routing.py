"""Endpoints described once: the router, the auth rules and OpenAPI read the same list.

Each feature module exposes ``ENDPOINTS``. A request body is validated by the pydantic
model named here, and the OpenAPI document is generated from the same models, so the
two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from app.errors import PayloadTooLarge, ValidationFailed
from app.services.values import load_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Access = Literal["public", "token", "admin"]
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    access: Access = "token"
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    ok_status: int = 200
    tag: str = "service"


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as the `details` of a VALIDATION_ERROR, without input echo."""
    return [
        {
            "field": ".".join(str(part) for part in error["loc"]) or None,
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors(include_url=False, include_input=False)
    ]


def first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or the project's error for a bad or oversized one."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(
            f"request body exceeds {request.client_max_size} bytes"
        ) from exc
    except web.RequestPayloadError as exc:
        # A body that cannot be decoded, such as broken gzip under Content-Encoding.
        raise ValidationFailed(
            "request body cannot be decoded; check its Content-Encoding"
        ) from exc
    except ConnectionError as exc:
        # The client hung up before its whole body arrived. Nobody will read this
        # answer; it keeps the request out of "database unavailable".
        raise ValidationFailed(
            "the connection closed before the request body was complete"
        ) from exc
    if not raw.strip():
        raise ValidationFailed("request body is empty; send a JSON object")
    try:
        return load_json(raw)
    # ValueError covers JSONDecodeError, bad UTF-8 and integers too long to convert.
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed(f"request body is not valid JSON: {exc}") from exc


async def parse_body(request: web.Request, model: type[ModelT]) -> ModelT:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object")
    return validate(model, data)


def validate(model: type[ModelT], data: Any) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(first_problem(exc), validation_details(exc)) from exc


def parse_query(request: web.Request, model: type[ModelT]) -> ModelT:
    return validate(model, dict(request.query))
