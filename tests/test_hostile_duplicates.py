"""Hostile bodies on `POST /api/v1/duplicates`: every one is a 4xx in the error shape
and changes nothing; none is a 500."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import World
from tests.hostile_support import Client, not_a_server_error, refused, send
from tests.test_merge_support import Rows, merge_body, snapshot

PATH = "/api/v1/duplicates"
SOME_ID = "550e8400-e29b-41d4-a716-446655440000"
OTHER_ID = "660f9511-f3ac-52e5-b827-557766551111"


@pytest.fixture
def rows(conn: asyncpg.Connection, world: World) -> Rows:
    return Rows(conn, world.acme.schema)


def detect(**fields: Any) -> dict[str, Any]:
    return {"action": "detect", "object_name": "contacts", **fields}


def merge(**fields: Any) -> dict[str, Any]:
    body = merge_body(SOME_ID, [OTHER_ID])
    body.update(fields)
    return body


# Raw texts: JSON that Python's parser takes but that is no request, and non-JSON.
RAW_BODIES = [
    "null",
    "[]",
    '"detect"',
    "1",
    "true",
    "{}",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e309",
    "[" * 100_000,
    '{"action": "detect", "object_name": "contacts", "limit": NaN}',
    '{"action": "detect", "object_name": "contacts", "limit": Infinity}',
    '{"action": "detect", "object_name": "contacts", "limit": 1e309}',
    '{"action": "detect", "object_name": "contacts", "limit": ' + "9" * 5000 + "}",
    '{"action": "detect", "object_name": "contacts", "action": "merge"}',
    '{"action": "detect\\u0000", "object_name": "contacts"}',
    '{"action": "\\ud800", "object_name": "contacts"}',
    '{"action": "detect", "object_name": "\\ud800"}',
    '{"action": "detect", "object_name": "contacts\\u0000"}',
    '{"action": "merge", "object_name": "\\udfff", "master_id": "x"}',
    '{"\\ud800": 1, "action": "detect", "object_name": "contacts"}',
]


@pytest.mark.parametrize("raw", RAW_BODIES, ids=range(len(RAW_BODIES)))
async def test_raw_bodies_that_are_no_request_are_400(
    client: Client, world: World, conn: asyncpg.Connection, raw: str
) -> None:
    before = await snapshot(conn, world.acme.schema)
    status, body = await send(client, "POST", PATH, world.acme.admin_token, raw)
    assert refused(status, body, 400) in {"VALIDATION_ERROR", "INVALID_OBJECT"}
    assert await snapshot(conn, world.acme.schema) == before


async def test_a_body_that_is_not_utf8_is_400(client: Client, world: World) -> None:
    raw = b'{"action": "detect", "object_name": "contacts\xff\xfe"}'
    status, body = await send(client, "POST", PATH, world.acme.admin_token, raw)
    assert refused(status, body, 400) == "VALIDATION_ERROR"


BAD_DETECTS = [
    {"action": None},
    {"action": ["detect"]},
    {"action": {"detect": True}},
    {"action": "DETECT", "object_name": "contacts"},
    {"action": "detect"},
    detect(object_name=None),
    detect(object_name=1),
    detect(object_name=["contacts"]),
    detect(object_name={"name": "contacts"}),
    detect(object_name=""),
    detect(object_name="x" * 100_000),
    detect(object_name="CONTACTS"),
    detect(object_name="contacts "),
    detect(object_name="merge_audit"),
    detect(object_name="match_keys"),
    detect(object_name="opportunity_contacts"),
    detect(fields="email"),
    detect(fields=[["email"]]),
    detect(fields=[None]),
    detect(fields=["EMAIL"]),
    detect(fields=["email\u0000"]),
    detect(fields=[]),
    detect(fields={"email": True}),
    detect(fields=["email"] * 10_000 + ["id"]),
    detect(object_name="opportunities", fields=["email"]),
    detect(object_name="notes", fields=["name"]),
    detect(limit=True),
    detect(limit="5"),
    detect(limit=5.0),
    detect(limit=0),
    detect(limit=-1),
    detect(limit=1001),
    detect(limit=10**30),
    detect(limit=-(10**30)),
    detect(limit=[5]),
    detect(limit={"value": 5}),
    detect(limt=5),
    detect(master_id=SOME_ID),
    detect(**{"": 1}),
]


@pytest.mark.parametrize("payload", BAD_DETECTS, ids=range(len(BAD_DETECTS)))
async def test_bad_detect_requests_are_400(
    client: Client, world: World, payload: dict[str, Any]
) -> None:
    status, body = await send(
        client, "POST", PATH, world.acme.admin_token, json.dumps(payload)
    )
    assert refused(status, body, 400) in {"VALIDATION_ERROR", "INVALID_OBJECT"}


BAD_MERGES = [
    merge(object_name=None),
    merge(object_name="contacts\u0000"),
    merge(object_name="merge_audit"),
    merge(object_name="match_keys"),
    merge(master_id=None),
    merge(master_id=12345),
    merge(master_id=2**128 - 1),
    merge(master_id=1.5),
    merge(master_id=[SOME_ID]),
    merge(master_id={"id": SOME_ID}),
    merge(master_id=""),
    merge(master_id="not-a-uuid"),
    merge(master_id=SOME_ID + "\u0000"),
    merge(master_id="\ud800" * 36),
    merge(master_id="x" * 100_000),
    merge(master_id="{" + SOME_ID + "}"),
    merge(master_id="urn:uuid:" + SOME_ID),
    merge(master_id=SOME_ID.replace("-", "")),
    merge(duplicate_ids=["{" + OTHER_ID + "}"]),
    merge(duplicate_ids=OTHER_ID),
    merge(duplicate_ids=[[OTHER_ID]]),
    merge(duplicate_ids=[None]),
    merge(duplicate_ids=[]),
    merge(duplicate_ids=None),
    merge(duplicate_ids={"a": OTHER_ID}),
    merge(duplicate_ids=[OTHER_ID, OTHER_ID]),
    merge(duplicate_ids=[OTHER_ID, OTHER_ID.upper()]),
    merge(duplicate_ids=[SOME_ID.upper()]),
    merge(duplicate_ids=[str(uuid.uuid4()) for _ in range(101)]),
    merge(duplicate_ids=[OTHER_ID, 7]),
    merge(merge_strategy=None),
    merge(merge_strategy="KEEP_MASTER"),
    merge(merge_strategy="fill_blanks "),
    merge(merge_strategy=1),
    merge(merge_strategy=["fill_blanks"]),
    merge(dry_run="true"),
    merge(dry_run=1),
    merge(dry_run=None),
    merge(merge_stratgy="fill_blanks"),
    merge(fields=["email"]),
    merge(limit=5),
]


@pytest.mark.parametrize("payload", BAD_MERGES, ids=range(len(BAD_MERGES)))
async def test_bad_merge_requests_are_400_and_change_nothing(
    client: Client,
    world: World,
    conn: asyncpg.Connection,
    rows: Rows,
    payload: dict[str, Any],
) -> None:
    # The ids exist, so a request that slipped through validation would merge.
    await rows.insert("contacts", id=uuid.UUID(SOME_ID), email="a@x.test")
    await rows.insert("contacts", id=uuid.UUID(OTHER_ID), email="a@x.test")
    before = await snapshot(conn, world.acme.schema)
    status, body = await send(
        client, "POST", PATH, world.acme.admin_token, json.dumps(payload)
    )
    assert refused(status, body, 400) in {"VALIDATION_ERROR", "INVALID_OBJECT"}
    assert await snapshot(conn, world.acme.schema) == before


async def test_a_key_given_twice_is_400_and_never_picks_a_value(
    client: Client, world: World, conn: asyncpg.Connection, rows: Rows
) -> None:
    await rows.insert("contacts", id=uuid.UUID(SOME_ID), email="a@x.test")
    await rows.insert("contacts", id=uuid.UUID(OTHER_ID), email="a@x.test")
    before = await snapshot(conn, world.acme.schema)
    fields = json.dumps(merge_body(SOME_ID, [OTHER_ID]))[1:-1]
    raw = "{" + fields + ', "dry_run": true, "dry_run": false}'
    status, body = await send(client, "POST", PATH, world.acme.admin_token, raw)
    assert refused(status, body, 400) == "VALIDATION_ERROR"
    assert "'dry_run' appears more than once" in body["error"]["message"]
    assert await snapshot(conn, world.acme.schema) == before


async def test_merge_accepts_an_uppercase_uuid_as_the_same_record(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact(email="a@x.test")
    duplicate = await rows.contact(email="a@x.test")
    payload = merge_body(str(master).upper(), [str(duplicate).upper()])
    status, body = await send(
        client, "POST", PATH, world.acme.admin_token, json.dumps(payload)
    )
    assert status == 200, body
    assert body["master_id"] == str(master)
    assert await rows.row("contacts", duplicate) is None


async def test_merge_of_ids_in_another_organization_is_404_listing_them(
    client: Client, world: World, conn: asyncpg.Connection, rows: Rows
) -> None:
    master = await rows.contact(email="a@x.test")
    theirs = await Rows(conn, world.globex.schema).contact(email="a@x.test")
    before_acme = await snapshot(conn, world.acme.schema)
    before_globex = await snapshot(conn, world.globex.schema)
    status, body = await send(
        client,
        "POST",
        PATH,
        world.acme.admin_token,
        json.dumps(merge_body(master, [theirs])),
    )
    assert refused(status, body, 404) == "RECORD_NOT_FOUND"
    assert body["error"]["details"] == [str(theirs)]
    assert await snapshot(conn, world.acme.schema) == before_acme
    assert await snapshot(conn, world.globex.schema) == before_globex


async def test_merge_of_records_of_another_object_is_404_and_changes_nothing(
    client: Client, world: World, conn: asyncpg.Connection, rows: Rows
) -> None:
    contact = await rows.contact(email="a@x.test")
    company = await rows.company("Acme")
    before = await snapshot(conn, world.acme.schema)
    for object_name, master, duplicate in [
        ("contacts", contact, company),
        ("companies", company, contact),
    ]:
        status, body = await send(
            client,
            "POST",
            PATH,
            world.acme.admin_token,
            json.dumps(merge_body(master, [duplicate], object_name)),
        )
        assert refused(status, body, 404) == "RECORD_NOT_FOUND"
        assert body["error"]["details"] == [str(duplicate)]
    assert await snapshot(conn, world.acme.schema) == before


async def test_merge_handles_records_that_refer_to_themselves(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.company("Acme")
    duplicate = await rows.company("Acme")
    child = await rows.company("Acme Child")
    # The master is its own parent, the duplicate too, and a third company hangs off
    # the duplicate: after the merge every reference points at the master.
    await rows.conn.execute(
        f"UPDATE {rows.table('companies')} SET parent_company_id = id "
        "WHERE id = ANY($1::uuid[])",
        [master, duplicate],
    )
    await rows.conn.execute(
        f"UPDATE {rows.table('companies')} SET parent_company_id = $1 WHERE id = $2",
        duplicate,
        child,
    )
    status, body = await send(
        client,
        "POST",
        PATH,
        world.acme.admin_token,
        json.dumps(merge_body(master, [duplicate], "companies")),
    )
    assert status == 200, body
    assert await rows.row("companies", duplicate) is None
    assert await rows.column("companies", "parent_company_id", master) == master
    assert await rows.column("companies", "parent_company_id", child) == master


async def test_merge_clears_a_master_referring_to_its_duplicate(
    client: Client, world: World, rows: Rows
) -> None:
    duplicate = await rows.contact(email="a@x.test")
    master = await rows.contact(email="a@x.test", referred_by_id=duplicate)
    await rows.conn.execute(
        f"UPDATE {rows.table('contacts')} SET referred_by_id = $1 WHERE id = $2",
        master,
        duplicate,
    )
    status, body = await send(
        client,
        "POST",
        PATH,
        world.acme.admin_token,
        json.dumps(merge_body(master, [duplicate])),
    )
    assert status == 200, body
    assert body["self_references_cleared"] == 1
    assert await rows.column("contacts", "referred_by_id", master) is None


# --- fuzzing ---------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        ["detect", "merge", "contacts", "companies", "email", SOME_ID, "\x00"]
    ),
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "action",
        "object_name",
        "fields",
        "limit",
        "master_id",
        "duplicate_ids",
        "merge_strategy",
        "dry_run",
    ]
)
_bodies = st.dictionaries(_keys, _json, max_size=6)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=_bodies)
async def test_no_duplicates_body_is_a_server_error(
    client: Client, world: World, payload: dict[str, Any]
) -> None:
    status, body = await send(
        client,
        "POST",
        PATH,
        world.acme.admin_token,
        json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"),
    )
    not_a_server_error(status, body)
