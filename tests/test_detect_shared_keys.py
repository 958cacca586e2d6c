"""The shared keys detection reads stay equal to what match_keys says, however the
keys change: SQL writes, deletes, moved created_at, truncation, concurrent writers.

The reference is computed here from match_keys and the records directly, the slow
way; shared_keys must hold exactly that after each refresh.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from app.metadata import ObjectMeta, load_model
from app.services.detect import refresh_shared_keys
from app.services.keys import rekey_stale
from app.sql import quote_ident
from tests.conftest import World
from tests.test_detect import BASE, Records, detect_contacts, id_sets, ids

Client = TestClient[Any, Any]

EMAILS = ["a@example.com", "A@Example.com ", "b@example.com", "c@example.com", None]
PHONES = ["212-555-0100", "(212) 555-0100", "212.555.0199", "000-000-0000", None]
NAMES = [("Ann", "Lee"), ("ANN", "lee"), ("Bo", "Kim"), (None, "Kim")]


@pytest.fixture
def acme(conn: asyncpg.Connection, world: World) -> Records:
    return Records(conn, world.acme.schema)


async def contacts_meta(conn: asyncpg.Connection, world: World) -> ObjectMeta:
    return (await load_model(conn, world.acme.id)).object("contacts")


async def refresh(conn: asyncpg.Connection, schema: str, obj: ObjectMeta) -> str:
    await rekey_stale(conn, schema, obj, "US")
    return await refresh_shared_keys(conn, schema, obj)


async def expected_shared_keys(
    conn: asyncpg.Connection, schema: str
) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(
        f"""
        SELECT k.field, k.key,
            array_agg(k.record_id ORDER BY t.created_at, k.record_id) AS members,
            min(t.created_at) AS oldest_at, max(t.created_at) AS newest_at
        FROM {quote_ident(schema)}.match_keys AS k
        JOIN {quote_ident(schema)}.contacts AS t ON t.id = k.record_id
        WHERE k.object_name = 'contacts'
        GROUP BY k.field, k.key
        HAVING count(*) >= 2
        ORDER BY k.field, k.key
        """
    )
    return [
        (r["field"], r["key"], r["members"], r["oldest_at"], r["newest_at"])
        for r in rows
    ]


async def stored_shared_keys(
    conn: asyncpg.Connection, schema: str
) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(
        f"""
        SELECT field, key, members, oldest_at, newest_at, newest_id
        FROM {quote_ident(schema)}.shared_keys
        WHERE object_name = 'contacts'
        ORDER BY field, key
        """
    )
    for row in rows:
        assert row["newest_id"] == row["members"][-1]
    return [
        (r["field"], r["key"], r["members"], r["oldest_at"], r["newest_at"])
        for r in rows
    ]


async def assert_in_step(conn: asyncpg.Connection, schema: str) -> None:
    assert await stored_shared_keys(conn, schema) == await expected_shared_keys(
        conn, schema
    )


async def random_change(
    rng: random.Random,
    conn: asyncpg.Connection,
    records: Records,
    live: list[uuid.UUID],
) -> None:
    table = f"{quote_ident(records.schema)}.contacts"
    roll = rng.random()
    if roll < 0.45 or len(live) < 3:
        first, last = rng.choice(NAMES)
        live.append(
            await records.contact(
                first_name=first,
                last_name=last,
                email=rng.choice(EMAILS),
                phone=rng.choice(PHONES),
                additional_emails=[rng.choice(EMAILS[:4])]
                if rng.random() < 0.3
                else None,
            )
        )
    elif roll < 0.65:
        await conn.execute(
            f"UPDATE {table} SET email = $1 WHERE id = $2",
            rng.choice(EMAILS),
            rng.choice(live),
        )
    elif roll < 0.75:
        await conn.execute(
            f"UPDATE {table} SET phone = $1 WHERE id = $2",
            rng.choice(PHONES),
            rng.choice(live),
        )
    elif roll < 0.88:
        victim = live.pop(rng.randrange(len(live)))
        await conn.execute(f"DELETE FROM {table} WHERE id = $1", victim)
    else:
        await conn.execute(
            f"UPDATE {table} SET created_at = $1 WHERE id = $2",
            BASE + timedelta(minutes=rng.randrange(-500, 500)),
            rng.choice(live),
        )


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_shared_keys_follow_random_sql_writes(
    conn: asyncpg.Connection, world: World, acme: Records, seed: int
) -> None:
    rng = random.Random(seed)
    obj = await contacts_meta(conn, world)
    live: list[uuid.UUID] = []
    assert await refresh(conn, world.acme.schema, obj) == "rebuilt"
    for step in range(60):
        await random_change(rng, conn, acme, live)
        if step % 4 == 3:
            assert await refresh(conn, world.acme.schema, obj) in ("applied", "fresh")
            await assert_in_step(conn, world.acme.schema)
    await refresh(conn, world.acme.schema, obj)
    await assert_in_step(conn, world.acme.schema)
    assert await stored_shared_keys(conn, world.acme.schema), "the test made no groups"


async def test_nothing_logged_means_nothing_to_do(
    conn: asyncpg.Connection, world: World, acme: Records
) -> None:
    obj = await contacts_meta(conn, world)
    await acme.contact(email="a@example.com")
    await acme.contact(email="a@example.com")
    assert await refresh(conn, world.acme.schema, obj) == "rebuilt"
    assert await refresh(conn, world.acme.schema, obj) == "fresh"
    await acme.contact(email="a@example.com")
    assert await refresh(conn, world.acme.schema, obj) == "applied"
    await assert_in_step(conn, world.acme.schema)


async def test_a_large_backlog_is_rebuilt_in_full(
    conn: asyncpg.Connection, world: World, acme: Records
) -> None:
    obj = await contacts_meta(conn, world)
    await refresh(conn, world.acme.schema, obj)
    for index in range(6):
        await acme.contact(email=f"x{index % 2}@example.com", phone="212-555-0100")
    await rekey_stale(conn, world.acme.schema, obj, "US")
    outcome = await refresh_shared_keys(conn, world.acme.schema, obj, rebuild_at=5)
    assert outcome == "rebuilt"
    await assert_in_step(conn, world.acme.schema)
    pending = await conn.fetchval(
        f"SELECT count(*) FROM {quote_ident(world.acme.schema)}.match_key_changes"
    )
    assert pending == 0


async def test_truncating_the_records_forgets_their_shared_keys(
    client: Client, conn: asyncpg.Connection, world: World, acme: Records
) -> None:
    await acme.contact(email="a@example.com")
    await acme.contact(email="a@example.com")
    assert (await detect_contacts(client, world.acme))["total_groups"] == 1
    await conn.execute(f"TRUNCATE {quote_ident(world.acme.schema)}.contacts CASCADE")
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 0
    assert payload["records_scanned"] == 0


async def test_deleted_records_leave_their_groups(
    client: Client, conn: asyncpg.Connection, world: World, acme: Records
) -> None:
    a = await acme.contact(email="a@example.com", phone="212-555-0100")
    b = await acme.contact(email="a@example.com")
    c = await acme.contact(phone="(212) 555-0100")
    payload = await detect_contacts(client, world.acme)
    assert sorted(id_sets(payload), key=sorted) == sorted(
        [ids(a, b), ids(a, c)], key=sorted
    )
    await conn.execute(
        f"DELETE FROM {quote_ident(world.acme.schema)}.contacts WHERE id = $1", a
    )
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 0


@pytest.mark.parametrize("settings_overrides", [{"detect_window": 2}])
async def test_a_moved_created_at_moves_the_record_into_the_window(
    client: Client, conn: asyncpg.Connection, world: World, acme: Records
) -> None:
    old = await acme.contact(email="a@example.com")
    older = await acme.contact(email="a@example.com", created_at=BASE)
    await acme.contact(city="One")
    await acme.contact(city="Two")
    assert (await detect_contacts(client, world.acme))["total_groups"] == 0
    await conn.execute(
        f"UPDATE {quote_ident(world.acme.schema)}.contacts SET created_at = $1 "
        "WHERE id = $2",
        BASE + timedelta(days=30),
        old,
    )
    payload = await detect_contacts(client, world.acme)
    [group] = payload["duplicate_groups"]
    # The moved record is now the newest: in the window, and listed last.
    assert [r["id"] for r in group["records"]] == [str(older), str(old)]


async def test_refreshes_racing_with_writers_end_in_step(
    db_dsn: str, conn: asyncpg.Connection, world: World
) -> None:
    obj = await contacts_meta(conn, world)
    schema = world.acme.schema
    await refresh(conn, schema, obj)

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        own = await asyncpg.connect(db_dsn)
        try:
            records = Records(own, schema)
            live: list[uuid.UUID] = []
            for _ in range(25):
                await random_change(rng, own, records, live)
        finally:
            await own.close()

    async def refresher() -> None:
        own = await asyncpg.connect(db_dsn)
        try:
            for _ in range(15):
                await refresh(own, schema, obj)
                await asyncio.sleep(0)
        finally:
            await own.close()

    await asyncio.gather(writer(7), writer(8), refresher(), refresher())
    await refresh(conn, schema, obj)
    await assert_in_step(conn, schema)


async def test_a_group_naming_a_vanished_record_is_answered_without_it(
    client: Client, conn: asyncpg.Connection, world: World, acme: Records
) -> None:
    a = await acme.contact(email="a@example.com")
    await acme.contact(email="a@example.com")
    await detect_contacts(client, world.acme)
    ghost = uuid.uuid4()
    # A row no refresh will correct, as a write racing every read attempt would leave.
    await conn.execute(
        f"INSERT INTO {quote_ident(world.acme.schema)}.shared_keys "
        "(object_name, field, key, members, oldest_at, newest_at, newest_id) "
        "VALUES ('contacts', 'phone', '+12125550100', $1, $2, $3, $4)",
        [a, ghost],
        BASE,
        BASE + timedelta(days=400),
        ghost,
    )
    payload = await detect_contacts(client, world.acme, fields=["phone"])
    [group] = payload["duplicate_groups"]
    assert [r["id"] for r in group["records"]] == [str(a)]
    assert group["record_count"] == 2
