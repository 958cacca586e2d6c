"""Requests that aiohttp refuses before any route runs still get the JSON error shape.

These go over a real socket to the runner `dupes serve` uses, as raw bytes, since an
HTTP client library would refuse to send most of them.
"""

from __future__ import annotations

import asyncio
import logging
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


async def _access_records(
    caplog: pytest.LogCaptureFixture, count: int
) -> list[logging.LogRecord]:
    for _ in range(100):
        found = [r for r in caplog.records if r.name == "dupes.access"]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("no access log line")


async def test_a_client_hanging_up_mid_body_is_no_database_outage(
    port: int, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    authorization = bearer(world.acme.admin_token)["Authorization"]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/v1/duplicates HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: {authorization}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()

    [line] = await _access_records(caplog, 1)
    assert line.__dict__["status"] == 400
    assert not [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_an_unread_body_that_cannot_be_decoded_is_no_server_error(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = b"this is not gzip"
    request = (
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    ) + body

    status, _, answer = await exchange(port, request)

    assert status == 405
    assert answer["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
