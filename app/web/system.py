"""Health, identity and the API description."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from app.web.keys import DATABASE, PRINCIPAL
from app.web.routing import Endpoint


class HealthOut(BaseModel):
    status: Literal["ok"]


class MeOrganization(BaseModel):
    id: str
    name: str
    phone_region: str


class MeOut(BaseModel):
    user_id: str
    email: str
    role: Literal["admin", "member"]
    organization: MeOrganization
    token_id: str


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    await request.app[DATABASE].ping()
    return web.json_response({"status": "ok"})


async def me(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    body = MeOut(
        user_id=str(principal.user_id),
        email=principal.email,
        role=principal.role,
        organization=MeOrganization(
            id=str(principal.org_id),
            name=principal.org_name,
            phone_region=principal.phone_region,
        ),
        token_id=str(principal.token_id),
    )
    return web.json_response(body.model_dump())


async def openapi_document(request: web.Request) -> web.Response:
    from app.web.app import openapi_for

    return web.json_response(openapi_for(request.app))


ENDPOINTS = [
    Endpoint(
        "GET", "/healthz", healthz, "The process is up.", "public", response=HealthOut
    ),
    Endpoint(
        "GET", "/readyz", readyz, "The database answers.", "public", response=HealthOut
    ),
    Endpoint("GET", "/api/v1/me", me, "Who the token belongs to.", response=MeOut),
    Endpoint(
        "GET",
        "/api/v1/openapi.json",
        openapi_document,
        "This API's OpenAPI 3.1 document.",
        "public",
    ),
]
