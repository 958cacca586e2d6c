"""Named queries over the shared tables: organizations, users, tokens."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from app.sql import render, sql


async def insert_organization(
    conn: asyncpg.Connection, name: str, schema: str, phone_region: str
) -> asyncpg.Record:
    row = await conn.fetchrow(sql("insert_organization"), name, schema, phone_region)
    assert row is not None
    return row


async def create_org_schema(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(render("create_org_schema", schema=schema))


async def get_organization_by_name(
    conn: asyncpg.Connection, name: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(sql("get_organization_by_name"), name)


async def get_organization_by_id(
    conn: asyncpg.Connection, org_id: UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(sql("get_organization_by_id"), org_id)


async def list_organizations(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch(sql("list_organizations")))


async def count_organizations(conn: asyncpg.Connection) -> int:
    count = await conn.fetchval(sql("count_organizations"))
    return int(count)


async def insert_user(
    conn: asyncpg.Connection, org_id: UUID, email: str, role: str
) -> asyncpg.Record:
    row = await conn.fetchrow(sql("insert_user"), org_id, email, role)
    assert row is not None
    return row


async def get_user_by_email(
    conn: asyncpg.Connection, email: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(sql("get_user_by_email"), email)


async def set_user_active(
    conn: asyncpg.Connection, user_id: UUID, active: bool
) -> asyncpg.Record | None:
    return await conn.fetchrow(sql("set_user_active"), user_id, active)


async def insert_token(
    conn: asyncpg.Connection,
    user_id: UUID,
    token_hash: bytes,
    prefix: str,
    expires_at: datetime | None,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        sql("insert_token"), user_id, token_hash, prefix, expires_at
    )
    assert row is not None
    return row


async def list_tokens(
    conn: asyncpg.Connection, org_name: str | None
) -> list[asyncpg.Record]:
    return list(await conn.fetch(sql("list_tokens"), org_name))


async def revoke_token(
    conn: asyncpg.Connection, token_id: UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(sql("revoke_token"), token_id)
