"""Requests that aiohttp refuses before any route runs still get the JSON error shape.

These go over a real socket to the runner `dupes serve` uses, as raw bytes, since an
HTTP client library would refuse to send most of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from app.web.app import create_app
from app.web.protocol import AppRunner
from tests.conftest import World, make_settings
from tests.processes import exchange, free_port
from tests.support import bearer


@pytest.fixture
async def port(db_dsn: str) -> AsyncIterator[int]:
    runner = AppRunner(create_app(make_settings(db_dsn), db_dsn), access_log=None)
    await runner.setup()
    chosen = free_port()
    site = web.TCPSite(runner, "127.0.0.1", chosen)
    await site.start()
    try:
        yield chosen
    finally:
        await runner.cleanup()


MALFORMED = {
    "an unknown method": b"GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n",
    "no HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "a header past the size limit": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    ),
    "a broken chunk size": (
        b"POST /api/v1/duplicates HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b"ZZ\r\nabc\r\n0\r\n\r\n"
    ),
    "a Content-Length that is no number": (
        b"POST /api/v1/duplicates HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
    ),
    "two different Content-Lengths": (
        b"POST /api/v1/duplicates HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    ),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_http_is_answered_in_the_error_shape(
    port: int, data: bytes
) -> None:
    status, headers, body = await exchange(port, data)

    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert body["error"]["message"].startswith("malformed HTTP request: ")
    assert len(body["error"]["message"]) < 300


async def test_the_same_socket_serves_well_formed_requests(
    port: int, world: World
) -> None:
    token = world.acme.admin_token
    request = (
        "GET /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: {bearer(token)['Authorization']}\r\n\r\n"
    )

    status, _, body = await exchange(port, request.encode())

    assert status == 200
    assert body["organization"]["name"] == "acme"
