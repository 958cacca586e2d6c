"""One error shape for every non-2xx answer; a service that survives its database."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.web.app import create_app
from app.web.keys import DATABASE
from tests.conftest import World, make_settings
from tests.proxy import PgProxy
from tests.support import bearer, error_code

Client = TestClient[Any, Any]


async def test_unknown_route_is_404_in_the_error_shape(client: Client) -> None:
    response = await client.get("/nowhere")
    assert response.status == 404
    assert error_code(await response.json()) == "NOT_FOUND"


async def test_unknown_api_route_needs_a_token_then_is_404(
    client: Client, world: World
) -> None:
    response = await client.get("/api/v1/nowhere")
    assert response.status == 401
    assert error_code(await response.json()) == "UNAUTHORIZED"
    response = await client.get(
        "/api/v1/nowhere", headers=bearer(world.acme.member_token)
    )
    assert response.status == 404
    assert error_code(await response.json()) == "NOT_FOUND"


async def test_wrong_method_is_405_with_allow(client: Client, world: World) -> None:
    response = await client.delete(
        "/api/v1/me", headers=bearer(world.acme.member_token)
    )
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert error_code(await response.json()) == "METHOD_NOT_ALLOWED"


async def test_oversized_body_is_413(client: Client, world: World) -> None:
    body = b'{"action": "detect", "object_name": "' + b"x" * 2_000_000 + b'"}'
    response = await client.post(
        "/api/v1/duplicates",
        data=io.BytesIO(body),
        headers={**bearer(world.acme.admin_token), "Content-Type": "application/json"},
    )
    assert response.status == 413
    assert error_code(await response.json()) == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"not json",
        b"\xff\xfe",
        b"",
        b"[1, 2]",
        b'"text"',
        b"null",
        b"[" * 5000,
        b'{"limit": ' + b"9" * 5000 + b"}",
    ],
)
async def test_malformed_json_is_400(client: Client, world: World, raw: bytes) -> None:
    response = await client.post(
        "/api/v1/duplicates",
        data=raw,
        headers={**bearer(world.acme.admin_token), "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert error_code(await response.json()) == "VALIDATION_ERROR"


async def test_member_gets_403_before_the_body_is_read(
    client: Client, world: World
) -> None:
    response = await client.post(
        "/api/v1/duplicates",
        data=b"{broken",
        headers=bearer(world.acme.member_token),
    )
    assert response.status == 403
    assert error_code(await response.json()) == "PERMISSION_DENIED"


async def test_unknown_token_with_broken_body_is_401(client: Client) -> None:
    response = await client.post(
        "/api/v1/duplicates", data=b"{broken", headers=bearer("ksr_" + "q" * 40)
    )
    assert response.status == 401


async def test_unexpected_exception_is_500_without_trace(
    db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(db_dsn), db_dsn)

    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/explode", explode)
    async with TestClient(TestServer(app)) as test_client:
        with caplog.at_level(logging.ERROR, logger="dupes.http"):
            response = await test_client.get("/explode")
        assert response.status == 500
        text = await response.text()
        assert "secret internals" not in text
        assert "Traceback" not in text
        assert error_code(await response.json()) == "INTERNAL_ERROR"
    assert any(
        record.exc_info and "secret internals" in str(record.exc_info[1])
        for record in caplog.records
    )


@pytest.fixture
async def proxy(db_dsn: str) -> AsyncIterator[PgProxy]:
    pg_proxy = PgProxy(db_dsn)
    await pg_proxy.start()
    try:
        yield pg_proxy
    finally:
        await pg_proxy.close()


async def test_lost_database_is_503_and_the_service_recovers(
    proxy: PgProxy, world: World
) -> None:
    settings = make_settings(proxy.dsn, pool_acquire_timeout=1.0)
    app = create_app(settings, proxy.dsn)
    token = bearer(world.acme.admin_token)
    async with TestClient(TestServer(app)) as test_client:
        assert (await test_client.get("/readyz")).status == 200
        assert (await test_client.get("/api/v1/me", headers=token)).status == 200

        await proxy.cut()
        for path, headers in (("/readyz", {}), ("/api/v1/me", token)):
            response = await test_client.get(path, headers=headers)
            assert response.status == 503, path
            assert error_code(await response.json()) == "UNAVAILABLE"
        assert (await test_client.get("/healthz")).status == 200

        await proxy.start()
        deadline = time.monotonic() + 10
        statuses: list[int] = []
        while time.monotonic() < deadline:
            statuses = [
                (await test_client.get("/readyz")).status,
                (await test_client.get("/api/v1/me", headers=token)).status,
            ]
            if statuses == [200, 200]:
                break
            await asyncio.sleep(0.1)
        assert statuses == [200, 200]


async def test_statement_timeout_is_503_not_500(db_dsn: str) -> None:
    app = create_app(make_settings(db_dsn, statement_timeout_ms=50), db_dsn)

    async def slow(request: web.Request) -> web.Response:
        async with request.app[DATABASE].connection() as conn:
            await conn.execute("SELECT pg_sleep(2)")
        return web.json_response({})

    app.router.add_get("/slow", slow)
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/slow")
        assert response.status == 503
        assert error_code(await response.json()) == "UNAVAILABLE"
