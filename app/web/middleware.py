"""Middlewares: the error shape of every response, and token authentication."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
from aiohttp import web

from app.auth import require_admin
from app.db import is_connection_error
from app.errors import (
    AppError,
    Conflict,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from app.web.keys import AUTHENTICATOR, ENDPOINTS, PRINCIPAL, REQUEST_ID
from app.web.routing import Handler

log = logging.getLogger("dupes.http")

API_PREFIX = "/api/v1/"
_REQUEST_ID_MAX = 128


def error_response(
    error: AppError,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    response = web.json_response(error.to_body(), status=error.status, headers=headers)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="dupes"'
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> AppError:
    if isinstance(exc, web.HTTPNotFound):
        return RouteNotFound(f"no route for {request.method} {request.path}")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(f"{request.method} is not allowed here; use {allowed}")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("request body is too large")
    if exc.status == 400:
        return ValidationFailed(exc.reason or "bad request")
    error = AppError(exc.reason or "error")
    error.status = exc.status
    error.code = "NOT_FOUND" if exc.status == 404 else "ERROR"
    return error


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Every non-2xx answer in one JSON shape; traces go to the log, not the client."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = (
        incoming
        if 0 < len(incoming) <= _REQUEST_ID_MAX and incoming.isprintable()
        else uuid.uuid4().hex
    )
    request[REQUEST_ID] = request_id
    extra: dict[str, str] = {}
    try:
        response = await handler(request)
    except AppError as exc:
        if isinstance(exc, Unavailable):
            log.warning("database unavailable: %s", exc.__cause__ or exc)
        return error_response(exc, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if isinstance(exc, web.HTTPMethodNotAllowed):
            extra["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return error_response(_from_http_exception(exc, request), request_id, extra)
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
        # A write that lost a lock race to another request (a PATCH of a note while a
        # merge re-points it); merges retry their own, anything else asks the client.
        log.warning("transaction lost a race: %s", exc)
        return error_response(
            Conflict("another request changed these records at the same time; retry"),
            request_id,
        )
    except asyncpg.QueryCanceledError as exc:
        # The statement timeout: the database is there but too busy to answer.
        log.warning("query cancelled: %s", exc)
        return error_response(
            Unavailable("the database did not answer in time; try again shortly"),
            request_id,
        )
    except Exception as exc:
        if is_connection_error(exc):
            log.warning("database unavailable: %s", exc)
            return error_response(
                Unavailable("the database is unreachable; try again shortly"),
                request_id,
            )
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(AppError("internal error"), request_id)
    response.headers["X-Request-ID"] = request_id
    return response


def endpoint_access(request: web.Request) -> str:
    info: Any = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None:
        return "public"
    endpoint = request.app[ENDPOINTS].get((request.method, resource.canonical))
    return endpoint.access if endpoint is not None else "public"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authentication, then the admin check, both before any body is read."""
    access = endpoint_access(request)
    if access == "public" and not (
        request.path.startswith(API_PREFIX) and request.match_info.http_exception
    ):
        return await handler(request)
    # Unknown routes and wrong methods under /api/v1 also need a token, so that the
    # API's shape is not revealed to anyone without one.
    principal = await request.app[AUTHENTICATOR].authenticate(
        request.headers.get("Authorization")
    )
    request[PRINCIPAL] = principal
    if access == "admin":
        require_admin(principal)
    return await handler(request)
