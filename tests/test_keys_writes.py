"""Match keys stay current after every kind of write: API create, update, batch,
import, delete, and rows loaded by COPY behind the service's back."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from app.metadata import load_model
from app.services.keys import rekey_stale
from tests.conftest import World
from tests.records_support import Api

Client = TestClient[Any, Any]
KeySet = set[tuple[str, str]]


@pytest.fixture
def acme(client: Client, world: World) -> Api:
    return Api(client, world.acme.member_token)


async def keys_of(
    conn: asyncpg.Connection, schema: str, object_name: str, record_id: Any
) -> KeySet:
    rows = await conn.fetch(
        f'SELECT field, key FROM "{schema}".match_keys '
        "WHERE object_name = $1 AND record_id = $2",
        object_name,
        uuid.UUID(str(record_id)),
    )
    return {(row["field"], row["key"]) for row in rows}


async def stale_count(conn: asyncpg.Connection, schema: str, table: str) -> int:
    return int(
        await conn.fetchval(
            f'SELECT count(*) FROM "{schema}"."{table}" WHERE keys_stale'
        )
    )


ANN_KEYS = {
    ("email", "ann@example.com"),
    ("email", "ann.lee@work.test"),
    ("phone", "+13125550100"),
    ("linkedin", "in:ann-lee"),
    ("name", "ann lee"),
}


async def test_create_update_and_delete_keep_the_keys_current(
    acme: Api, conn: asyncpg.Connection, world: World
) -> None:
    schema = world.acme.schema
    ann = await acme.create(
        "contacts",
        first_name="Ann",
        last_name=" LEE ",
        email="Ann@Example.com",
        additional_emails=["ann.lee@work.test", "  "],
        phone="(312) 555-0100",
        linkedin_url="https://www.linkedin.com/in/ann-lee/",
    )
    assert await keys_of(conn, schema, "contacts", ann["id"]) == ANN_KEYS
    assert await stale_count(conn, schema, "contacts") == 0

    path = f"/api/v1/records/contacts/{ann['id']}"
    status, _ = await acme.call("PATCH", path, {"email": "ann@new.test"})
    assert status == 200
    expected = (ANN_KEYS - {("email", "ann@example.com")}) | {("email", "ann@new.test")}
    assert await keys_of(conn, schema, "contacts", ann["id"]) == expected

    # PATCH of one half of the name re-keys the name from the whole stored record.
    status, _ = await acme.call("PATCH", path, {"first_name": "Anne"})
    assert status == 200
    keys = await keys_of(conn, schema, "contacts", ann["id"])
    assert ("name", "anne lee") in keys
    assert ("name", "ann lee") not in keys

    status, _ = await acme.call("PUT", path, {"email": "only@one.test"})
    assert status == 200
    assert await keys_of(conn, schema, "contacts", ann["id"]) == {
        ("email", "only@one.test")
    }
    assert await stale_count(conn, schema, "contacts") == 0

    status, _ = await acme.call("DELETE", path)
    assert status == 204
    assert await keys_of(conn, schema, "contacts", ann["id"]) == set()


async def test_batch_create_and_import_write_keys_for_every_record(
    acme: Api, client: Client, conn: asyncpg.Connection, world: World
) -> None:
    schema = world.acme.schema
    status, answer = await acme.call(
        "POST",
        "/api/v1/records/companies/batch/create",
        {
            "records": [
                {"name": "Acme Corp", "phone": "312 555 0101"},
                {"name": "Initech", "linkedin_url": "linkedin.com/company/initech"},
            ]
        },
    )
    assert status == 201
    first, second = answer["data"]
    assert await keys_of(conn, schema, "companies", first["id"]) == {
        ("name", "acme corp"),
        ("phone", "+13125550101"),
    }
    assert await keys_of(conn, schema, "companies", second["id"]) == {
        ("name", "initech"),
        ("linkedin", "company:initech"),
    }

    admin = Api(client, world.acme.admin_token)
    status, result = await admin.call(
        "POST",
        "/api/v1/import/companies",
        {"records": [{"name": "Umbrella", "email": "info@umbrella.test"}]},
    )
    assert status == 200
    assert result["created"] == 1
    row = await conn.fetchrow(
        f'SELECT id, keys_stale FROM "{schema}".companies WHERE name = $1', "Umbrella"
    )
    assert row is not None
    assert row["keys_stale"] is False
    assert await keys_of(conn, schema, "companies", row["id"]) == {
        ("name", "umbrella"),
        ("email", "info@umbrella.test"),
    }


async def test_rows_loaded_by_copy_are_stale_until_rekeyed_then_match(
    acme: Api, conn: asyncpg.Connection, world: World
) -> None:
    schema = world.acme.schema
    via_api = await acme.create("contacts", first_name="Ann", phone="386-5286")
    copied = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
    await conn.copy_records_to_table(
        "contacts",
        schema_name=schema,
        columns=["id", "first_name", "last_name", "email", "phone"],
        records=[
            (copied[0], "Bob", "Stone", "BOB@example.com ", "3865286"),
            (copied[1], "bob", "stone", "bob@example.com", None),
            (copied[2], "Cy", None, "not an email", "000-000-0000"),
        ],
    )
    assert await stale_count(conn, schema, "contacts") == 3
    for record_id in copied:
        assert await keys_of(conn, schema, "contacts", record_id) == set()

    model = await load_model(conn, world.acme.id)
    rekeyed = await rekey_stale(
        conn, schema, model.object("contacts"), "US", batch_size=2
    )
    assert rekeyed == 3
    assert await stale_count(conn, schema, "contacts") == 0
    assert await keys_of(conn, schema, "contacts", copied[0]) == {
        ("email", "bob@example.com"),
        ("phone", "+13865286"),
        ("name", "bob stone"),
    }
    assert await keys_of(conn, schema, "contacts", copied[1]) == {
        ("email", "bob@example.com"),
        ("name", "bob stone"),
    }
    assert await keys_of(conn, schema, "contacts", copied[2]) == set()

    # The copied rows now group with each other and with the API's record.
    shared = await conn.fetch(
        f'SELECT field, key, array_agg(record_id) AS ids FROM "{schema}".match_keys '
        "WHERE object_name = 'contacts' GROUP BY field, key HAVING count(*) > 1"
    )
    groups = {(r["field"], r["key"]): set(r["ids"]) for r in shared}
    assert groups[("email", "bob@example.com")] == {copied[0], copied[1]}
    assert groups[("phone", "+13865286")] == {copied[0], uuid.UUID(via_api["id"])}

    # An UPDATE by another system marks the row stale again; the pass re-keys it.
    await conn.execute(
        f'UPDATE "{schema}".contacts SET email = $1 WHERE id = $2',
        "robert@example.com",
        copied[0],
    )
    assert await stale_count(conn, schema, "contacts") == 1
    await rekey_stale(conn, schema, model.object("contacts"), "US")
    keys = await keys_of(conn, schema, "contacts", copied[0])
    assert ("email", "robert@example.com") in keys
    assert ("email", "bob@example.com") not in keys

    # A plain SQL delete takes the keys with it.
    await conn.execute(f'DELETE FROM "{schema}".contacts WHERE id = $1', copied[1])
    assert await keys_of(conn, schema, "contacts", copied[1]) == set()


async def test_an_api_write_over_a_stale_row_leaves_it_fresh(
    acme: Api, conn: asyncpg.Connection, world: World
) -> None:
    schema = world.acme.schema
    record_id = uuid.uuid4()
    await conn.copy_records_to_table(
        "companies",
        schema_name=schema,
        columns=["id", "name", "email"],
        records=[(record_id, "Copied Co", "hello@copied.test")],
    )
    assert await stale_count(conn, schema, "companies") == 1
    status, _ = await acme.call(
        "PATCH", f"/api/v1/records/companies/{record_id}", {"domain": "copied.test"}
    )
    assert status == 200
    assert await stale_count(conn, schema, "companies") == 0
    assert await keys_of(conn, schema, "companies", record_id) == {
        ("name", "copied co"),
        ("email", "hello@copied.test"),
    }
