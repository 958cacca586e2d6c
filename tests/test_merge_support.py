"""Helpers of the merge tests: rows made with plain SQL, whole-schema snapshots, and
the merge request itself. (No tests here; the merge test modules import it.)"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from aiohttp.test_utils import TestClient

from app.sql import quote_ident
from tests.support import bearer

Client = TestClient[Any, Any]


class Rows:
    """Inserts rows into one organization's schema, the way another system would."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    def table(self, name: str) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(name)}"

    async def insert(self, table: str, **values: Any) -> UUID:
        """One row of `table`; returns its id."""
        columns = ", ".join(quote_ident(c) for c in values)
        params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        if values:
            query = (
                f"INSERT INTO {self.table(table)} ({columns}) VALUES ({params}) "
                "RETURNING id"
            )
        else:
            query = f"INSERT INTO {self.table(table)} DEFAULT VALUES RETURNING id"
        record_id = await self.conn.fetchval(query, *values.values())
        assert isinstance(record_id, UUID)
        return record_id

    async def contact(self, **values: Any) -> UUID:
        return await self.insert("contacts", **values)

    async def company(self, name: str = "Acme", **values: Any) -> UUID:
        return await self.insert("companies", name=name, **values)

    async def opportunity(self, name: str = "Deal", **values: Any) -> UUID:
        return await self.insert("opportunities", name=name, **values)

    async def note(self, body: str = "a note", **values: Any) -> UUID:
        return await self.insert("notes", body=body, **values)

    async def link(
        self, opportunity_id: UUID, contact_id: UUID, role: str | None = None
    ) -> UUID:
        """An opportunity_contacts row; returns its unique id."""
        return await self.insert(
            "opportunity_contacts",
            opportunity_id=opportunity_id,
            contact_id=contact_id,
            role=role,
        )

    async def execute(self, statement: str) -> None:
        """Runs DDL written for the organization's schema (first on the path)."""
        await self.conn.execute(
            f"SET search_path TO {quote_ident(self.schema)}; {statement}; "
            "RESET search_path"
        )

    async def row(self, table: str, record_id: UUID) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            f"SELECT * FROM {self.table(table)} WHERE id = $1", record_id
        )
        return dict(row) if row is not None else None

    async def column(self, table: str, column: str, record_id: UUID) -> Any:
        return await self.conn.fetchval(
            f"SELECT {quote_ident(column)} FROM {self.table(table)} WHERE id = $1",
            record_id,
        )

    async def count(self, table: str, where: str = "true", *args: Any) -> int:
        value = await self.conn.fetchval(
            f"SELECT count(*) FROM {self.table(table)} WHERE {where}", *args
        )
        return int(value)


async def snapshot(conn: asyncpg.Connection, schema: str) -> dict[str, list[str]]:
    """Every row of every table of a schema, as sorted JSON texts, for "nothing
    changed" checks."""
    tables = await conn.fetch(
        "SELECT c.relname FROM pg_class AS c "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname",
        schema,
    )
    state: dict[str, list[str]] = {}
    for table in tables:
        name = table["relname"]
        rows = await conn.fetch(
            f"SELECT to_jsonb(t)::text AS row FROM "
            f"{quote_ident(schema)}.{quote_ident(name)} AS t"
        )
        state[name] = sorted(row["row"] for row in rows)
    return state


def merge_body(
    master: UUID | str,
    duplicates: Sequence[UUID | str],
    object_name: str = "contacts",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "action": "merge",
        "object_name": object_name,
        "master_id": str(master),
        "duplicate_ids": [str(d) for d in duplicates],
        **extra,
    }


async def post_merge(
    client: Client, token: str, body: Mapping[str, Any] | str
) -> tuple[int, dict[str, Any]]:
    """Posts a merge (or any body) to the duplicates endpoint; returns status, JSON."""
    data = body if isinstance(body, str) else json.dumps(body)
    response = await client.post(
        "/api/v1/duplicates",
        data=data,
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    payload = await response.json()
    assert isinstance(payload, dict)
    return response.status, payload
