"""Merges racing each other, deadlocks retried, and a connection killed mid-merge."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.conftest import World
from tests.support import error_code, wait_for_blocked
from tests.test_merge_support import Client, Rows, merge_body, post_merge, snapshot


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Merges that queue on each other's row locks hold their pooled connection while
    # they wait; on a busy test machine the default 5 s acquire timeout could answer
    # 503 before the queue drains, which is not what these tests are about.
    return {"pool_max_size": 12, "pool_acquire_timeout": 60.0}


@pytest.fixture
def rows(conn: asyncpg.Connection, world: World) -> Rows:
    return Rows(conn, world.acme.schema)


async def _fetch_pairs(rows: Rows, query: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await rows.conn.fetch(query)]


async def test_many_overlapping_merges_at_once_keep_every_related_row(
    client: Client, world: World, rows: Rows
) -> None:
    chance = random.Random(20240611)
    contacts = [await rows.contact(first_name=f"c{i}") for i in range(16)]
    deals = [await rows.opportunity(f"deal {i}") for i in range(4)]
    for index, contact in enumerate(contacts):
        referrer = chance.choice([None, *contacts])
        if referrer is not None and referrer != contact:
            await rows.conn.execute(
                f"UPDATE {rows.table('contacts')} SET referred_by_id = $1 "
                "WHERE id = $2",
                referrer,
                contact,
            )
        for n in range(2):
            await rows.note(f"note {index}.{n}", contact_id=contact)
        for deal in chance.sample(deals, 2):
            await rows.link(deal, contact, f"role {index}")
    notes_before = dict(
        await _fetch_pairs(rows, f"SELECT id, contact_id FROM {rows.table('notes')}")
    )
    links_before = await _fetch_pairs(
        rows,
        f"SELECT opportunity_id, contact_id FROM {rows.table('opportunity_contacts')}",
    )
    refs_before = dict(
        await _fetch_pairs(
            rows, f"SELECT id, referred_by_id FROM {rows.table('contacts')}"
        )
    )
    groups = []
    for _ in range(32):
        picked = chance.sample(contacts, chance.randint(2, 4))
        groups.append((picked[0], picked[1:]))

    answers = await asyncio.gather(
        *(
            post_merge(client, world.acme.admin_token, merge_body(m, d))
            for m, d in groups
        )
    )

    statuses = [status for status, _ in answers]
    assert all(status in (200, 404, 409) for status in statuses), answers
    assert statuses.count(200) >= 1
    deleted_by: dict[UUID, UUID] = {}
    dropped = 0
    for (master, duplicates), (status, body) in zip(groups, answers, strict=True):
        if status != 200:
            assert error_code(body) in ("RECORD_NOT_FOUND", "CONFLICT")
            continue
        dropped += body["junction_rows_dropped"]["opportunity_contacts"]
        for duplicate in duplicates:
            # One identity is never split: a record is deleted by one merge only.
            assert duplicate not in deleted_by
            deleted_by[duplicate] = master
    surviving = {
        r["id"]
        for r in await rows.conn.fetch(f"SELECT id FROM {rows.table('contacts')}")
    }
    assert surviving == set(contacts) - set(deleted_by)

    def representative(contact: UUID) -> UUID:
        while contact in deleted_by:
            contact = deleted_by[contact]
        return contact

    notes_after = dict(
        await _fetch_pairs(rows, f"SELECT id, contact_id FROM {rows.table('notes')}")
    )
    assert set(notes_after) == set(notes_before)
    for note, contact in notes_before.items():
        assert notes_after[note] == representative(contact)
    links_after = await _fetch_pairs(
        rows,
        f"SELECT opportunity_id, contact_id FROM {rows.table('opportunity_contacts')}",
    )
    assert set(links_after) == {(o, representative(c)) for o, c in links_before}
    assert len(links_after) == len(links_before) - dropped
    refs_after = dict(
        await _fetch_pairs(
            rows, f"SELECT id, referred_by_id FROM {rows.table('contacts')}"
        )
    )
    for contact in surviving:
        original = refs_before[contact]
        expected = representative(original) if original is not None else None
        assert refs_after[contact] == (None if expected == contact else expected)
    assert await rows.count("merge_audit") == statuses.count(200)


async def test_merges_in_opposite_directions_let_one_win_and_answer_404(
    client: Client, world: World, rows: Rows
) -> None:
    pairs = [(await rows.contact(), await rows.contact()) for _ in range(6)]
    token = world.acme.admin_token

    answers = await asyncio.gather(
        *(
            post_merge(
                client, token, merge_body(a, [b]) if flip else merge_body(b, [a])
            )
            for a, b in pairs
            for flip in (True, False)
        )
    )

    for index in range(len(pairs)):
        first, second = answers[2 * index], answers[2 * index + 1]
        assert sorted([first[0], second[0]]) == [200, 404], (first, second)
    assert await rows.count("contacts") == len(pairs)


async def test_a_deadlock_between_two_merges_is_retried_and_both_succeed(
    client: Client,
    world: World,
    rows: Rows,
    server_dsn: str,
    db_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Each merge's master is referred to by the other merge's duplicate, so each one
    # has to update a row the other has locked: a deadlock once both hold their locks.
    # A table in another schema referencing contacts is read by both merges after
    # they lock their records; holding it locked lines the two merges up.
    await rows.conn.execute(
        "CREATE TABLE public.outside_refs ("
        f" contact_id uuid REFERENCES {rows.table('contacts')} (id))"
    )
    first_master = await rows.contact()
    second_master = await rows.contact()
    first_duplicate = await rows.contact(referred_by_id=second_master)
    second_duplicate = await rows.contact(referred_by_id=first_master)
    await rows.conn.execute(
        f"UPDATE {rows.table('contacts')} SET referred_by_id = $1 WHERE id = $2",
        second_duplicate,
        first_master,
    )
    await rows.conn.execute(
        f"UPDATE {rows.table('contacts')} SET referred_by_id = $1 WHERE id = $2",
        first_duplicate,
        second_master,
    )
    caplog.set_level(logging.INFO, logger="dupes.events")
    holder = await asyncpg.connect(db_dsn)
    try:
        gate = holder.transaction()
        await gate.start()
        await holder.execute("LOCK TABLE public.outside_refs IN ACCESS EXCLUSIVE MODE")
        token = world.acme.admin_token
        racing = asyncio.gather(
            post_merge(client, token, merge_body(first_master, [first_duplicate])),
            post_merge(client, token, merge_body(second_master, [second_duplicate])),
        )
        await wait_for_blocked(holder, 2)
        await gate.rollback()
        answers = await racing
    finally:
        await holder.close()

    assert [status for status, _ in answers] == [200, 200], answers
    attempts = [getattr(r, "attempts", 1) for r in caplog.records]
    assert max(attempts) >= 2, "neither merge was retried"
    survivors = await rows.conn.fetch(
        f"SELECT id, referred_by_id FROM {rows.table('contacts')}"
    )
    assert {r["id"] for r in survivors} == {first_master, second_master}
    for survivor in survivors:
        assert survivor["referred_by_id"] in (first_master, second_master, None)


async def test_a_connection_killed_mid_merge_changes_nothing_and_answers_503(
    client: Client, world: World, rows: Rows, db_dsn: str
) -> None:
    master = await rows.contact(first_name=None)
    duplicate = await rows.contact(first_name="Dee")
    referred = await rows.contact(referred_by_id=duplicate)
    notes = [await rows.note(f"n{i}", contact_id=duplicate) for i in range(3)]
    deal = await rows.opportunity(primary_contact_id=duplicate)
    link = await rows.link(deal, duplicate, "buyer")
    before = await snapshot(rows.conn, world.acme.schema)
    holder = await asyncpg.connect(db_dsn)
    try:
        # The merge moves contacts.referred_by_id, notes and opportunities before it
        # reaches opportunity_contacts, where this row lock stops it: it is killed
        # with those statements done and uncommitted.
        gate = holder.transaction()
        await gate.start()
        await holder.execute(
            f"SELECT 1 FROM {rows.table('opportunity_contacts')} WHERE id = $1 "
            "FOR UPDATE",
            link,
        )
        merging = asyncio.ensure_future(
            post_merge(
                client,
                world.acme.admin_token,
                merge_body(master, [duplicate], merge_strategy="fill_blanks"),
            )
        )
        [pid] = await wait_for_blocked(holder, 1)
        await holder.execute("SELECT pg_stat_clear_snapshot()")
        waiting_on = await holder.fetchval(
            "SELECT query FROM pg_stat_activity WHERE pid = $1", pid
        )
        assert "opportunity_contacts" in waiting_on
        assert await holder.fetchval("SELECT pg_terminate_backend($1)", pid)
        status, body = await merging
        await gate.rollback()
    finally:
        await holder.close()

    assert status == 503, body
    assert error_code(body) == "UNAVAILABLE"
    assert await snapshot(rows.conn, world.acme.schema) == before
    assert await rows.column("contacts", "referred_by_id", referred) == duplicate
    for note in notes:
        assert await rows.column("notes", "contact_id", note) == duplicate
    # The pool replaces the dead connection: the same merge now goes through.
    status, body = await post_merge(
        client, world.acme.admin_token, merge_body(master, [duplicate])
    )
    assert status == 200, body
    assert await rows.column("opportunity_contacts", "contact_id", link) == master


async def test_a_link_repeated_by_a_concurrent_merge_of_the_other_object_is_dropped(
    client: Client, world: World, rows: Rows, db_dsn: str
) -> None:
    # A merge of deals (old_deal into deal) would move (old_deal, contact) onto
    # (deal, contact) while a merge of contacts moves (deal, old_contact) onto the
    # same pair. Neither locks the other's records. Here the deal merge is played by
    # a transaction that has moved its link and not yet committed.
    deal, old_deal = await rows.opportunity(), await rows.opportunity()
    contact, old_contact = await rows.contact(), await rows.contact()
    moved_link = await rows.link(old_deal, contact, "champion")
    await rows.link(deal, old_contact, "buyer")
    holder = await asyncpg.connect(db_dsn)
    try:
        gate = holder.transaction()
        await gate.start()
        await holder.execute(
            f"UPDATE {rows.table('opportunity_contacts')} SET opportunity_id = $1 "
            "WHERE id = $2",
            deal,
            moved_link,
        )
        merging = asyncio.ensure_future(
            post_merge(
                client, world.acme.admin_token, merge_body(contact, [old_contact])
            )
        )
        # The contact merge has found no repeat and now waits on the moved link.
        await wait_for_blocked(holder, 1)
        await gate.commit()
        status, body = await merging
    finally:
        await holder.close()

    assert status == 200, body
    assert body["junction_rows_dropped"] == {"opportunity_contacts": 1}
    links = await _fetch_pairs(
        rows,
        "SELECT opportunity_id, contact_id, role "
        f"FROM {rows.table('opportunity_contacts')}",
    )
    assert links == [(deal, contact, "champion")]
