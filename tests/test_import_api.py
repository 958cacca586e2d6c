"""`POST /api/v1/import/{object}`: duplicates and failures are counted, the rest
created, and the counts add up to the input."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import World
from tests.records_support import Api
from tests.support import bearer, error_code, wait_for_blocked

Client = TestClient[Any, Any]


@pytest.fixture
def admin(client: Client, world: World) -> Api:
    return Api(client, world.acme.admin_token)


async def contact_names(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(
        f'SELECT first_name FROM "{schema}".contacts ORDER BY first_name'
    )
    return [row["first_name"] for row in rows]


async def test_import_counts_duplicates_failures_and_created_records(
    admin: Api, conn: asyncpg.Connection, world: World
) -> None:
    await admin.create("contacts", first_name="Stored", email="stored@example.com")
    records: list[Any] = [
        {"first_name": "A", "email": " STORED@example.com"},  # 0: matches a stored one
        {"first_name": "B", "phone": "312-555-0100"},  # 1: created
        {"first_name": "C", "phone": "+1 (312) 555 0100"},  # 2: matches 1
        {"first_name": "D", "email": "d@example"},  # 3: created
        {"first_name": "E", "email": "broken"},  # 4: invalid
        "not an object",  # 5: invalid
        {"first_name": "F", "colour": "red"},  # 6: unknown field
        {"first_name": "G", "company_id": str(uuid.uuid4())},  # 7: no such company
        {"job_title": "No keys at all"},  # 8: created (no key, never a duplicate)
        {"job_title": "No keys at all"},  # 9: created
        {"first_name": "H", "additional_emails": ["d@example"]},  # 10: matches 3
    ]
    status, result = await admin.call(
        "POST", "/api/v1/import/contacts", {"records": records}
    )
    assert status == 200, result
    assert result["object_name"] == "contacts"
    assert result["created"] == 4
    assert result["duplicates"] == 3
    assert result["failed"] == 4
    assert result["created"] + result["duplicates"] + result["failed"] == len(records)
    errors = result["errors"]
    assert [e["index"] for e in errors] == [4, 5, 6, 7]
    assert all(e["code"] == "VALIDATION_ERROR" for e in errors)
    assert "email" in errors[0]["message"]
    assert "colour" in errors[2]["message"]
    assert "company_id" in errors[3]["message"]
    assert await contact_names(conn, world.acme.schema) == [
        "B",
        "D",
        "Stored",
        None,
        None,
    ]


async def test_import_matches_rows_loaded_behind_the_services_back(
    admin: Api, conn: asyncpg.Connection, world: World
) -> None:
    await conn.copy_records_to_table(
        "companies",
        schema_name=world.acme.schema,
        columns=["id", "name"],
        records=[(uuid.uuid4(), "Copied Corp")],
    )
    status, result = await admin.call(
        "POST",
        "/api/v1/import/companies",
        {"records": [{"name": "copied  CORP"}, {"name": "Fresh"}]},
    )
    assert status == 200
    assert (result["created"], result["duplicates"], result["failed"]) == (1, 1, 0)


async def test_import_within_one_request_keeps_the_first_of_equal_records(
    admin: Api, conn: asyncpg.Connection, world: World
) -> None:
    status, result = await admin.call(
        "POST",
        "/api/v1/import/contacts",
        {
            "records": [
                {"first_name": "First", "linkedin_url": "linkedin.com/in/same"},
                {
                    "first_name": "Second",
                    "linkedin_url": "https://uk.linkedin.com/in/SAME/",
                },
            ]
        },
    )
    assert status == 200
    assert (result["created"], result["duplicates"]) == (1, 1)
    assert await contact_names(conn, world.acme.schema) == ["First"]


async def test_a_member_gets_403_on_import_even_with_a_broken_body(
    client: Client, world: World
) -> None:
    for body in ('{"records": [{"first_name": "x"}]}', "{not json"):
        async with client.post(
            "/api/v1/import/contacts",
            data=body,
            headers={
                **bearer(world.acme.member_token),
                "Content-Type": "application/json",
            },
        ) as response:
            assert response.status == 403
            assert error_code(await response.json()) == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/v1/import/contacts", {"records": [{}] * 51}, "VALIDATION_ERROR"),
        ("/api/v1/import/contacts", {"records": []}, "VALIDATION_ERROR"),
        ("/api/v1/import/contacts", {"records": {}}, "VALIDATION_ERROR"),
        ("/api/v1/import/contacts", {"records": [{}], "mode": "x"}, "VALIDATION_ERROR"),
        ("/api/v1/import/contacts", [], "VALIDATION_ERROR"),
        ("/api/v1/import/widgets", {"records": [{}]}, "INVALID_OBJECT"),
    ],
)
async def test_an_oversized_or_malformed_import_is_refused_whole(
    admin: Api, conn: asyncpg.Connection, world: World, path: str, body: Any, code: str
) -> None:
    status, answer = await admin.call("POST", path, body)
    assert status == 400
    assert error_code(answer) == code
    assert await contact_names(conn, world.acme.schema) == []


async def test_import_fifty_records_is_allowed(admin: Api) -> None:
    records = [{"first_name": f"P{i}", "email": f"p{i}@example.com"} for i in range(50)]
    status, result = await admin.call(
        "POST", "/api/v1/import/contacts", {"records": records}
    )
    assert status == 200
    assert result["created"] == 50
    assert result["errors"] == []


async def test_import_writes_every_field_type_of_an_object(
    admin: Api, conn: asyncpg.Connection, world: World
) -> None:
    company = await admin.create("companies", name="Acme Rockets")
    records = [
        {
            "name": "Big deal",
            "amount": 1234.5,
            "stage": "won",
            "close_date": "2026-01-31",
            "company_id": company["id"],
        },
        {"name": "Undated deal"},
    ]
    status, result = await admin.call(
        "POST", "/api/v1/import/opportunities", {"records": records}
    )
    assert status == 200, result
    assert (result["created"], result["duplicates"], result["failed"]) == (2, 0, 0)
    rows = await conn.fetch(
        f"SELECT name, amount::text AS amount, close_date::text AS close_date "
        f'FROM "{world.acme.schema}".opportunities ORDER BY name'
    )
    assert [tuple(row) for row in rows] == [
        ("Big deal", "1234.5", "2026-01-31"),
        ("Undated deal", None, None),
    ]


async def test_a_relation_deleted_during_an_import_fails_only_its_record(
    admin: Api, conn: asyncpg.Connection, world: World, db_dsn: str
) -> None:
    referrer = await admin.create("contacts", first_name="Gone soon")
    table = f'"{world.acme.schema}".contacts'
    holder = await asyncpg.connect(db_dsn)
    try:
        # Another request is deleting the referrer and has not committed yet.
        deleting = holder.transaction()
        await deleting.start()
        await holder.execute(f"DELETE FROM {table} WHERE id = $1", referrer["id"])
        importing = asyncio.ensure_future(
            admin.call(
                "POST",
                "/api/v1/import/contacts",
                {
                    "records": [
                        {"first_name": "Kept"},
                        {"first_name": "Referred", "referred_by_id": referrer["id"]},
                    ]
                },
            )
        )
        await wait_for_blocked(holder, 1)
        await deleting.commit()
        status, result = await importing
    finally:
        await holder.close()

    assert status == 200, result
    assert (result["created"], result["duplicates"], result["failed"]) == (1, 0, 1)
    assert [e["index"] for e in result["errors"]] == [1]
    assert await contact_names(conn, world.acme.schema) == ["Kept"]
