"""Rows loaded by COPY, behind the service's back, are found by detect."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.conftest import World
from tests.support import bearer


async def test_rows_loaded_by_copy_are_found_as_duplicates_by_detect(
    client: TestClient[Any, Any], conn: asyncpg.Connection, world: World
) -> None:
    headers = bearer(world.acme.admin_token)
    created = await client.post(
        "/api/v1/records/contacts",
        json={"first_name": "Ann", "last_name": "Lee", "phone": "(386) 528-6000"},
        headers=headers,
    )
    assert created.status == 201
    via_api = (await created.json())["id"]
    copied = [uuid.uuid4(), uuid.uuid4()]
    await conn.copy_records_to_table(
        "contacts",
        schema_name=world.acme.schema,
        columns=["id", "first_name", "last_name", "email", "phone"],
        records=[
            (copied[0], "Bob", "Stone", " BOB@example.com", "386.528.6000"),
            (copied[1], "bob", "stone", "bob@example.COM\t", None),
        ],
    )

    response = await client.post(
        "/api/v1/duplicates",
        json={"action": "detect", "object_name": "contacts"},
        headers=headers,
    )

    assert response.status == 200
    body = await response.json()
    groups = {
        (g["match_reason"], g["match_value"]): {r["id"] for r in g["records"]}
        for g in body["duplicate_groups"]
    }
    assert groups == {
        ("email", "bob@example.com"): {str(copied[0]), str(copied[1])},
        ("phone", "+13865286000"): {str(copied[0]), via_api},
    }
    bob = next(g for g in body["duplicate_groups"] if g["match_reason"] == "email")
    assert bob["match_reasons"] == ["email", "name"]
    stale = await conn.fetchval(
        f'SELECT count(*) FROM "{world.acme.schema}".contacts WHERE keys_stale'
    )
    assert stale == 0
