"""Rows that another system wrote with plain SQL, holding values the API would never
take (NaN, infinite dates, NULL list items, ...): reading, listing, detecting, merging
and importing over them is never a server error."""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.conftest import World
from tests.hostile_support import Client, not_a_server_error, send
from tests.test_merge_support import Rows, merge_body


@pytest.fixture
def rows(conn: asyncpg.Connection, world: World) -> Rows:
    return Rows(conn, world.acme.schema)


ODD_CONTACTS: list[dict[str, Any]] = [
    {"additional_emails": [None, "a@x.test"], "additional_phones": [None, "555"]},
    {"additional_emails": [], "additional_phones": []},
    {"email": "not an email", "phone": "x" * 500, "linkedin_url": "%%%"},
    {"email": "a@x.test", "first_name": "\u200b", "last_name": "\ufeff"},
    {"email": "A@X.TEST", "linkedin_url": "linkedin.com/in/%E0%A4%A"},
    {"first_name": "x" * 20_000, "last_name": "y" * 20_000},
    {"phone": "+" + "9" * 60, "additional_phones": ["0" * 64]},
    {"linkedin_url": "https://linkedin.com/in/" + "%F0%9F" * 300},
]
ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "0.1e-200"]
ODD_DATES = [
    "infinity",
    "-infinity",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "0044-03-15 BC",
]


async def _arrange(rows: Rows) -> tuple[list[UUID], list[UUID]]:
    contacts = [await rows.contact(**values) for values in ODD_CONTACTS]
    opportunities: list[UUID] = []
    for number in ODD_NUMBERS:
        record_id = await rows.opportunity("Deal")
        await rows.conn.execute(
            f"UPDATE {rows.table('opportunities')} SET amount = $1::text::numeric "
            "WHERE id = $2",
            number,
            record_id,
        )
        opportunities.append(record_id)
    for moment in ODD_DATES:
        record_id = await rows.opportunity("Deal")
        await rows.conn.execute(
            f"UPDATE {rows.table('opportunities')} SET close_date = $1::text::date "
            "WHERE id = $2",
            moment,
            record_id,
        )
        opportunities.append(record_id)
    return contacts, opportunities


async def test_odd_stored_values_are_read_listed_and_filtered_without_error(
    client: Client, world: World, rows: Rows
) -> None:
    contacts, opportunities = await _arrange(rows)
    token = world.acme.member_token
    for object_name, ids in (("contacts", contacts), ("opportunities", opportunities)):
        for record_id in ids:
            status, body = await send(
                client, "GET", f"/api/v1/records/{object_name}/{record_id}", token
            )
            assert status == 200, (record_id, body)
        status, body = await send(
            client, "GET", f"/api/v1/records/{object_name}?limit=100", token
        )
        assert status == 200, body
        assert len(body["data"]) == len(ids)
    # NaN, the infinities and 1e400 are no JSON numbers: they are shown as null.
    shown = [
        (await send(client, "GET", f"/api/v1/records/opportunities/{i}", token))[1]
        for i in opportunities[: len(ODD_NUMBERS)]
    ]
    assert [record["amount"] for record in shown] == [
        None,
        None,
        None,
        None,
        None,
        1e-201,
    ]
    # Dates Python cannot hold are shown as PostgreSQL writes them, never altered.
    dates = [
        (await send(client, "GET", f"/api/v1/records/opportunities/{i}", token))[1]
        for i in opportunities[len(ODD_NUMBERS) :]
    ]
    assert [record["close_date"] for record in dates] == ODD_DATES
    for query in ("amount=1", "close_date=2024-01-01", "additional_emails=a@x.test"):
        object_name = "contacts" if "emails" in query else "opportunities"
        status, body = await send(
            client, "GET", f"/api/v1/records/{object_name}?{query}", token
        )
        assert status == 200, body


async def test_odd_stored_values_are_detected_and_merged_without_error(
    client: Client, world: World, rows: Rows
) -> None:
    contacts, opportunities = await _arrange(rows)
    token = world.acme.admin_token
    for object_name in ("contacts", "companies"):
        status, body = await send(
            client,
            "POST",
            "/api/v1/duplicates",
            token,
            json.dumps({"action": "detect", "object_name": object_name}),
        )
        assert status == 200, (object_name, body)
    blank = await rows.opportunity("Deal")
    status, body = await send(
        client,
        "POST",
        "/api/v1/duplicates",
        token,
        json.dumps(
            merge_body(
                blank, opportunities, "opportunities", merge_strategy="fill_blanks"
            )
        ),
    )
    assert status == 200, body
    status, body = await send(
        client,
        "POST",
        "/api/v1/duplicates",
        token,
        json.dumps(merge_body(contacts[0], contacts[1:], merge_strategy="fill_blanks")),
    )
    assert status == 200, body


async def test_odd_stored_values_do_not_break_import_or_updates(
    client: Client, world: World, rows: Rows
) -> None:
    contacts, opportunities = await _arrange(rows)
    status, body = await send(
        client,
        "POST",
        "/api/v1/import/contacts",
        world.acme.admin_token,
        json.dumps({"records": [{"email": "a@x.test"}, {"phone": "555"}]}),
    )
    assert status == 200, body
    for object_name, ids in (("contacts", contacts), ("opportunities", opportunities)):
        for record_id in ids:
            status, body = await send(
                client,
                "PATCH",
                f"/api/v1/records/{object_name}/{record_id}",
                world.acme.member_token,
                "{}",
            )
            not_a_server_error(status, body)
            assert status == 200, body


ODD_MOMENTS = [
    "-infinity",
    "0044-03-15 12:00:00+00 BC",
    "2024-05-01 00:00:00+00",
    "20000-01-01 00:00:00+00",
    "infinity",
]


async def test_odd_timestamps_are_listed_in_order_and_paged_through(
    client: Client, world: World, rows: Rows
) -> None:
    """Every record is listed once, oldest first, whatever its `created_at` holds."""
    ids: list[str] = []
    for moment in reversed(ODD_MOMENTS):
        record_id = await rows.contact(first_name=moment)
        await rows.conn.execute(
            f"UPDATE {rows.table('contacts')} "
            "SET created_at = $1::text::timestamptz, "
            "updated_at = $1::text::timestamptz WHERE id = $2",
            moment,
            record_id,
        )
        ids.insert(0, str(record_id))
    token = world.acme.member_token
    seen: list[dict[str, Any]] = []
    path = "/api/v1/records/contacts?limit=1"
    while path:
        status, body = await send(client, "GET", path, token)
        assert status == 200, body
        assert body["total"] == len(ODD_MOMENTS)
        seen.extend(body["data"])
        cursor = body["nextCursor"]
        path = f"/api/v1/records/contacts?limit=1&cursor={cursor}" if cursor else ""
    assert [record["id"] for record in seen] == ids
    assert [record["created_at"] for record in seen] == [
        "-infinity",
        "0044-03-15 12:00:00+00 BC",
        "2024-05-01T00:00:00Z",
        "20000-01-01 00:00:00+00",
        "infinity",
    ]
    status, body = await send(
        client, "GET", f"/api/v1/records/contacts/{ids[0]}", token
    )
    assert status == 200, body
    assert body["updated_at"] == "-infinity"


async def test_a_cursor_with_a_timestamp_postgresql_refuses_is_a_400(
    client: Client, world: World
) -> None:
    for moment in ("999999-01-01 00:00:00+00", "2024-13-45 00:00:00+00"):
        raw = json.dumps(["contacts", moment, str(UUID(int=1))]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        status, body = await send(
            client,
            "GET",
            f"/api/v1/records/contacts?cursor={cursor}",
            world.acme.member_token,
        )
        assert status == 400, body
        assert body["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    ("expires_at", "status"),
    [
        ("infinity", 200),
        ("20000-01-01", 200),
        ("-infinity", 401),
        ("0001-01-01 BC", 401),
    ],
)
async def test_token_expiry_postgresql_holds_but_python_cannot(
    client: Client,
    conn: asyncpg.Connection,
    world: World,
    expires_at: str,
    status: int,
) -> None:
    await conn.execute(
        "UPDATE dupes_core.api_tokens t SET expires_at = $1::text::timestamptz "
        "FROM dupes_core.users u WHERE u.id = t.user_id AND u.email = $2",
        expires_at,
        world.acme.member_email,
    )
    answer, body = await send(client, "GET", "/api/v1/me", world.acme.member_token)
    assert answer == status, body
