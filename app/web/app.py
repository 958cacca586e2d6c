"""The application, built in one function; each resource is set up and torn down in one
place."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

from app.auth import TokenAuthenticator
from app.db import Database, create_pool
from app.metadata import ModelCache
from app.settings import Settings
from app.web import duplicates, imports, observability, records, schema, system
from app.web.keys import AUTHENTICATOR, DATABASE, DSN, ENDPOINTS, MODELS, SETTINGS
from app.web.middleware import auth_middleware, errors_middleware
from app.web.openapi import build_document
from app.web.routing import Endpoint

log = logging.getLogger("dupes.app")

OPENAPI = web.AppKey("openapi", dict[str, Any])


def all_endpoints() -> list[Endpoint]:
    """Every endpoint of the service; the router and OpenAPI are built from this."""
    return [
        *system.ENDPOINTS,
        *duplicates.ENDPOINTS,
        *observability.ENDPOINTS,
        *records.ENDPOINTS,
        *schema.ENDPOINTS,
        *imports.ENDPOINTS,
    ]


def package_version() -> str:
    try:
        return version("dupes")
    except PackageNotFoundError:
        return "0.0.0"


def openapi_for(app: web.Application) -> dict[str, Any]:
    return app[OPENAPI]


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(app[DSN], settings)
    database = Database(pool, settings.pool_acquire_timeout)
    authenticator = TokenAuthenticator(database, app[DSN], settings.token_cache_ttl)
    app[DATABASE] = database
    app[AUTHENTICATOR] = authenticator
    await authenticator.start()

    yield

    await authenticator.close()
    await pool.close()


def create_app(settings: Settings, dsn: str) -> web.Application:
    """The aiohttp application, talking to the PostgreSQL at `dsn`."""
    app = web.Application(
        middlewares=[
            observability.observe_middleware,
            errors_middleware,
            auth_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[DSN] = dsn
    app[MODELS] = ModelCache()
    endpoints = all_endpoints()
    by_route: dict[tuple[str, str], Endpoint] = {}
    for endpoint in endpoints:
        route = app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)
        canonical = route.resource.canonical  # type: ignore[union-attr]
        by_route[(endpoint.method, canonical)] = endpoint
        if endpoint.method == "GET":
            # HEAD answers what GET would, without the body (load balancers and
            # monitors ask it), under the same access rule.
            app.router.add_route("HEAD", endpoint.path, endpoint.handler)
            by_route[("HEAD", canonical)] = endpoint
    app[ENDPOINTS] = by_route
    app[OPENAPI] = build_document(endpoints, package_version())
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(observability.track_pool)
    return app
