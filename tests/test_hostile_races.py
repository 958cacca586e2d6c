"""Requests racing each other over the same records: none is a 5xx, and the data
(rows, links, match keys) is whole and consistent afterwards."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from app.metadata import load_model
from app.services import retry
from app.services.keys import record_keys
from tests.conftest import World
from tests.hostile_support import Client, not_a_server_error, send
from tests.support import wait_for_blocked
from tests.test_merge_support import Rows, merge_body

DUPLICATES = "/api/v1/duplicates"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Requests that queue on each other's row locks hold a pooled connection while
    # they wait; a short acquire timeout would answer 503, which is not the point.
    return {"pool_max_size": 12, "pool_acquire_timeout": 60.0}


@pytest.fixture
def rows(conn: asyncpg.Connection, world: World) -> Rows:
    return Rows(conn, world.acme.schema)


async def keys_are_consistent(rows: Rows, world: World, object_name: str) -> None:
    """The stored match keys of every fresh record are exactly its computed keys, and
    no key names a record that is gone."""
    model = await load_model(rows.conn, world.acme.id)
    obj = model.object(object_name)
    records = await rows.conn.fetch(
        f"SELECT * FROM {rows.table(obj.table)} WHERE NOT keys_stale"
    )
    stored: dict[UUID, set[tuple[str, str]]] = {}
    for row in await rows.conn.fetch(
        f"SELECT record_id, field, key FROM {rows.table('match_keys')} "
        "WHERE object_name = $1",
        object_name,
    ):
        stored.setdefault(row["record_id"], set()).add((row["field"], row["key"]))
    every = {
        row["id"]
        for row in await rows.conn.fetch(f"SELECT id FROM {rows.table(obj.table)}")
    }
    assert set(stored) <= every, "match keys of deleted records remain"
    for record in records:
        expected = record_keys(obj, dict(record), "US")
        assert stored.get(record["id"], set()) == expected, record["id"]


async def dangling(rows: Rows) -> int:
    """References to contacts that do not exist (foreign keys should make it 0)."""
    value = await rows.conn.fetchval(
        f"SELECT count(*) FROM {rows.table('notes')} n WHERE n.contact_id IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {rows.table('contacts')} c "
        "WHERE c.id = n.contact_id)"
    )
    return int(value)


async def test_patches_racing_a_merge_are_never_a_server_error(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact(email="m@x.test", first_name="Ann", last_name="Lee")
    duplicates = [await rows.contact(email=f"d{i}@x.test") for i in range(3)]
    notes = [await rows.note("n", contact_id=d) for d in duplicates]
    opportunity = await rows.opportunity(primary_contact_id=duplicates[0])
    for duplicate in duplicates:
        await rows.link(opportunity, duplicate, "buyer")
    admin, member = world.acme.admin_token, world.acme.member_token

    async def patch(path: str, payload: dict[str, Any]) -> tuple[int, Any]:
        await asyncio.sleep(random.random() * 0.05)
        return await send(client, "PATCH", path, member, json.dumps(payload))

    calls = [
        send(
            client,
            "POST",
            DUPLICATES,
            admin,
            json.dumps(merge_body(master, duplicates, merge_strategy="fill_blanks")),
        )
    ]
    for index, duplicate in enumerate(duplicates):
        calls.append(
            patch(
                f"/api/v1/records/contacts/{duplicate}",
                {"email": f"changed{index}@x.test", "city": "Oslo"},
            )
        )
        calls.append(
            patch(f"/api/v1/records/notes/{notes[index]}", {"body": f"edit {index}"})
        )
    calls.append(patch(f"/api/v1/records/contacts/{master}", {"phone": "555-0100"}))
    calls.append(
        patch(
            f"/api/v1/records/opportunities/{opportunity}",
            {"primary_contact_id": str(duplicates[1])},
        )
    )
    answers = await asyncio.gather(*calls)
    for status, body in answers:
        not_a_server_error(status, body)
        # 409: a PATCH chosen as the victim of a deadlock with the merge.
        assert status in (200, 400, 404, 409), body
    assert answers[0][0] == 200, answers[0]
    assert await rows.count("contacts") == 1
    assert await rows.count("notes", "contact_id = $1", master) == len(notes)
    assert await rows.count("opportunity_contacts") == 1
    assert await rows.column("opportunities", "primary_contact_id", opportunity) in (
        master,
        None,
    )
    assert await dangling(rows) == 0
    await keys_are_consistent(rows, world, "contacts")


async def test_a_merge_racing_deletes_keeps_the_data_whole(
    client: Client, world: World, rows: Rows
) -> None:
    for _ in range(3):
        master = await rows.contact(email="m@x.test")
        duplicates = [await rows.contact(email="m@x.test") for _ in range(3)]
        for duplicate in duplicates:
            await rows.note("n", contact_id=duplicate)
        targets = [master, *duplicates]
        random.shuffle(targets)
        answers = await asyncio.gather(
            send(
                client,
                "POST",
                DUPLICATES,
                world.acme.admin_token,
                json.dumps(merge_body(master, duplicates)),
            ),
            *(
                send(
                    client,
                    "DELETE",
                    f"/api/v1/records/contacts/{target}",
                    world.acme.member_token,
                )
                for target in targets[:2]
            ),
        )
        merged, *deletes = answers
        not_a_server_error(*merged)
        assert merged[0] in (200, 404), merged
        for status, body in deletes:
            assert status in (204, 404), body
        left = await rows.count("contacts")
        if merged[0] == 200:
            for duplicate in duplicates:
                assert await rows.row("contacts", duplicate) is None
        else:
            # The merge lost to a delete: nothing of it happened.
            deleted = sum(1 for status, _ in deletes if status == 204)
            assert left == 4 - deleted
            assert await rows.count("merge_audit") == 0
        assert await dangling(rows) == 0
        await keys_are_consistent(rows, world, "contacts")
        await rows.conn.execute(f"DELETE FROM {rows.table('contacts')}")
        await rows.conn.execute(f"DELETE FROM {rows.table('merge_audit')}")


async def test_the_same_association_put_at_once_is_one_link(
    client: Client, world: World, rows: Rows
) -> None:
    opportunity = await rows.opportunity()
    contact = await rows.contact(email="a@x.test")
    path = (
        f"/api/v1/records/opportunities/{opportunity}/associations/contacts/{contact}"
    )
    answers = await asyncio.gather(
        *(
            send(
                client,
                "PUT",
                path,
                world.acme.member_token,
                json.dumps({"role": f"role {i}"}),
            )
            for i in range(10)
        )
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 9 + [201], answers
    assert await rows.count("opportunity_contacts") == 1


async def test_an_association_racing_its_removal_and_a_merge_is_whole(
    client: Client, world: World, rows: Rows
) -> None:
    opportunity = await rows.opportunity()
    master = await rows.contact(email="a@x.test")
    duplicate = await rows.contact(email="a@x.test")
    await rows.link(opportunity, master, "owner")
    base = f"/api/v1/records/opportunities/{opportunity}/associations/contacts"
    token = world.acme.member_token
    answers = await asyncio.gather(
        send(client, "PUT", f"{base}/{duplicate}", token, '{"role": "buyer"}'),
        send(client, "PUT", f"{base}/{duplicate}", token, '{"role": "payer"}'),
        send(client, "DELETE", f"{base}/{master}", token),
        send(
            client,
            "POST",
            DUPLICATES,
            world.acme.admin_token,
            json.dumps(merge_body(master, [duplicate])),
        ),
    )
    for status, body in answers:
        not_a_server_error(status, body)
    assert answers[3][0] == 200, answers[3]
    links = await rows.conn.fetch(
        f"SELECT contact_id FROM {rows.table('opportunity_contacts')}"
    )
    assert [link["contact_id"] for link in links] in ([], [master])


async def test_the_same_rows_imported_at_once_are_created_once(
    client: Client, world: World, rows: Rows
) -> None:
    records = [{"email": f"p{i}@x.test", "last_name": f"P{i}"} for i in range(10)]
    body = json.dumps({"records": records})
    answers = await asyncio.gather(
        *(
            send(
                client, "POST", "/api/v1/import/contacts", world.acme.admin_token, body
            )
            for _ in range(4)
        )
    )
    for status, answer in answers:
        assert status == 200, answer
    assert sum(answer["created"] for _, answer in answers) == len(records)
    assert sum(answer["duplicates"] for _, answer in answers) == 3 * len(records)
    assert await rows.count("contacts") == len(records)
    await keys_are_consistent(rows, world, "contacts")


async def test_concurrent_patches_of_one_record_leave_its_keys_right(
    client: Client, world: World, rows: Rows
) -> None:
    contact = await rows.contact(email="start@x.test")
    path = f"/api/v1/records/contacts/{contact}"
    answers = await asyncio.gather(
        *(
            send(
                client,
                "PATCH",
                path,
                world.acme.member_token,
                json.dumps(
                    {
                        "email": f"e{i}@x.test",
                        "additional_phones": [f"555-01{i:02d}"],
                        "first_name": f"F{i}",
                        "last_name": "L",
                    }
                ),
            )
            for i in range(12)
        )
    )
    for status, body in answers:
        assert status == 200, body
    await keys_are_consistent(rows, world, "contacts")


async def test_detect_while_records_are_written_and_merged(
    client: Client, world: World, rows: Rows
) -> None:
    admin, member = world.acme.admin_token, world.acme.member_token
    seeded = [await rows.contact(email=f"s{i % 4}@x.test") for i in range(12)]

    async def writes() -> list[tuple[int, Any]]:
        done = []
        for i in range(8):
            done.append(
                await send(
                    client,
                    "POST",
                    "/api/v1/records/contacts",
                    member,
                    json.dumps({"email": f"s{i % 4}@x.test", "phone": "555-0100"}),
                )
            )
            done.append(
                await send(
                    client,
                    "PATCH",
                    f"/api/v1/records/contacts/{seeded[i]}",
                    member,
                    json.dumps({"email": f"s{(i + 1) % 4}@x.test"}),
                )
            )
        return done

    async def behind_the_back() -> None:
        # Rows written with plain SQL are stale until detection re-keys them.
        for i in range(8):
            await rows.contact(email=f"s{i % 4}@x.test")
            await asyncio.sleep(0.01)

    async def merges() -> list[tuple[int, Any]]:
        return [
            await send(
                client,
                "POST",
                DUPLICATES,
                admin,
                json.dumps(merge_body(seeded[8 + i], [seeded[i + 10]])),
            )
            for i in range(2)
        ]

    async def detects() -> list[tuple[int, Any]]:
        return [
            await send(
                client,
                "POST",
                DUPLICATES,
                admin,
                json.dumps({"action": "detect", "object_name": "contacts"}),
            )
            for _ in range(6)
        ]

    written, _, merged, detected = await asyncio.gather(
        writes(), behind_the_back(), merges(), detects()
    )
    for status, body in [*written, *merged, *detected]:
        not_a_server_error(status, body)
        assert status in (200, 201, 404), body
    status, body = await send(
        client,
        "POST",
        DUPLICATES,
        admin,
        json.dumps({"action": "detect", "object_name": "contacts"}),
    )
    assert status == 200, body
    await keys_are_consistent(rows, world, "contacts")
    emails = {
        group["match_value"]: group["record_count"]
        for group in body["duplicate_groups"]
        if group["match_reason"] == "email"
    }
    actual = await rows.conn.fetch(
        f"SELECT lower(email) AS email, count(*) AS n FROM {rows.table('contacts')} "
        "GROUP BY 1 HAVING count(*) > 1"
    )
    assert emails == {row["email"]: row["n"] for row in actual}


@pytest.mark.parametrize("attempts", [1, retry.ATTEMPTS])
async def test_a_write_that_loses_a_deadlock_runs_again_or_is_409_unchanged(
    client: Client,
    world: World,
    rows: Rows,
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    attempts: int,
) -> None:
    monkeypatch.setattr(retry, "ATTEMPTS", attempts)
    contact = await rows.contact(email="a@x.test")
    note = await rows.note("before", contact_id=await rows.contact(email="b@x.test"))
    merger = await asyncpg.connect(db_dsn)
    try:
        # The PATCH holds the contact it names (its relation check locks it, as the
        # foreign key would) and then waits for the note, which this transaction has
        # updated; this transaction then asks for the contact. The PATCH started
        # waiting first, so PostgreSQL aborts it when it finds the cycle.
        async with merger.transaction():
            await merger.execute(
                f"UPDATE {rows.table('notes')} SET body = 'merged' WHERE id = $1", note
            )
            patch = asyncio.create_task(
                send(
                    client,
                    "PATCH",
                    f"/api/v1/records/notes/{note}",
                    world.acme.member_token,
                    json.dumps({"body": "after", "contact_id": str(contact)}),
                )
            )
            await wait_for_blocked(merger, 1)
            await merger.execute(
                f"SELECT 1 FROM {rows.table('contacts')} WHERE id = $1 FOR UPDATE",
                contact,
            )
        status, body = await patch
    finally:
        await merger.close()
    if attempts == 1:
        # Nothing left to try: the client is asked to, and nothing of it was kept.
        assert status == 409, body
        assert body["error"]["code"] == "CONFLICT"
        assert await rows.column("notes", "body", note) == "merged"
    else:
        # Run again once the other transaction is done: it wins, after it.
        assert status == 200, body
        assert (body["body"], body["contact_id"]) == ("after", str(contact))
        assert await rows.column("notes", "body", note) == "after"
