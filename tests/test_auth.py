"""Tokens and roles: every 401 case, the admin check, caching and revocation."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from app.auth import hash_token
from tests.conftest import World
from tests.support import bearer, error_code

Client = TestClient[Any, Any]


async def test_me_answers_who_the_token_is(client: Client, world: World) -> None:
    response = await client.get("/api/v1/me", headers=bearer(world.acme.admin_token))
    assert response.status == 200
    body = await response.json()
    assert body["email"] == world.acme.admin_email
    assert body["role"] == "admin"
    assert body["organization"]["name"] == "acme"


async def _expect_401(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.json()
    assert error_code(body) == "UNAUTHORIZED"
    return dict(body)


async def test_missing_header_is_401(client: Client) -> None:
    await _expect_401(client, {})


async def test_other_scheme_is_401(client: Client, world: World) -> None:
    await _expect_401(client, {"Authorization": f"Basic {world.acme.admin_token}"})


async def test_malformed_tokens_are_401(client: Client) -> None:
    for value in (
        "Bearer",
        "Bearer ",
        "Bearer abc",
        "Bearer ksr_short",
        "Bearer ksr_" + "a" * 31,
        "Bearer ksr_" + "é" * 40,
        "Bearer  ksr_x y",
    ):
        await _expect_401(client, {"Authorization": value})


async def test_unknown_token_is_401(client: Client) -> None:
    await _expect_401(client, bearer("ksr_" + "Z" * 40))


async def test_revoked_token_is_401(
    client: Client, world: World, conn: asyncpg.Connection
) -> None:
    token = world.acme.member_token
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    await conn.execute(
        "UPDATE dupes_core.api_tokens SET revoked_at = now() WHERE token_hash = $1",
        hash_token(token),
    )
    await _wait_for_401(client, token)


async def test_expired_token_is_401(
    client: Client, world: World, conn: asyncpg.Connection
) -> None:
    token = world.acme.member_token
    await conn.execute(
        "UPDATE dupes_core.api_tokens SET expires_at = now() - interval '1 second' "
        "WHERE token_hash = $1",
        hash_token(token),
    )
    body = await _expect_401(client, bearer(token))
    assert "expired" in body["error"]["message"]


async def test_inactive_user_is_401(
    client: Client, world: World, conn: asyncpg.Connection
) -> None:
    token = world.acme.member_token
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    await conn.execute(
        "UPDATE dupes_core.users SET is_active = false WHERE email = $1",
        world.acme.member_email,
    )
    await _wait_for_401(client, token)


async def _wait_for_401(client: Client, token: str, seconds: float = 1.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + seconds
    while True:
        status = (await client.get("/api/v1/me", headers=bearer(token))).status
        if status == 401:
            return
        assert time.monotonic() < deadline, "the change did not take effect in time"
        await asyncio.sleep(0.05)
