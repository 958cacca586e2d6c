"""Merge: the contract, every reference moved, junctions, self-references, strategies,
dry run and audit. Rows are made with plain SQL in the organization's schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from app.metadata import FieldMeta, ObjectMeta
from app.services.merge import is_blank, resolve_fields
from tests.conftest import World
from tests.support import error_code
from tests.test_merge_support import Client, Rows, merge_body, post_merge, snapshot


@pytest.fixture
def rows(conn: asyncpg.Connection, world: World) -> Rows:
    return Rows(conn, world.acme.schema)


async def _merge(
    client: Client, world: World, body: dict[str, Any], status: int = 200
) -> dict[str, Any]:
    got, payload = await post_merge(client, world.acme.admin_token, body)
    assert got == status, payload
    return payload


# The contract --------------------------------------------------------------------


async def test_merge_answers_upstream_fields_and_the_report(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact(first_name="Alice", email="alice@example.com")
    duplicate = await rows.contact(first_name="Alice", email="alice@example.com")
    await rows.note(contact_id=duplicate)

    body = await _merge(client, world, merge_body(master, [duplicate]))

    assert body["master_id"] == str(master)
    assert body["duplicates_deleted"] == 1
    assert body["strategy"] == "keep_master"
    assert body["relinked"] == {
        "contacts.referred_by_id": 0,
        "notes.contact_id": 1,
        "opportunities.primary_contact_id": 0,
        "opportunity_contacts.contact_id": 0,
    }
    assert body["junction_rows_dropped"] == {"opportunity_contacts": 0}
    assert body["self_references_cleared"] == 0
    assert body["dry_run"] is False
    assert body["master"]["id"] == str(master)
    assert body["master"]["email"] == "alice@example.com"
    assert body["audit_id"]
    assert await rows.row("contacts", duplicate) is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"master_id": "not-a-uuid"}, "malformed master_id"),
        ({"master_id": 12}, "master_id of the wrong type"),
        ({"duplicate_ids": []}, "empty duplicate_ids"),
        ({"duplicate_ids": ["nope"]}, "malformed duplicate id"),
        ({"duplicate_ids": "x"}, "duplicate_ids not a list"),
        ({"duplicate_ids": [str(uuid.uuid4()) for _ in range(101)]}, "101 ids"),
        ({"merge_strategy": "newest_wins"}, "unknown strategy"),
        ({"merge_strategy": None}, "null strategy"),
        ({"merge_stratgy": "fill_blanks"}, "misspelt field"),
        ({"dry_run": "true"}, "dry_run as text"),
        ({"dry_run": 1}, "dry_run as a number"),
        ({"object_name": 5}, "object_name not a string"),
        ({"object_name": None}, "object_name null"),
    ],
)
async def test_merge_refuses_a_bad_body_with_nothing_changed(
    client: Client,
    world: World,
    rows: Rows,
    conn: asyncpg.Connection,
    change: dict[str, Any],
    why: str,
) -> None:
    master = await rows.contact(first_name="M")
    duplicate = await rows.contact(first_name="D")
    await rows.note(contact_id=duplicate)
    before = await snapshot(conn, world.acme.schema)
    body = {**merge_body(master, [duplicate]), **change}

    payload = await _merge(client, world, body, status=400)

    assert error_code(payload) == "VALIDATION_ERROR", why
    assert await snapshot(conn, world.acme.schema) == before


@pytest.mark.parametrize("missing", ["master_id", "duplicate_ids", "object_name"])
async def test_merge_refuses_a_body_missing_a_required_field(
    client: Client, world: World, rows: Rows, missing: str
) -> None:
    master = await rows.contact()
    duplicate = await rows.contact()
    body = merge_body(master, [duplicate])
    del body[missing]
    payload = await _merge(client, world, body, status=400)
    assert error_code(payload) == "VALIDATION_ERROR"


async def test_merge_refuses_repeated_ids_in_any_spelling_with_nothing_changed(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    master = await rows.contact(first_name="M")
    duplicate = await rows.contact(first_name="D")
    before = await snapshot(conn, world.acme.schema)
    spelled = [str(duplicate), str(duplicate).upper()]

    payload = await _merge(client, world, merge_body(master, spelled), status=400)

    assert error_code(payload) == "VALIDATION_ERROR"
    assert "more than once" in payload["error"]["message"]
    assert await snapshot(conn, world.acme.schema) == before


async def test_merge_refuses_the_master_among_the_duplicates_with_nothing_changed(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    master = await rows.contact(first_name="M")
    duplicate = await rows.contact(first_name="D")
    await rows.note(contact_id=duplicate)
    before = await snapshot(conn, world.acme.schema)

    payload = await _merge(
        client, world, merge_body(master, [duplicate, master]), status=400
    )

    assert error_code(payload) == "VALIDATION_ERROR"
    assert "master_id" in payload["error"]["message"]
    assert await snapshot(conn, world.acme.schema) == before


async def test_merge_checks_the_body_before_the_object(
    client: Client, world: World
) -> None:
    body = merge_body(uuid.uuid4(), [], object_name="unicorns")
    payload = await _merge(client, world, body, status=400)
    assert error_code(payload) == "VALIDATION_ERROR"


async def test_merge_checks_the_object_before_existence(
    client: Client, world: World
) -> None:
    body = merge_body(uuid.uuid4(), [uuid.uuid4()], object_name="unicorns")
    payload = await _merge(client, world, body, status=400)
    assert error_code(payload) == "INVALID_OBJECT"


async def test_member_token_gets_403_even_with_a_broken_body(
    client: Client, world: World
) -> None:
    status, payload = await post_merge(client, world.acme.member_token, "{broken")
    assert status == 403
    assert error_code(payload) == "PERMISSION_DENIED"


async def test_merge_of_missing_records_is_404_listing_them_with_nothing_changed(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    master = await rows.contact(first_name="M")
    present = await rows.contact(first_name="D")
    absent = uuid.uuid4()
    await rows.note(contact_id=present)
    before = await snapshot(conn, world.acme.schema)

    payload = await _merge(
        client, world, merge_body(master, [present, absent]), status=404
    )

    assert error_code(payload) == "RECORD_NOT_FOUND"
    assert payload["error"]["details"] == [str(absent)]
    assert await snapshot(conn, world.acme.schema) == before


async def test_merge_of_a_record_of_another_object_is_404(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact()
    company = await rows.company()
    payload = await _merge(client, world, merge_body(master, [company]), status=404)
    assert payload["error"]["details"] == [str(company)]


async def test_ids_of_another_organization_are_404_and_change_nothing_in_either(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    theirs = Rows(conn, world.globex.schema)
    their_master = await theirs.contact(first_name="G")
    their_duplicate = await theirs.contact(first_name="G")
    await theirs.note(contact_id=their_duplicate)
    ours = await rows.contact(first_name="A")
    before = (
        await snapshot(conn, world.acme.schema),
        await snapshot(conn, world.globex.schema),
    )

    whole = await _merge(
        client, world, merge_body(their_master, [their_duplicate]), status=404
    )
    mixed = await _merge(client, world, merge_body(ours, [their_duplicate]), status=404)
    unknown = await _merge(client, world, merge_body(ours, [uuid.uuid4()]), status=404)

    assert whole["error"]["details"] == [str(their_master), str(their_duplicate)]
    assert mixed["error"]["details"] == [str(their_duplicate)]
    # Answered exactly like an id that exists nowhere: same code, same wording.
    assert mixed["error"]["message"] == unknown["error"]["message"]
    after = (
        await snapshot(conn, world.acme.schema),
        await snapshot(conn, world.globex.schema),
    )
    assert after == before


# Every reference moves ---------------------------------------------------------------


async def test_merge_moves_every_note_of_every_duplicate_to_the_master(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact()
    first = await rows.contact()
    second = await rows.contact()
    notes = [await rows.note(f"n{i}", contact_id=first) for i in range(3)]
    notes += [await rows.note(f"m{i}", contact_id=second) for i in range(2)]
    own = await rows.note("mine", contact_id=master)

    body = await _merge(client, world, merge_body(master, [first, second]))

    assert body["relinked"]["notes.contact_id"] == 5
    for note in [*notes, own]:
        # notes cascade on delete: each one surviving proves it moved first.
        assert await rows.column("notes", "contact_id", note) == master
    assert await rows.count("contacts") == 1


async def test_merge_repoints_opportunity_primary_contacts(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact()
    duplicate = await rows.contact()
    deal = await rows.opportunity(primary_contact_id=duplicate)

    body = await _merge(client, world, merge_body(master, [duplicate]))

    assert body["relinked"]["opportunities.primary_contact_id"] == 1
    assert await rows.column("opportunities", "primary_contact_id", deal) == master


async def test_merge_relinks_a_table_added_by_hand(
    client: Client, world: World, rows: Rows
) -> None:
    await rows.execute(
        "CREATE TABLE call_logs ("
        " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        " who uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,"
        " minutes integer)"
    )
    master = await rows.contact()
    duplicate = await rows.contact()
    calls = [await rows.insert("call_logs", who=duplicate, minutes=i) for i in range(4)]

    body = await _merge(client, world, merge_body(master, [duplicate]))

    assert body["relinked"]["call_logs.who"] == 4
    for call in calls:
        assert await rows.column("call_logs", "who", call) == master


async def test_merge_of_companies_moves_every_company_reference(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.company("Acme")
    duplicate = await rows.company("ACME Inc")
    child = await rows.company("Acme Labs", parent_company_id=duplicate)
    person = await rows.contact(company_id=duplicate)
    deal = await rows.opportunity(company_id=duplicate)
    note = await rows.note(company_id=duplicate)

    body = await _merge(
        client, world, merge_body(master, [duplicate], object_name="companies")
    )

    assert body["relinked"] == {
        "companies.parent_company_id": 1,
        "contacts.company_id": 1,
        "notes.company_id": 1,
        "opportunities.company_id": 1,
    }
    assert body["junction_rows_dropped"] == {}
    assert await rows.column("companies", "parent_company_id", child) == master
    assert await rows.column("contacts", "company_id", person) == master
    assert await rows.column("opportunities", "company_id", deal) == master
    assert await rows.column("notes", "company_id", note) == master


async def test_merge_of_opportunities_moves_their_contact_links(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.opportunity("Big deal")
    duplicate = await rows.opportunity("Big deal (2)")
    shared = await rows.contact()
    only_duplicate = await rows.contact()
    kept = await rows.link(master, shared, "buyer")
    repeat = await rows.link(duplicate, shared, "user")
    moved = await rows.link(duplicate, only_duplicate, "champion")

    body = await _merge(
        client, world, merge_body(master, [duplicate], object_name="opportunities")
    )

    assert body["relinked"]["opportunity_contacts.opportunity_id"] == 1
    assert body["junction_rows_dropped"] == {"opportunity_contacts": 1}
    assert await rows.column("opportunity_contacts", "role", kept) == "buyer"
    assert await rows.row("opportunity_contacts", repeat) is None
    assert await rows.column("opportunity_contacts", "opportunity_id", moved) == master


# Junctions ---------------------------------------------------------------------------


async def test_merge_keeps_the_masters_junction_row_and_drops_the_repeat(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact()
    duplicate = await rows.contact()
    deal = await rows.opportunity()
    other_deal = await rows.opportunity("Other")
    kept = await rows.link(deal, master, "decision maker")
    repeat = await rows.link(deal, duplicate, "influencer")
    moved = await rows.link(other_deal, duplicate, "user")

    body = await _merge(client, world, merge_body(master, [duplicate]))

    assert body["junction_rows_dropped"] == {"opportunity_contacts": 1}
    assert body["relinked"]["opportunity_contacts.contact_id"] == 1
    kept_row = await rows.row("opportunity_contacts", kept)
    assert kept_row is not None
    assert kept_row["role"] == "decision maker"
    assert await rows.row("opportunity_contacts", repeat) is None
    moved_row = await rows.row("opportunity_contacts", moved)
    assert moved_row is not None
    assert (moved_row["contact_id"], moved_row["role"]) == (master, "user")


async def test_merge_keeps_the_first_duplicates_link_when_two_share_an_opportunity(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact()
    first = await rows.contact()
    second = await rows.contact()
    deal = await rows.opportunity()
    from_second = await rows.link(deal, second, "second")
    from_first = await rows.link(deal, first, "first")

    body = await _merge(client, world, merge_body(master, [first, second]))

    assert body["junction_rows_dropped"] == {"opportunity_contacts": 1}
    assert body["relinked"]["opportunity_contacts.contact_id"] == 1
    moved = await rows.row("opportunity_contacts", from_first)
    assert moved is not None
    assert (moved["contact_id"], moved["role"]) == (master, "first")
    assert await rows.row("opportunity_contacts", from_second) is None


async def _contact_links(rows: Rows) -> None:
    await rows.execute(
        "CREATE TABLE contact_links ("
        " id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),"
        " from_contact uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,"
        " to_contact uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,"
        " kind text,"
        " PRIMARY KEY (from_contact, to_contact))"
    )


async def test_merge_drops_links_that_would_tie_the_master_to_itself(
    client: Client, world: World, rows: Rows
) -> None:
    await _contact_links(rows)
    master = await rows.contact()
    first = await rows.contact()
    second = await rows.contact()
    outsider = await rows.contact()
    to_master = await rows.insert(
        "contact_links", from_contact=first, to_contact=master
    )
    from_master = await rows.insert(
        "contact_links", from_contact=master, to_contact=second
    )
    between = await rows.insert("contact_links", from_contact=first, to_contact=second)
    kept = await rows.insert("contact_links", from_contact=first, to_contact=outsider)

    body = await _merge(client, world, merge_body(master, [first, second]))

    assert body["junction_rows_dropped"] == {
        "contact_links": 3,
        "opportunity_contacts": 0,
    }
    assert body["relinked"]["contact_links.from_contact"] == 1
    assert body["relinked"]["contact_links.to_contact"] == 0
    for dropped in (to_master, from_master, between):
        assert await rows.row("contact_links", dropped) is None
    kept_row = await rows.row("contact_links", kept)
    assert kept_row is not None
    assert (kept_row["from_contact"], kept_row["to_contact"]) == (master, outsider)


async def test_merge_drops_a_repeat_found_through_the_second_column_of_a_link(
    client: Client, world: World, rows: Rows
) -> None:
    await _contact_links(rows)
    master = await rows.contact()
    duplicate = await rows.contact()
    outsider = await rows.contact()
    kept = await rows.insert(
        "contact_links", from_contact=outsider, to_contact=master, kind="master's"
    )
    repeat = await rows.insert(
        "contact_links", from_contact=outsider, to_contact=duplicate, kind="dup's"
    )

    body = await _merge(client, world, merge_body(master, [duplicate]))

    assert body["junction_rows_dropped"]["contact_links"] == 1
    assert await rows.column("contact_links", "kind", kept) == "master's"
    assert await rows.row("contact_links", repeat) is None


async def test_merge_of_a_one_to_one_relation_held_by_both_is_409_with_nothing_changed(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    # Named to come after notes, so the notes have already moved when the clash
    # happens: the rollback has to undo them.
    await rows.execute(
        "CREATE TABLE passports ("
        " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        " holder uuid REFERENCES contacts (id) ON DELETE CASCADE,"
        " CONSTRAINT passports_holder_key UNIQUE (holder))"
    )
    master = await rows.contact()
    duplicate = await rows.contact()
    await rows.note(contact_id=duplicate)
    await rows.insert("passports", holder=master)
    await rows.insert("passports", holder=duplicate)
    before = await snapshot(conn, world.acme.schema)

    payload = await _merge(client, world, merge_body(master, [duplicate]), status=409)

    assert error_code(payload) == "CONFLICT"
    assert "passports" in payload["error"]["message"]
    assert "passports_holder_key" in payload["error"]["message"]
    assert payload["error"]["details"] == [
        {"table": "passports", "constraint": "passports_holder_key"}
    ]
    assert await snapshot(conn, world.acme.schema) == before


async def test_merge_moves_a_one_to_one_relation_only_a_duplicate_holds(
    client: Client, world: World, rows: Rows
) -> None:
    await rows.execute(
        "CREATE TABLE passports ("
        " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        " holder uuid UNIQUE REFERENCES contacts (id) ON DELETE CASCADE)"
    )
    master = await rows.contact()
    duplicate = await rows.contact()
    passport = await rows.insert("passports", holder=duplicate)

    body = await _merge(client, world, merge_body(master, [duplicate]))

    assert body["relinked"]["passports.holder"] == 1
    assert await rows.column("passports", "holder", passport) == master


async def test_merge_refuses_to_drop_junction_rows_that_other_rows_reference(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    await rows.execute(
        "CREATE TABLE link_comments ("
        " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        " link_id uuid REFERENCES opportunity_contacts (id) ON DELETE CASCADE)"
    )
    master = await rows.contact()
    duplicate = await rows.contact()
    deal = await rows.opportunity()
    await rows.link(deal, master)
    repeat = await rows.link(deal, duplicate)
    await rows.insert("link_comments", link_id=repeat)
    before = await snapshot(conn, world.acme.schema)

    payload = await _merge(client, world, merge_body(master, [duplicate]), status=409)

    assert "opportunity_contacts" in payload["error"]["message"]
    assert await snapshot(conn, world.acme.schema) == before


async def test_merge_drops_a_junction_row_a_restricting_key_points_at_only_if_free(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    # With NO ACTION the database itself refuses to drop a row still referenced.
    await rows.execute(
        "CREATE TABLE link_notes ("
        " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        " link_id uuid CONSTRAINT link_notes_link_fkey"
        "  REFERENCES opportunity_contacts (id))"
    )
    master = await rows.contact()
    first = await rows.contact()
    second = await rows.contact()
    deal = await rows.opportunity()
    await rows.link(deal, master)
    free = await rows.link(deal, first)
    held = await rows.link(deal, second)
    await rows.insert("link_notes", link_id=held)
    before = await snapshot(conn, world.acme.schema)

    refused = await _merge(client, world, merge_body(master, [second]), status=409)
    assert refused["error"]["details"] == [
        {"table": "link_notes", "constraint": "link_notes_link_fkey"}
    ]
    assert await snapshot(conn, world.acme.schema) == before
    body = await _merge(client, world, merge_body(master, [first]))
    assert body["junction_rows_dropped"] == {"opportunity_contacts": 1}
    assert await rows.row("opportunity_contacts", free) is None


async def test_merge_is_409_when_a_reference_cannot_be_repointed(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    # A foreign key on (id, email) names the record by two columns: re-pointing it
    # is not a merge's call, and deleting the duplicate would cascade.
    await rows.execute(
        "ALTER TABLE contacts ADD CONSTRAINT contacts_id_email_key UNIQUE (id, email);"
        "CREATE TABLE mailings ("
        " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        " contact_id uuid, email text,"
        " CONSTRAINT mailings_contact_fkey FOREIGN KEY (contact_id, email)"
        "  REFERENCES contacts (id, email) ON DELETE CASCADE)"
    )
    master = await rows.contact(email="m@example.com")
    duplicate = await rows.contact(email="d@example.com")
    clean = await rows.contact(email="c@example.com")
    await rows.insert("mailings", contact_id=duplicate, email="d@example.com")
    before = await snapshot(conn, world.acme.schema)

    payload = await _merge(client, world, merge_body(master, [duplicate]), status=409)

    assert payload["error"]["details"] == [
        {"table": "mailings", "constraint": "mailings_contact_fkey"}
    ]
    assert await snapshot(conn, world.acme.schema) == before
    # With no row holding such a key, the merge goes through.
    await _merge(client, world, merge_body(master, [clean]))


# Self-references -------------------------------------------------------------------


async def test_merge_repoints_self_references_and_clears_the_masters_own(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact(first_name="M")
    first = await rows.contact(first_name="D1")
    second = await rows.contact(first_name="D2", referred_by_id=master)
    await rows.conn.execute(
        f"UPDATE {rows.table('contacts')} SET referred_by_id = $1 WHERE id = $2",
        first,
        master,
    )
    await rows.conn.execute(
        f"UPDATE {rows.table('contacts')} SET referred_by_id = $1 WHERE id = $2",
        second,
        first,
    )
    referred = [await rows.contact(referred_by_id=d) for d in (first, second, first)]

    body = await _merge(client, world, merge_body(master, [first, second]))

    assert body["self_references_cleared"] == 1
    assert body["relinked"]["contacts.referred_by_id"] == 3
    assert await rows.column("contacts", "referred_by_id", master) is None
    for contact in referred:
        assert await rows.column("contacts", "referred_by_id", contact) == master
    assert body["master"]["referred_by_id"] is None


async def test_fill_blanks_never_fills_a_self_reference_with_a_merged_record(
    client: Client, world: World, rows: Rows
) -> None:
    outsider = await rows.contact(first_name="O")
    master = await rows.contact(first_name="M")
    first = await rows.contact(referred_by_id=master)
    second = await rows.contact(referred_by_id=outsider)

    body = await _merge(
        client,
        world,
        merge_body(master, [first, second], merge_strategy="fill_blanks"),
    )

    assert body["master"]["referred_by_id"] == str(outsider)
    assert await rows.column("contacts", "referred_by_id", master) == outsider


# Strategies --------------------------------------------------------------------------


async def test_fill_blanks_fills_null_empty_white_space_and_empty_lists_only(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact(
        first_name=None,
        last_name="",
        job_title=" \t\u00a0",
        additional_emails=[],
        city="Paris",
        phone="555-0100",
    )
    duplicate = await rows.contact(
        first_name="Ann",
        last_name="Lee",
        job_title="CTO",
        additional_emails=["ann@old.example"],
        city="Lyon",
        phone="555-0199",
        email="ann@example.com",
    )

    body = await _merge(
        client, world, merge_body(master, [duplicate], merge_strategy="fill_blanks")
    )

    assert body["strategy"] == "fill_blanks"
    stored = await rows.row("contacts", master)
    assert stored is not None
    assert stored["first_name"] == "Ann"
    assert stored["last_name"] == "Lee"
    assert stored["job_title"] == "CTO"
    assert stored["additional_emails"] == ["ann@old.example"]
    assert stored["email"] == "ann@example.com"
    assert stored["city"] == "Paris"
    assert stored["phone"] == "555-0100"
    assert body["master"]["first_name"] == "Ann"


async def test_fill_blanks_keeps_zero_as_a_value(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.company("Acme", employees=Decimal(0), industry=None)
    duplicate = await rows.company("Acme", employees=Decimal(250), industry="Retail")

    body = await _merge(
        client,
        world,
        merge_body(
            master, [duplicate], object_name="companies", merge_strategy="fill_blanks"
        ),
    )

    assert body["master"]["employees"] == 0
    assert body["master"]["industry"] == "Retail"


def test_blank_is_null_empty_white_space_empty_list_or_object_not_0_or_false() -> None:
    blank: Any
    for blank in (None, "", "   ", "\t\n\u00a0\u2003", [], {}, ()):
        assert is_blank(blank), blank
    value: Any
    for value in (0, 0.0, Decimal(0), False, "0", "x", [""], {"a": None}):
        assert not is_blank(value), value


def test_fill_blanks_resolution_keeps_false_and_zero_and_takes_first_non_blank() -> (
    None
):
    fields = tuple(
        FieldMeta(name, "text", False, None, None)
        for name in ("flag", "count", "title", "tags", "extra")
    )
    obj = ObjectMeta("things", "other", "things", "Things", fields)
    master = {
        "id": uuid.uuid4(),
        "flag": False,
        "count": 0,
        "title": "  ",
        "tags": [],
        "extra": {},
    }
    first = {"id": uuid.uuid4(), "flag": True, "count": 5, "title": None, "tags": []}
    first["extra"] = {}
    second = {"id": uuid.uuid4(), "flag": True, "count": 7, "title": "Boss"}
    second |= {"tags": ["a"], "extra": {"k": 1}}

    filled = resolve_fields(obj, "fill_blanks", master, [first, second], frozenset())
    kept = resolve_fields(obj, "keep_master", master, [first, second], frozenset())

    assert filled == {
        "flag": False,
        "count": 0,
        "title": "Boss",
        "tags": ["a"],
        "extra": {"k": 1},
    }
    assert kept == {k: v for k, v in master.items() if k != "id"}


async def test_fill_blanks_takes_the_first_non_blank_value_in_duplicate_order(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact(job_title=None, city=None)
    first = await rows.contact(job_title="  ", city="Oslo")
    second = await rows.contact(job_title="VP", city="Rome")
    third = await rows.contact(job_title="CEO", city="Nice")

    body = await _merge(
        client,
        world,
        merge_body(master, [first, second, third], merge_strategy="fill_blanks"),
    )

    assert (body["master"]["job_title"], body["master"]["city"]) == ("VP", "Oslo")


async def test_keep_master_keeps_its_values_and_sets_updated_at_and_keys(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    created = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    master = await rows.contact(
        first_name="Bo", email=None, created_at=created, updated_at=created
    )
    duplicate = await rows.contact(first_name="Robert", email="bob@example.com")
    started = await conn.fetchval("SELECT now()")

    body = await _merge(client, world, merge_body(master, [duplicate]))

    stored = await rows.row("contacts", master)
    assert stored is not None
    assert stored["first_name"] == "Bo"
    assert stored["email"] is None
    assert stored["created_at"] == created
    assert stored["updated_at"] >= started
    assert body["master"]["created_at"] == "2020-01-02T03:04:05Z"
    assert stored["keys_stale"] is False
    keys = await conn.fetch(
        f"SELECT field, key, record_id FROM {rows.table('match_keys')}"
    )
    # The duplicate's keys went with it; the master's own were computed.
    assert {(k["field"], k["key"], k["record_id"]) for k in keys} == set()


async def test_fill_blanks_recomputes_the_masters_match_keys(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    master = await rows.contact(first_name="Ann", last_name="Lee")
    duplicate = await rows.contact(email="Ann@Example.com", phone="+33 1 23 45 67 89")

    await _merge(
        client, world, merge_body(master, [duplicate], merge_strategy="fill_blanks")
    )

    keys = await conn.fetch(
        f"SELECT field, key, record_id FROM {rows.table('match_keys')}"
    )
    assert {(k["field"], k["key"]) for k in keys} == {
        ("email", "ann@example.com"),
        ("phone", "+33123456789"),
        ("name", "ann lee"),
    }
    assert {k["record_id"] for k in keys} == {master}


async def test_fill_blanks_takes_a_unique_email_from_a_duplicate(
    client: Client, world: World, rows: Rows
) -> None:
    await rows.execute("CREATE UNIQUE INDEX contacts_email_unique ON contacts (email)")
    master = await rows.contact(first_name="Ann", email=None)
    duplicate = await rows.contact(first_name="Ann", email="ann@example.com")

    body = await _merge(
        client, world, merge_body(master, [duplicate], merge_strategy="fill_blanks")
    )

    assert body["master"]["email"] == "ann@example.com"
    assert await rows.column("contacts", "email", master) == "ann@example.com"


# Dry run and audit ---------------------------------------------------------------


async def test_dry_run_reports_the_merge_and_changes_nothing(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    master = await rows.contact(first_name=None, email="a@example.com")
    duplicate = await rows.contact(first_name="Ann", referred_by_id=master)
    deal = await rows.opportunity()
    await rows.link(deal, master)
    await rows.link(deal, duplicate)
    await rows.note(contact_id=duplicate)
    await conn.execute(
        f"UPDATE {rows.table('contacts')} SET referred_by_id = $1 WHERE id = $2",
        duplicate,
        master,
    )
    before = await snapshot(conn, world.acme.schema)
    body = merge_body(master, [duplicate], merge_strategy="fill_blanks")

    dry = await _merge(client, world, {**body, "dry_run": True})

    assert await snapshot(conn, world.acme.schema) == before
    assert dry["dry_run"] is True
    assert dry["audit_id"] is None
    assert dry["master"]["first_name"] == "Ann"
    real = await _merge(client, world, body)
    assert real["dry_run"] is False
    for report in (dry, real):
        del report["dry_run"], report["audit_id"], report["master"]["updated_at"]
    assert dry == real
    assert real["self_references_cleared"] == 1
    assert real["junction_rows_dropped"] == {"opportunity_contacts": 1}


async def test_merge_writes_an_audit_entry_with_every_deleted_row(
    client: Client, world: World, rows: Rows, conn: asyncpg.Connection
) -> None:
    master = await rows.contact(first_name="M")
    duplicate = await rows.contact(first_name="D", city="Rome")
    deal = await rows.opportunity()
    await rows.link(deal, master, "buyer")
    repeat = await rows.link(deal, duplicate, "user")

    body = await _merge(client, world, merge_body(master, [duplicate]))

    entry = await conn.fetchrow(
        f"SELECT *, duplicates::text AS dup_json, counts::text AS counts_json "
        f"FROM {rows.table('merge_audit')}"
    )
    assert entry is not None
    assert str(entry["id"]) == body["audit_id"]
    assert entry["actor_email"] == world.acme.admin_email
    assert entry["master_id"] == master
    assert entry["duplicate_ids"] == [duplicate]
    assert entry["strategy"] == "keep_master"
    assert isinstance(entry["merged_at"], datetime)
    [snap] = json.loads(entry["dup_json"])
    assert snap["id"] == str(duplicate)
    assert snap["record"]["first_name"] == "D"
    assert snap["record"]["city"] == "Rome"
    [dropped] = snap["dropped_rows"]["opportunity_contacts"]
    assert (dropped["id"], dropped["role"]) == (str(repeat), "user")
    counts = json.loads(entry["counts_json"])
    assert counts == {
        "duplicates_deleted": 1,
        "relinked": body["relinked"],
        "junction_rows_dropped": body["junction_rows_dropped"],
        "self_references_cleared": 0,
    }


async def test_dry_run_writes_no_audit_entry(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact()
    duplicate = await rows.contact()
    await _merge(client, world, merge_body(master, [duplicate], dry_run=True))
    assert await rows.count("merge_audit") == 0
    assert await rows.row("contacts", duplicate) is not None


async def test_merge_of_a_hundred_duplicates_keeps_every_related_row(
    client: Client, world: World, rows: Rows
) -> None:
    master = await rows.contact()
    duplicates = [await rows.contact() for _ in range(100)]
    deal = await rows.opportunity()
    for index, duplicate in enumerate(duplicates):
        await rows.note(f"n{index}", contact_id=duplicate)
        await rows.link(deal, duplicate, f"r{index}")

    body = await _merge(client, world, merge_body(master, duplicates))

    assert body["duplicates_deleted"] == 100
    assert body["relinked"]["notes.contact_id"] == 100
    assert body["relinked"]["opportunity_contacts.contact_id"] == 1
    assert body["junction_rows_dropped"] == {"opportunity_contacts": 99}
    assert await rows.count("notes", "contact_id = $1", master) == 100
    [link] = await rows.conn.fetch(
        f"SELECT role FROM {rows.table('opportunity_contacts')}"
    )
    assert link["role"] == "r0"


async def test_merge_ids_take_the_form_ids_are_shown_in_in_either_case(
    client: Client, world: World, rows: Rows
) -> None:
    master: UUID = await rows.contact()
    duplicate = await rows.contact()
    # The same form as in paths and relation fields: other spellings are refused.
    for spelling in (duplicate.hex, f"{{{duplicate}}}", duplicate.urn):
        refused = await _merge(client, world, merge_body(master, [spelling]), 400)
        assert refused["error"]["code"] == "VALIDATION_ERROR"
        assert "550e8400-e29b-41d4-a716-446655440000" in refused["error"]["message"]
    body = merge_body(str(master).upper(), [str(duplicate).upper()])
    payload = await _merge(client, world, body)
    assert payload["master_id"] == str(master)
    assert payload["duplicates_deleted"] == 1
