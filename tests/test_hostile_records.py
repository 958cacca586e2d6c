"""Hostile input on the records, import and schema routes: odd values, paths, query
strings, headers and bodies are each a 4xx in the error shape that changes nothing."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import World
from tests.hostile_support import Client, not_a_server_error, refused, send
from tests.test_merge_support import Rows, snapshot

CONTACTS = "/api/v1/records/contacts"


@pytest.fixture
def rows(conn: asyncpg.Connection, world: World) -> Rows:
    return Rows(conn, world.acme.schema)


# --- field values ----------------------------------------------------------------

BAD_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("contacts", {"first_name": None, "last_name": ["Doe"]}),
    ("contacts", {"first_name": {"x": 1}}),
    ("contacts", {"first_name": True}),
    ("contacts", {"first_name": 1e300}),
    ("contacts", {"first_name": "\ud800"}),
    ("contacts", {"first_name": "a\udfffb"}),
    ("contacts", {"last_name": "x\x00y"}),
    ("contacts", {"email": "a@b\x00.test"}),
    ("contacts", {"email": "\ud800@x.test"}),
    ("contacts", {"email": "no-at-sign"}),
    ("contacts", {"email": "a@b@c"}),
    ("contacts", {"email": ["a@x.test"]}),
    ("contacts", {"email": "a" * 600 + "@x.test"}),
    ("contacts", {"additional_emails": "a@x.test"}),
    ("contacts", {"additional_emails": [["a@x.test"]]}),
    ("contacts", {"additional_emails": [None]}),
    ("contacts", {"additional_emails": ["a@x.test\x00"]}),
    ("contacts", {"additional_emails": ["ok@x.test"] * 51}),
    ("contacts", {"additional_emails": {"a": "a@x.test"}}),
    ("contacts", {"phone": 5551234}),
    ("contacts", {"phone": "5" * 65}),
    ("contacts", {"phone": "555\x001234"}),
    ("contacts", {"additional_phones": [5551234]}),
    ("contacts", {"additional_phones": "555-1234"}),
    ("contacts", {"linkedin_url": "x" * 2049}),
    ("contacts", {"linkedin_url": "linkedin.com/in/\ud800"}),
    ("contacts", {"company_id": "not-a-uuid"}),
    ("contacts", {"company_id": 12345}),
    ("contacts", {"company_id": "{" + str(uuid.uuid4()) + "}"}),
    ("contacts", {"company_id": str(uuid.uuid4())}),
    ("contacts", {"company_id": [str(uuid.uuid4())]}),
    ("contacts", {"referred_by_id": str(uuid.uuid4()) + "\x00"}),
    ("contacts", {"id": str(uuid.uuid4())}),
    ("contacts", {"created_at": "2024-01-01T00:00:00Z"}),
    ("contacts", {"nickname": "x"}),
    ("contacts", {"\x00": "x"}),
    ("contacts", {"\ud800": "x"}),
    ("companies", {}),
    ("companies", {"name": None}),
    ("companies", {"name": "   "}),
    ("companies", {"name": "\t\u00a0"}),
    ("companies", {"name": "Acme", "employees": "12"}),
    ("companies", {"name": "Acme", "employees": True}),
    ("companies", {"name": "Acme", "employees": 10**18}),
    ("companies", {"name": "Acme", "employees": -(10**40)}),
    ("companies", {"name": "Acme", "employees": 1e-30}),
    ("companies", {"name": "Acme", "employees": [1]}),
    ("companies", {"name": "Acme", "parent_company_id": "x"}),
    ("opportunities", {"name": "Deal", "amount": "NaN"}),
    ("opportunities", {"name": "Deal", "close_date": "2024-02-30"}),
    ("opportunities", {"name": "Deal", "close_date": "2023-02-29"}),
    ("opportunities", {"name": "Deal", "close_date": "2024-2-3"}),
    ("opportunities", {"name": "Deal", "close_date": "0000-01-01"}),
    ("opportunities", {"name": "Deal", "close_date": "20240-01-01"}),
    ("opportunities", {"name": "Deal", "close_date": "2024-01-01T00:00:00"}),
    ("opportunities", {"name": "Deal", "close_date": "２０２４-０１-０１"}),
    ("opportunities", {"name": "Deal", "close_date": 20240101}),
    ("opportunities", {"name": "Deal", "close_date": "2024-13-01"}),
    ("opportunities", {"name": "Deal", "contacts": []}),
    ("notes", {"body": ""}),
    ("notes", {"body": "x" * 10_001}),
    ("notes", {"body": "hi", "contact_id": str(uuid.uuid4())}),
]


REQUIRED: dict[str, dict[str, str]] = {
    "contacts": {"first_name": "n"},
    "companies": {"name": "n"},
    "opportunities": {"name": "n"},
    "notes": {"body": "n"},
}


@pytest.mark.parametrize(("object_name", "payload"), BAD_VALUES)
async def test_bad_values_are_400_on_create_batch_and_patch(
    client: Client,
    world: World,
    conn: asyncpg.Connection,
    rows: Rows,
    object_name: str,
    payload: dict[str, Any],
) -> None:
    # Made through the API, so that its keys are fresh: the import re-keys rows
    # written behind the service's back, which is a change this test does not want.
    status, made = await send(
        client,
        "POST",
        f"/api/v1/records/{object_name}",
        world.acme.member_token,
        json.dumps(REQUIRED[object_name]),
    )
    assert status == 201, made
    existing = made["id"]
    before = await snapshot(conn, world.acme.schema)
    raw = json.dumps(payload).encode()
    token = world.acme.member_token
    path = f"/api/v1/records/{object_name}"
    batch = json.dumps({"records": [payload]}).encode()
    for method, where, data in [
        ("POST", path, raw),
        ("POST", path + "/batch/create", batch),
        ("PATCH", f"{path}/{existing}", raw),
        ("PUT", f"{path}/{existing}", raw),
    ]:
        if method == "PATCH" and not payload:
            continue  # an empty PATCH is a valid no-op
        status, body = await send(client, method, where, token, data)
        assert refused(status, body, 400) == "VALIDATION_ERROR", (method, where)
    status, body = await send(
        client, "POST", f"/api/v1/import/{object_name}", world.acme.admin_token, batch
    )
    assert status == 200, body
    assert (body["created"], body["failed"]) == (0, 1), body
    assert await snapshot(conn, world.acme.schema) == before


RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309", "9" * 5000]


@pytest.mark.parametrize("number", RAW_NUMBERS)
async def test_non_finite_and_huge_json_numbers_are_400(
    client: Client, world: World, conn: asyncpg.Connection, number: str
) -> None:
    before = await snapshot(conn, world.acme.schema)
    raw = '{"name": "Deal", "amount": ' + number + "}"
    status, body = await send(
        client, "POST", "/api/v1/records/opportunities", world.acme.member_token, raw
    )
    assert refused(status, body, 400) == "VALIDATION_ERROR"
    imported = '{"records": [' + raw + "]}"
    status, body = await send(
        client,
        "POST",
        "/api/v1/import/opportunities",
        world.acme.admin_token,
        imported,
    )
    assert status < 500, body
    assert status == 400 or body["failed"] == 1, body
    assert await snapshot(conn, world.acme.schema) == before


async def test_a_relation_to_a_record_of_another_object_is_400(
    client: Client, world: World, conn: asyncpg.Connection, rows: Rows
) -> None:
    contact = await rows.contact(email="a@x.test")
    company = await rows.company("Acme")
    before = await snapshot(conn, world.acme.schema)
    for path, payload in [
        (CONTACTS, {"company_id": str(contact)}),
        (CONTACTS, {"referred_by_id": str(company)}),
        ("/api/v1/records/companies", {"name": "X", "parent_company_id": str(contact)}),
    ]:
        status, body = await send(
            client, "POST", path, world.acme.member_token, json.dumps(payload)
        )
        assert refused(status, body, 400) == "VALIDATION_ERROR"
    assert await snapshot(conn, world.acme.schema) == before


async def test_a_record_may_refer_to_itself(
    client: Client, world: World, rows: Rows
) -> None:
    contact = await rows.contact(email="a@x.test")
    company = await rows.company("Acme")
    for path, payload in [
        (f"{CONTACTS}/{contact}", {"referred_by_id": str(contact)}),
        (
            f"/api/v1/records/companies/{company}",
            {"parent_company_id": str(company)},
        ),
    ]:
        status, body = await send(
            client, "PATCH", path, world.acme.member_token, json.dumps(payload)
        )
        assert status == 200, body
    assert await rows.column("contacts", "referred_by_id", contact) == contact
    assert await rows.column("companies", "parent_company_id", company) == company


# --- paths -----------------------------------------------------------------------

ODD_IDS = [
    "{550e8400-e29b-41d4-a716-446655440000}",
    "550e8400e29b41d4a716446655440000",
    "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
    "550e8400-e29b-41d4-a716-44665544000%00",
    "%00",
    "%ED%A0%80",
    "%FF%FE",
    "..%2F..%2Fschema",
    "x" * 4000,
    "550e8400-e29b-41d4-a716-4466554400000",
    "%20550e8400-e29b-41d4-a716-446655440000",
    "550e8400-e29b-41d4-a716-446655440000%0A",
    "ｅ" * 36,
]


@pytest.mark.parametrize("odd", ODD_IDS, ids=range(len(ODD_IDS)))
async def test_odd_ids_in_a_path_are_404_on_every_record_route(
    client: Client, world: World, conn: asyncpg.Connection, rows: Rows, odd: str
) -> None:
    opportunity = await rows.opportunity()
    contact = await rows.contact(email="a@x.test")
    before = await snapshot(conn, world.acme.schema)
    token = world.acme.member_token
    link = "/api/v1/records/opportunities/{}/associations/contacts/{}"
    for method, path, data in [
        ("GET", f"{CONTACTS}/{odd}", None),
        ("PATCH", f"{CONTACTS}/{odd}", '{"city": "Paris"}'),
        ("PUT", f"{CONTACTS}/{odd}", '{"city": "Paris"}'),
        ("DELETE", f"{CONTACTS}/{odd}", None),
        ("PUT", link.format(odd, contact), None),
        ("PUT", link.format(opportunity, odd), None),
        ("DELETE", link.format(opportunity, odd), None),
    ]:
        status, body = await send(client, method, path, token, data)
        assert refused(status, body) in {"RECORD_NOT_FOUND", "NOT_FOUND"}, path
    assert await snapshot(conn, world.acme.schema) == before


async def test_a_malformed_id_is_answered_exactly_like_a_missing_one(
    client: Client, world: World
) -> None:
    token = world.acme.member_token
    answers = [
        await send(client, "GET", f"{CONTACTS}/{record_id}", token)
        for record_id in ("not-a-uuid", "550e8400-e29b-41d4-a716-446655440000")
    ]
    assert answers[0] == answers[1]
    assert answers[0][0] == 404


async def test_an_uppercase_id_names_the_same_record(
    client: Client, world: World, rows: Rows
) -> None:
    contact = await rows.contact(email="a@x.test")
    status, body = await send(
        client, "GET", f"{CONTACTS}/{str(contact).upper()}", world.acme.member_token
    )
    assert status == 200, body
    assert body["id"] == str(contact)


ODD_OBJECTS = [
    "CONTACTS",
    "contacts%00",
    "%00",
    "%ED%A0%80",
    "%FF",
    "match_keys",
    "merge_audit",
    "opportunity_contacts",
    "pg_catalog.pg_class",
    "contacts%22%3B%20DROP%20TABLE%20contacts%3B--",
    "x" * 3000,
    "%E2%80%AEcontacts",
]


@pytest.mark.parametrize("odd", ODD_OBJECTS, ids=range(len(ODD_OBJECTS)))
async def test_odd_object_names_are_invalid_object_on_every_route(
    client: Client, world: World, conn: asyncpg.Connection, odd: str
) -> None:
    before = await snapshot(conn, world.acme.schema)
    some = uuid.uuid4()
    for method, path, token, data in [
        ("GET", f"/api/v1/records/{odd}", world.acme.member_token, None),
        ("POST", f"/api/v1/records/{odd}", world.acme.member_token, "{}"),
        (
            "POST",
            f"/api/v1/records/{odd}/batch/create",
            world.acme.member_token,
            '{"records": [{}]}',
        ),
        ("GET", f"/api/v1/records/{odd}/{some}", world.acme.member_token, None),
        ("PATCH", f"/api/v1/records/{odd}/{some}", world.acme.member_token, "{}"),
        ("DELETE", f"/api/v1/records/{odd}/{some}", world.acme.member_token, None),
        (
            "PUT",
            f"/api/v1/records/opportunities/{some}/associations/{odd}/{some}",
            world.acme.member_token,
            None,
        ),
        ("POST", f"/api/v1/import/{odd}", world.acme.admin_token, '{"records": [{}]}'),
        ("GET", f"/api/v1/schema/{odd}", world.acme.member_token, None),
    ]:
        status, body = await send(client, method, path, token, data)
        assert refused(status, body) in {"INVALID_OBJECT", "NOT_FOUND"}, path
    assert await snapshot(conn, world.acme.schema) == before


async def test_associations_on_relations_that_are_not_many_to_many_are_400(
    client: Client, world: World, conn: asyncpg.Connection, rows: Rows
) -> None:
    contact = await rows.contact(email="a@x.test")
    company = await rows.company("Acme")
    opportunity = await rows.opportunity()
    before = await snapshot(conn, world.acme.schema)
    token = world.acme.member_token
    for source, source_id, target, target_id in [
        ("contacts", contact, "companies", company),
        ("contacts", contact, "contacts", contact),
        ("companies", company, "companies", company),
        ("opportunities", opportunity, "companies", company),
        ("opportunities", opportunity, "opportunities", opportunity),
        ("notes", uuid.uuid4(), "contacts", contact),
    ]:
        path = f"/api/v1/records/{source}/{source_id}/associations/{target}/{target_id}"
        for method in ("PUT", "DELETE"):
            status, body = await send(client, method, path, token)
            assert refused(status, body, 400) == "VALIDATION_ERROR", path
    assert await snapshot(conn, world.acme.schema) == before


BAD_LINK_BODIES = [
    "null",
    "[]",
    '"role"',
    "1",
    '{"role": 1}',
    '{"role": ["buyer"]}',
    '{"role": {"x": 1}}',
    '{"role": "a\\u0000b"}',
    '{"role": "\\ud800"}',
    '{"role": "' + "x" * 10_001 + '"}',
    '{"rol": "buyer"}',
    '{"contact_id": "' + str(uuid.uuid4()) + '"}',
    '{"id": "x"}',
    "{",
]


@pytest.mark.parametrize("raw", BAD_LINK_BODIES, ids=range(len(BAD_LINK_BODIES)))
async def test_bad_association_bodies_are_400_and_change_nothing(
    client: Client, world: World, conn: asyncpg.Connection, rows: Rows, raw: str
) -> None:
    opportunity = await rows.opportunity()
    contact = await rows.contact(email="a@x.test")
    await rows.link(opportunity, contact, "buyer")
    before = await snapshot(conn, world.acme.schema)
    path = (
        f"/api/v1/records/opportunities/{opportunity}/associations/contacts/{contact}"
    )
    status, body = await send(client, "PUT", path, world.acme.member_token, raw)
    assert refused(status, body, 400) == "VALIDATION_ERROR"
    assert await snapshot(conn, world.acme.schema) == before


async def test_an_association_to_a_record_of_the_wrong_object_is_404(
    client: Client, world: World, conn: asyncpg.Connection, rows: Rows
) -> None:
    opportunity = await rows.opportunity()
    other = await rows.opportunity()
    company = await rows.company("Acme")
    before = await snapshot(conn, world.acme.schema)
    base = f"/api/v1/records/opportunities/{opportunity}/associations/contacts"
    for target in (company, other, opportunity):
        status, body = await send(
            client, "PUT", f"{base}/{target}", world.acme.member_token
        )
        assert refused(status, body, 404) == "RECORD_NOT_FOUND"
    assert await snapshot(conn, world.acme.schema) == before


# --- query strings ---------------------------------------------------------------

BAD_QUERIES = [
    "limit=abc",
    "limit=-1",
    "limit=0",
    "limit=1e3",
    "limit=1.0",
    "limit=101",
    "limit=",
    "limit=%00",
    "limit=" + "9" * 5000,
    "limit=%EF%BC%95",
    "limit=+5",
    "limit=%205",
    "limit=5_0",
    "limit=5%0A",
    "limit=1&limit=2",
    "cursor=garbage",
    "cursor=",
    "cursor=%00",
    "cursor=bnVsbA",
    "cursor=W10",
    "cursor=WzEsMiwzXQ",
    "cursor=" + "A" * 5000,
    "cursor=a&cursor=b",
    "nickname=x",
    "first_name=",
    "first_name=%00",
    "first_name=a%00b",
    "first_name=a&first_name=b",
    "%00=x",
    "company_id=not-a-uuid",
    "company_id=%7B00000000-0000-0000-0000-000000000000%7D",
    "additional_emails=%5B%5B1%5D%5D",
    "additional_emails=%5B1%5D",
    "additional_emails=%5Bnull%5D",
    "additional_emails=%5B%22a%00%22%5D",
    # Nested deeper than the JSON parser goes.
    "additional_emails=" + "%5B" * 1500,
    "id=x",
    "created_at=2024",
]


@pytest.mark.parametrize("query", BAD_QUERIES, ids=range(len(BAD_QUERIES)))
async def test_bad_list_queries_are_400(
    client: Client, world: World, query: str
) -> None:
    status, body = await send(
        client, "GET", f"{CONTACTS}?{query}", world.acme.member_token
    )
    assert refused(status, body, 400) == "VALIDATION_ERROR"


BAD_TYPED_QUERIES = [
    "amount=NaN",
    "amount=Infinity",
    "amount=1e999999999",
    "amount=1e-999999999",
    "amount=abc",
    "amount=%00",
    "amount=" + "9" * 5000,
    "close_date=2024-02-30",
    "close_date=2024-2-3",
    "close_date=0000-01-01",
    "close_date=%00",
    "primary_contact_id=x",
]


@pytest.mark.parametrize("query", BAD_TYPED_QUERIES, ids=range(len(BAD_TYPED_QUERIES)))
async def test_bad_typed_filters_are_400(
    client: Client, world: World, query: str
) -> None:
    status, body = await send(
        client,
        "GET",
        f"/api/v1/records/opportunities?{query}",
        world.acme.member_token,
    )
    assert refused(status, body, 400) == "VALIDATION_ERROR"


# --- bodies and methods ----------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("raw", [b"", b"   ", b"\n", b"null", b"{", b"\xff"])
async def test_an_empty_or_broken_body_on_put_and_patch_is_400(
    client: Client,
    world: World,
    conn: asyncpg.Connection,
    rows: Rows,
    method: str,
    raw: bytes,
) -> None:
    contact = await rows.contact(email="a@x.test", city="Paris")
    before = await snapshot(conn, world.acme.schema)
    status, body = await send(
        client, method, f"{CONTACTS}/{contact}", world.acme.member_token, raw
    )
    assert refused(status, body, 400) == "VALIDATION_ERROR"
    assert await snapshot(conn, world.acme.schema) == before


async def test_the_content_type_does_not_change_how_a_body_is_read(
    client: Client, world: World
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "x/y"):
        status, body = await send(
            client,
            "POST",
            CONTACTS,
            world.acme.member_token,
            '{"email": "a@x.test"}',
            {"Content-Type": content_type},
        )
        assert status == 201, body
    status, body = await send(
        client,
        "POST",
        CONTACTS,
        world.acme.member_token,
        "email=a%40x.test",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused(status, body, 400) == "VALIDATION_ERROR"


async def test_a_gzip_body_is_read_and_a_broken_one_refused(
    client: Client, world: World, conn: asyncpg.Connection
) -> None:
    packed = gzip.compress(b'{"email": "zip@x.test"}')
    status, body = await send(
        client,
        "POST",
        CONTACTS,
        world.acme.member_token,
        packed,
        {"Content-Encoding": "gzip"},
    )
    assert status == 201, body
    assert body["email"] == "zip@x.test"
    before = await snapshot(conn, world.acme.schema)
    for broken in (packed[:10], b"not gzip at all", b"\x1f\x8b" + b"\x00" * 30):
        # The server drops the connection after answering a body it cannot decode.
        status, body = await send(
            client,
            "POST",
            CONTACTS,
            world.acme.member_token,
            broken,
            {"Content-Encoding": "gzip", "Connection": "close"},
        )
        assert refused(status, body, 400) == "VALIDATION_ERROR"
    assert await snapshot(conn, world.acme.schema) == before


async def test_a_gzip_bomb_is_refused_as_too_large(
    client: Client, world: World, conn: asyncpg.Connection
) -> None:
    before = await snapshot(conn, world.acme.schema)
    bomb = gzip.compress(b'{"email": "' + b" " * (64 * 1024 * 1024) + b'"}')
    status, body = await send(
        client,
        "POST",
        CONTACTS,
        world.acme.member_token,
        bomb,
        {"Content-Encoding": "gzip"},
    )
    assert refused(status, body, 413) == "PAYLOAD_TOO_LARGE"
    assert await snapshot(conn, world.acme.schema) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", CONTACTS),
        ("DELETE", CONTACTS),
        ("POST", f"{CONTACTS}/{uuid.uuid4()}"),
        ("GET", f"{CONTACTS}/batch/create"),
        ("GET", "/api/v1/duplicates"),
        ("PUT", "/api/v1/duplicates"),
        ("GET", "/api/v1/import/contacts"),
        ("POST", "/api/v1/schema"),
        ("OPTIONS", CONTACTS),
        ("OPTIONS", "/api/v1/duplicates"),
        ("TRACE", CONTACTS),
    ],
)
async def test_methods_not_allowed_are_405_in_the_error_shape(
    client: Client, world: World, method: str, path: str
) -> None:
    status, body = await send(client, method, path, world.acme.admin_token)
    assert refused(status, body, 405) == "METHOD_NOT_ALLOWED"


async def test_head_answers_like_get_without_a_body(
    client: Client, world: World
) -> None:
    member = {"Authorization": f"Bearer {world.acme.member_token}"}
    for path in (CONTACTS, "/api/v1/schema", "/api/v1/me", "/healthz", "/readyz"):
        async with client.head(path, headers=member) as response:
            assert response.status == 200, path
            assert await response.read() == b""
    async with client.head("/api/v1/me") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with client.head("/api/v1/duplicates", headers=member) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"


BAD_BATCHES = [
    '{"records": "x"}',
    '{"records": null}',
    '{"records": {}}',
    '{"records": [[]]}',
    '{"records": [null]}',
    '{"records": [1]}',
    '{"records": []}',
    '{"records": [{}], "extra": 1}',
    '{"record": [{}]}',
    '{"records": [' + ",".join(["{}"] * 101) + "]}",
    "[{}]",
]


@pytest.mark.parametrize("raw", BAD_BATCHES, ids=range(len(BAD_BATCHES)))
async def test_bad_batches_and_imports_are_400_and_create_nothing(
    client: Client, world: World, conn: asyncpg.Connection, raw: str
) -> None:
    before = await snapshot(conn, world.acme.schema)
    status, body = await send(
        client, "POST", f"{CONTACTS}/batch/create", world.acme.member_token, raw
    )
    assert refused(status, body, 400) == "VALIDATION_ERROR"
    status, body = await send(
        client, "POST", "/api/v1/import/contacts", world.acme.admin_token, raw
    )
    assert status < 500, body
    if status != 200:
        assert refused(status, body, 400) == "VALIDATION_ERROR"
    else:
        assert body["created"] == 0, body
    assert await snapshot(conn, world.acme.schema) == before


async def test_import_counts_each_hostile_item_as_failed(
    client: Client, world: World, conn: asyncpg.Connection
) -> None:
    before = await snapshot(conn, world.acme.schema)
    items: list[Any] = [
        None,
        1,
        "x",
        [],
        [{}],
        {"email": "a\x00@x.test"},
        {"email": "\ud800@x.test"},
        {"nickname": "x"},
        {"id": str(uuid.uuid4())},
        {"company_id": str(uuid.uuid4())},
        {"additional_emails": [["a@x.test"]]},
    ]
    raw = json.dumps({"records": items}).encode("utf-8")
    status, body = await send(
        client, "POST", "/api/v1/import/contacts", world.acme.admin_token, raw
    )
    assert status == 200, body
    assert (body["created"], body["duplicates"], body["failed"]) == (0, 0, len(items))
    assert [error["index"] for error in body["errors"]] == list(range(len(items)))
    assert await snapshot(conn, world.acme.schema) == before


# --- headers ---------------------------------------------------------------------


async def test_odd_authorization_headers_are_401(client: Client, world: World) -> None:
    token = world.acme.member_token
    for value in [
        "Bearer " + token + "é",
        "Bearer ksr_" + "é" * 40,
        "Bearer ksr_" + "٣" * 40,
        "Bearer ksr_" + "a" * 5000,
        "Bearer  " + token + " extra",
        "bearer",
        "Bearer",
        "Bearer ",
        " ",
        token,
        "Basic " + token,
    ]:
        raw_headers = {"Authorization": value}
        async with client.get(
            "/api/v1/me", headers=raw_headers, skip_auto_headers=["Content-Type"]
        ) as response:
            body = await response.json()
            assert refused(response.status, body, 401) == "UNAUTHORIZED", value


async def test_non_ascii_bytes_in_authorization_are_401(
    client: Client, world: World
) -> None:
    # Latin-1 bytes that are not UTF-8 reach the server as they are.
    reader, writer = await _raw_connection(client)
    writer.write(
        b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer ksr_\xff\xfe" + b"a" * 40 + b"\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer[:200]
    assert refused(401, json.loads(payload), 401) == "UNAUTHORIZED"


async def test_two_authorization_headers_never_mix_organizations(
    client: Client, world: World
) -> None:
    reader, writer = await _raw_connection(client)
    writer.write(
        b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + f"Authorization: Bearer {world.acme.member_token}\r\n".encode()
        + f"Authorization: Bearer {world.globex.member_token}\r\n".encode()
        + b"\r\n"
    )
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    assert status in (200, 400, 401), answer[:300]
    _, _, payload = answer.partition(b"\r\n\r\n")
    if status != 200:
        refused(status, json.loads(payload))


async def test_odd_request_ids_are_replaced_and_never_a_server_error(
    client: Client, world: World
) -> None:
    for value in ["x" * 5000, "é", "   ", "\u2028"]:
        async with client.get(
            "/api/v1/me",
            headers={
                "Authorization": f"Bearer {world.acme.member_token}",
                "X-Request-ID": value,
            },
        ) as response:
            assert response.status == 200, value
            answered = response.headers["X-Request-ID"]
            assert 0 < len(answered) <= 128
            assert answered.isprintable()


async def _raw_connection(client: Client) -> tuple[Any, Any]:
    import asyncio

    return await asyncio.open_connection(client.host, client.port)


# --- fuzzing ---------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["a@x.test", "2024-02-29", str(uuid.uuid4()), "\x00", " "]),
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)
_fields = st.sampled_from(
    [
        "first_name",
        "email",
        "additional_emails",
        "phone",
        "additional_phones",
        "linkedin_url",
        "company_id",
        "referred_by_id",
        "name",
        "amount",
        "close_date",
        "employees",
        "id",
    ]
)
_records = st.dictionaries(_fields, _json, max_size=5)
_objects = st.sampled_from(["contacts", "companies", "opportunities", "notes"])


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(object_name=_objects, record=_records)
async def test_no_record_body_is_a_server_error(
    client: Client, world: World, object_name: str, record: dict[str, Any]
) -> None:
    token = world.acme.member_token
    path = f"/api/v1/records/{object_name}"
    made, created = await send(client, "POST", path, token, _encode(record))
    not_a_server_error(made, created)
    status, body = await send(
        client, "POST", f"{path}/batch/create", token, _encode({"records": [record]})
    )
    not_a_server_error(status, body)
    status, body = await send(
        client,
        "POST",
        f"/api/v1/import/{object_name}",
        world.acme.admin_token,
        _encode({"records": [record, record]}),
    )
    not_a_server_error(status, body)
    if made == 201:
        status, body = await send(
            client, "PATCH", f"{path}/{created['id']}", token, _encode(record)
        )
        not_a_server_error(status, body)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    object_name=_objects,
    name=_fields,
    value=st.text(max_size=30),
)
async def test_no_list_filter_is_a_server_error(
    client: Client, world: World, object_name: str, name: str, value: str
) -> None:
    async with client.get(
        f"/api/v1/records/{object_name}",
        params={
            name: value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        },
        headers={"Authorization": f"Bearer {world.acme.member_token}"},
    ) as response:
        not_a_server_error(response.status, await response.json())
