"""Request logs, request metrics and `GET /metrics`.

The middleware here is the outermost one: it sees the final status of every answer,
error answers included, after the error middleware has shaped them. It logs one JSON
line per request with the route pattern (never the raw path, which holds ids, nor any
header or body) and feeds the request counters and latency histograms.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from app.logs import bind_context
from app.metrics import POOLS, observe_request
from app.web.keys import DATABASE, PRINCIPAL, REQUEST_ID
from app.web.routing import Endpoint, Handler

log = logging.getLogger("dupes.access")

# Paths that match no route are many and attacker-chosen; they share one label.
UNMATCHED_ROUTE = "unmatched"
WORKER_HEADER = "X-Worker-PID"
_PID = str(os.getpid())
# What the log and the metrics say of a request whose client went away mid-way.
CLIENT_CLOSED = 499


def route_pattern(request: web.Request) -> str:
    """The route's pattern, such as ``/api/v1/records/{object}/{id}``."""
    info: Any = request.match_info
    if info.http_exception is not None:
        return UNMATCHED_ROUTE
    resource = getattr(getattr(info, "route", None), "resource", None)
    return str(resource.canonical) if resource is not None else UNMATCHED_ROUTE


def _request_fields(request: web.Request) -> Mapping[str, Any]:
    fields: dict[str, Any] = {"request_id": request.get(REQUEST_ID)}
    principal = request.get(PRINCIPAL)
    if principal is not None:
        fields["organization"] = principal.org_name
        fields["org_id"] = str(principal.org_id)
    return fields


@web.middleware
async def observe_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """One log line and one metrics sample per request, whatever its outcome."""
    started = time.perf_counter()
    status = 500
    with bind_context(lambda: _request_fields(request)):
        try:
            response = await handler(request)
            status = response.status
            response.headers[WORKER_HEADER] = _PID
            return response
        except web.HTTPException as exc:
            # Only redirects get past the error middleware.
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            seconds = time.perf_counter() - started
            route = route_pattern(request)
            observe_request(request.method, route, status, seconds)
            log.log(
                logging.ERROR if status >= 500 else logging.INFO,
                "request",
                extra={
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )


async def track_pool(app: web.Application) -> AsyncIterator[None]:
    """Lets the pool gauges read this application's pool while it lives."""
    pool = app[DATABASE].pool
    POOLS.track(pool)

    yield

    POOLS.forget(pool)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


ENDPOINTS = [
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics of the process that answers.",
        "public",
        tag="operations",
    )
]
