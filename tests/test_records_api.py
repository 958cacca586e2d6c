"""The records API: field validation, CRUD, batch, pagination, associations, schema,
and the wall between organizations."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import World
from tests.records_support import Api
from tests.support import error_code

Client = TestClient[Any, Any]


@pytest.fixture
def acme(client: Client, world: World) -> Api:
    return Api(client, world.acme.member_token)


@pytest.fixture
def acme_admin(client: Client, world: World) -> Api:
    return Api(client, world.acme.admin_token)


@pytest.fixture
def globex(client: Client, world: World) -> Api:
    return Api(client, world.globex.member_token)


# --- field validation ------------------------------------------------------------

INVALID_VALUES = [
    ("contacts", "first_name", 12, "must be a string"),
    ("contacts", "job_title", "x" * 10_001, "longer than 10000"),
    ("contacts", "city", "Par\x00is", "NUL"),
    ("contacts", "city", "\ud800", "not valid Unicode"),
    ("contacts", "email", "no-at-sign", "one @"),
    ("contacts", "email", "two@@example.com", "one @"),
    ("contacts", "email", "@example.com", "one @"),
    ("contacts", "email", "ann@", "one @"),
    ("contacts", "email", ["a@b.c"], "must be a string"),
    ("contacts", "additional_emails", "a@b.c", "JSON array"),
    ("contacts", "additional_emails", ["a@b.c", "broken"], "item 1"),
    ("contacts", "additional_emails", [None], "item 0"),
    ("contacts", "additional_emails", ["a@b.c"] * 51, "at most 50"),
    ("contacts", "phone", "1" * 65, "longer than 64"),
    ("contacts", "phone", 3865286, "must be a string"),
    ("contacts", "additional_phones", "555-1234", "JSON array"),
    ("contacts", "additional_phones", ["ok", "9" * 65], "item 1"),
    ("contacts", "linkedin_url", "https://linkedin.com/in/" + "a" * 2030, "2048"),
    ("contacts", "linkedin_url", {"url": "x"}, "must be a string"),
    ("companies", "employees", "12", "must be a number"),
    ("companies", "employees", True, "must be a number"),
    ("companies", "employees", 1e300, "10^18"),
    ("opportunities", "amount", 0.1**30, "decimal places"),
    ("opportunities", "close_date", "2024-02-30", "real calendar date"),
    ("opportunities", "close_date", "03/01/2024", "YYYY-MM-DD"),
    ("opportunities", "close_date", 20240301, "YYYY-MM-DD"),
    ("contacts", "company_id", "not-a-uuid", "UUID"),
    ("contacts", "company_id", 42, "UUID"),
    ("contacts", "company_id", str(uuid.uuid4()), "names no record of companies"),
    ("notes", "contact_id", str(uuid.uuid4()), "names no record of contacts"),
]


@pytest.mark.parametrize(("object_name", "field", "value", "reason"), INVALID_VALUES)
async def test_each_field_type_refuses_a_bad_value_with_400_and_writes_nothing(
    acme: Api,
    conn: asyncpg.Connection,
    world: World,
    object_name: str,
    field: str,
    value: Any,
    reason: str,
) -> None:
    required = {"companies": "name", "opportunities": "name", "notes": "body"}
    body: dict[str, Any] = {field: value}
    if object_name in required:
        body[required[object_name]] = "Required value"
    status, answer = await acme.call("POST", f"/api/v1/records/{object_name}", body)
    assert status == 400, answer
    assert error_code(answer) == "VALIDATION_ERROR"
    assert reason in answer["error"]["message"]
    assert answer["error"]["details"][0]["field"] == field
    count = await conn.fetchval(
        f'SELECT count(*) FROM "{world.acme.schema}"."{object_name}"'
    )
    assert count == 0


async def test_values_of_every_type_are_stored_as_given(acme: Api) -> None:
    company = await acme.create("companies", name="  ACME Corp ", employees=12.5)
    contact = await acme.create(
        "contacts",
        first_name=" Ann ",
        email=" Ann@Example.COM ",
        additional_emails=["ann+work@example.com", "ANN@example.org"],
        phone="(312) 555-0100 ext. 12",
        additional_phones=["N/A", "+44 20 7946 0958"],
        linkedin_url="ann-lee",
        company_id=company["id"],
    )
    opportunity = await acme.create(
        "opportunities", name="Deal", amount=1234.5, close_date="2024-02-29"
    )
    assert company["name"] == "  ACME Corp "
    assert company["employees"] == 12.5
    assert contact["email"] == " Ann@Example.COM "
    assert contact["additional_emails"] == ["ann+work@example.com", "ANN@example.org"]
    assert contact["phone"] == "(312) 555-0100 ext. 12"
    assert contact["additional_phones"] == ["N/A", "+44 20 7946 0958"]
    assert contact["linkedin_url"] == "ann-lee"
    assert contact["company_id"] == company["id"]
    assert opportunity["amount"] == 1234.5
    assert opportunity["close_date"] == "2024-02-29"
    status, stored = await acme.get("contacts", contact["id"])
    assert status == 200
    assert {k: v for k, v in stored.items() if k != "opportunities"} == contact


async def test_null_and_blank_are_both_blank(acme: Api) -> None:
    contact = await acme.create(
        "contacts", first_name=None, email="   ", phone="", company_id=""
    )
    assert contact["first_name"] is None
    assert contact["email"] == "   "
    assert contact["company_id"] is None
    company = await acme.create("companies", name="Blank Co", employees="  ")
    assert company["employees"] is None


@pytest.mark.parametrize(
    ("object_name", "body", "field"),
    [
        ("companies", {"domain": "acme.test"}, "name"),
        ("companies", {"name": None}, "name"),
        ("companies", {"name": " \t "}, "name"),
        ("opportunities", {"amount": 5}, "name"),
        ("notes", {"body": ""}, "body"),
    ],
)
async def test_required_fields_refuse_missing_null_and_blank(
    acme: Api, object_name: str, body: dict[str, Any], field: str
) -> None:
    status, answer = await acme.call("POST", f"/api/v1/records/{object_name}", body)
    assert status == 400, answer
    assert error_code(answer) == "VALIDATION_ERROR"
    assert answer["error"]["details"] == [{"field": field, "message": "is required"}]


async def test_a_contact_may_lack_every_field(acme: Api) -> None:
    contact = await acme.create("contacts")
    assert contact["first_name"] is None
    assert contact["email"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "nmae": "typo"}, "nmae"),
        ({"name": "X", "id": str(uuid.uuid4())}, "id"),
        ({"name": "X", "created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ],
)
async def test_unknown_and_read_only_fields_are_refused(
    acme: Api, body: dict[str, Any], field: str
) -> None:
    status, answer = await acme.call("POST", "/api/v1/records/companies", body)
    assert status == 400
    assert error_code(answer) == "VALIDATION_ERROR"
    assert [d["field"] for d in answer["error"]["details"]] == [field]


@pytest.mark.parametrize("body", [[], "text", 3, None])
async def test_a_body_that_is_not_an_object_is_refused(acme: Api, body: Any) -> None:
    status, answer = await acme.call("POST", "/api/v1/records/contacts", body)
    assert status == 400
    assert error_code(answer) == "VALIDATION_ERROR"


# --- single records --------------------------------------------------------------


async def test_unknown_object_is_invalid_object_on_every_route(acme: Api) -> None:
    some_id = str(uuid.uuid4())
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/api/v1/records/widgets", None),
        ("POST", "/api/v1/records/widgets", {"name": "x"}),
        ("POST", "/api/v1/records/widgets/batch/create", {"records": [{}]}),
        ("GET", f"/api/v1/records/widgets/{some_id}", None),
        ("PATCH", f"/api/v1/records/widgets/{some_id}", {}),
        ("DELETE", f"/api/v1/records/widgets/{some_id}", None),
        ("GET", "/api/v1/schema/widgets", None),
    ]
    for method, path, body in calls:
        status, answer = await acme.call(method, path, body)
        assert status == 400, (method, path, answer)
        assert error_code(answer) == "INVALID_OBJECT"


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", str(uuid.uuid4())])
async def test_a_malformed_or_unknown_id_is_record_not_found(
    acme: Api, bad_id: str
) -> None:
    for method, body in (("GET", None), ("PUT", {"name": "x"}), ("DELETE", None)):
        status, answer = await acme.call(
            method, f"/api/v1/records/companies/{bad_id}", body
        )
        assert status == 404, (method, answer)
        assert error_code(answer) == "RECORD_NOT_FOUND"


async def test_put_replaces_every_field_and_patch_only_the_given_ones(
    acme: Api,
) -> None:
    company = await acme.create(
        "companies", name="Acme", domain="acme.test", industry="Tools"
    )
    path = f"/api/v1/records/companies/{company['id']}"
    status, patched = await acme.call("PATCH", path, {"industry": "Hardware"})
    assert status == 200
    assert patched["domain"] == "acme.test"
    assert patched["industry"] == "Hardware"
    assert patched["updated_at"] > company["updated_at"]
    assert patched["created_at"] == company["created_at"]

    status, replaced = await acme.call("PUT", path, {"name": "Acme Inc"})
    assert status == 200
    assert replaced["name"] == "Acme Inc"
    assert replaced["domain"] is None
    assert replaced["industry"] is None
    assert replaced["updated_at"] > patched["updated_at"]

    status, answer = await acme.call("PUT", path, {"domain": "x.test"})
    assert status == 400
    assert answer["error"]["details"] == [{"field": "name", "message": "is required"}]
    status, answer = await acme.call("PATCH", path, {"name": ""})
    assert status == 400

    status, touched = await acme.call("PATCH", path, {})
    assert status == 200
    assert touched["updated_at"] > replaced["updated_at"]
    assert touched["name"] == "Acme Inc"


async def test_delete_removes_the_record_and_cascades_to_its_notes(
    acme: Api, conn: asyncpg.Connection, world: World
) -> None:
    contact = await acme.create("contacts", first_name="Ann")
    await acme.create("notes", body="called", contact_id=contact["id"])
    status, _ = await acme.call("DELETE", f"/api/v1/records/contacts/{contact['id']}")
    assert status == 204
    status, answer = await acme.get("contacts", contact["id"])
    assert status == 404
    assert error_code(answer) == "RECORD_NOT_FOUND"
    notes = await conn.fetchval(f'SELECT count(*) FROM "{world.acme.schema}".notes')
    assert notes == 0
    status, _ = await acme.call("DELETE", f"/api/v1/records/contacts/{contact['id']}")
    assert status == 404


async def test_a_relation_set_through_its_field_can_be_changed_and_cleared(
    acme: Api,
) -> None:
    first = await acme.create("companies", name="First")
    second = await acme.create("companies", name="Second")
    contact = await acme.create("contacts", company_id=first["id"])
    path = f"/api/v1/records/contacts/{contact['id']}"
    status, moved = await acme.call("PATCH", path, {"company_id": second["id"]})
    assert status == 200
    assert moved["company_id"] == second["id"]
    status, cleared = await acme.call("PATCH", path, {"company_id": None})
    assert status == 200
    assert cleared["company_id"] is None
    status, answer = await acme.call("PATCH", path, {"company_id": str(uuid.uuid4())})
    assert status == 400
    assert error_code(answer) == "VALIDATION_ERROR"


# --- batch -----------------------------------------------------------------------


async def test_batch_create_answers_the_records_in_input_order(acme: Api) -> None:
    names = [f"Company {i:03}" for i in range(100)]
    status, answer = await acme.call(
        "POST",
        "/api/v1/records/companies/batch/create",
        {"records": [{"name": name} for name in names]},
    )
    assert status == 201, answer
    assert [record["name"] for record in answer["data"]] == names
    assert len({record["id"] for record in answer["data"]}) == 100


async def test_batch_create_is_rolled_back_whole_on_one_bad_record(
    acme: Api, conn: asyncpg.Connection, world: World
) -> None:
    company = await acme.create("companies", name="Parent")
    records = [
        {"first_name": "Ok", "company_id": company["id"]},
        {"first_name": "Also ok", "email": "ok@example.com"},
        {"first_name": "Bad", "company_id": str(uuid.uuid4())},
    ]
    status, answer = await acme.call(
        "POST", "/api/v1/records/contacts/batch/create", {"records": records}
    )
    assert status == 400
    assert error_code(answer) == "VALIDATION_ERROR"
    assert answer["error"]["details"][0]["index"] == 2
    assert answer["error"]["details"][0]["field"] == "company_id"
    schema = world.acme.schema
    assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".contacts') == 0
    assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".match_keys') == 1

    records[2] = {"first_name": "Bad", "email": "not an email"}
    status, answer = await acme.call(
        "POST", "/api/v1/records/contacts/batch/create", {"records": records}
    )
    assert status == 400
    assert answer["error"]["details"][0]["index"] == 2
    assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".contacts') == 0


@pytest.mark.parametrize(
    "body",
    [
        {"records": [{"first_name": "x"}] * 101},
        {"records": []},
        {"records": [{"first_name": "x"}], "extra": 1},
        {"records": [1, 2]},
        {"rows": []},
    ],
)
async def test_an_oversized_or_malformed_batch_is_refused(
    acme: Api, body: dict[str, Any]
) -> None:
    status, answer = await acme.call(
        "POST", "/api/v1/records/contacts/batch/create", body
    )
    assert status == 400
    assert error_code(answer) == "VALIDATION_ERROR"


# --- pagination and filters ------------------------------------------------------


async def test_list_pages_follow_the_cursor_with_default_and_maximum_limits(
    acme: Api,
) -> None:
    await acme.call(
        "POST",
        "/api/v1/records/contacts/batch/create",
        {"records": [{"first_name": f"n{i}"} for i in range(25)]},
    )
    status, first = await acme.call("GET", "/api/v1/records/contacts")
    assert status == 200
    assert len(first["data"]) == 20
    assert first["total"] == 25
    assert first["nextCursor"]
    status, second = await acme.call(
        "GET", f"/api/v1/records/contacts?cursor={first['nextCursor']}"
    )
    assert len(second["data"]) == 5
    assert second["nextCursor"] is None
    ids = [r["id"] for r in first["data"] + second["data"]]
    assert len(set(ids)) == 25
    for limit in ("0", "101", "ten", "-1"):
        status, answer = await acme.call(
            "GET", f"/api/v1/records/contacts?limit={limit}"
        )
        assert status == 400, limit
        assert error_code(answer) == "VALIDATION_ERROR"


async def test_pagination_over_a_changing_table_never_skips_or_repeats(
    acme: Api,
) -> None:
    # Created one by one so that created_at differs as well as ties within a batch.
    await acme.call(
        "POST",
        "/api/v1/records/contacts/batch/create",
        {"records": [{"first_name": f"batch{i}"} for i in range(12)]},
    )
    for i in range(12):
        await acme.create("contacts", first_name=f"single{i}")
    status, page = await acme.call("GET", "/api/v1/records/contacts?limit=5")
    assert status == 200
    seen = [r["id"] for r in page["data"]]
    survivors = set(seen)
    before = {r["id"] for r in await acme.list_all("contacts")}
    deleted: set[str] = set()
    added: set[str] = set()
    cursor = page["nextCursor"]
    round_ = 0
    while cursor is not None:
        # Between pages: delete a record already seen and one not yet seen, and add
        # a new one (it sorts after every existing record).
        unseen = sorted(before - set(seen) - deleted)
        for victim in (seen[-1], unseen[-1] if unseen else None):
            if victim is not None and victim not in deleted:
                status, _ = await acme.call(
                    "DELETE", f"/api/v1/records/contacts/{victim}"
                )
                assert status == 204
                deleted.add(victim)
        added.add((await acme.create("contacts", first_name=f"new{round_}"))["id"])
        round_ += 1
        status, page = await acme.call(
            "GET", f"/api/v1/records/contacts?limit=5&cursor={cursor}"
        )
        assert status == 200
        seen.extend(r["id"] for r in page["data"])
        survivors.update(r["id"] for r in page["data"])
        cursor = page["nextCursor"]
        assert round_ < 50
    assert len(seen) == len(set(seen)), "a record was repeated"
    # Every record that existed throughout was seen.
    assert before - deleted <= set(seen)


@pytest.mark.parametrize(
    "cursor", ["garbage", "eyJ4IjoxfQ", "", "WyJjb21wYW5pZXMiLCJ4IiwieSJd"]
)
async def test_a_malformed_cursor_is_refused(acme: Api, cursor: str) -> None:
    status, answer = await acme.call("GET", f"/api/v1/records/contacts?cursor={cursor}")
    assert status == 400
    assert error_code(answer) == "VALIDATION_ERROR"


async def test_a_cursor_of_another_object_is_refused(acme: Api) -> None:
    for i in range(3):
        await acme.create("companies", name=f"c{i}")
    _, page = await acme.call("GET", "/api/v1/records/companies?limit=1")
    status, answer = await acme.call(
        "GET", f"/api/v1/records/contacts?cursor={page['nextCursor']}"
    )
    assert status == 400
    assert error_code(answer) == "VALIDATION_ERROR"


async def test_list_filters_by_equality_on_any_field(acme: Api) -> None:
    ann = await acme.create("contacts", first_name="Ann")
    bob = await acme.create("contacts", first_name="Bob")
    for text in ("one", "two"):
        await acme.create("notes", body=text, contact_id=ann["id"])
    await acme.create("notes", body="three", contact_id=bob["id"])
    await acme.create("opportunities", name="Big", amount=100, close_date="2024-05-01")
    await acme.create("opportunities", name="Small", amount=5)

    status, page = await acme.call(
        "GET", f"/api/v1/records/notes?contact_id={ann['id']}"
    )
    assert status == 200
    assert sorted(n["body"] for n in page["data"]) == ["one", "two"]
    assert page["total"] == 2
    _, page = await acme.call("GET", "/api/v1/records/notes?body=three")
    assert [n["contact_id"] for n in page["data"]] == [bob["id"]]
    _, page = await acme.call("GET", "/api/v1/records/opportunities?amount=100.0")
    assert [o["name"] for o in page["data"]] == ["Big"]
    _, page = await acme.call(
        "GET", "/api/v1/records/opportunities?close_date=2024-05-01&name=Big"
    )
    assert page["total"] == 1
    _, page = await acme.call("GET", "/api/v1/records/opportunities?name=Nothing")
    assert page == {"data": [], "total": 0, "nextCursor": None}

    for object_name, query in (
        ("notes", "colour=red"),
        ("opportunities", "amount=lots"),
        ("opportunities", "close_date=May"),
        ("notes", "contact_id=nope"),
        ("notes", "body="),
        ("notes", "body=a&body=b"),
    ):
        status, answer = await acme.call(
            "GET", f"/api/v1/records/{object_name}?{query}"
        )
        assert status == 400, query
        assert error_code(answer) == "VALIDATION_ERROR"


# --- associations ----------------------------------------------------------------


async def test_associations_are_created_listed_updated_and_removed(acme: Api) -> None:
    deal = await acme.create("opportunities", name="Deal")
    ann = await acme.create("contacts", first_name="Ann")
    bob = await acme.create("contacts", first_name="Bob")
    base = f"/api/v1/records/opportunities/{deal['id']}/associations/contacts"

    status, link = await acme.call("PUT", f"{base}/{ann['id']}", {"role": "buyer"})
    assert status == 201
    assert link == {"id": ann["id"], "role": "buyer"}
    status, link = await acme.call("PUT", f"{base}/{bob['id']}")
    assert status == 201
    assert link == {"id": bob["id"], "role": None}

    _, shown = await acme.get("opportunities", deal["id"])
    assert shown["contacts"] == [
        {"id": ann["id"], "role": "buyer"},
        {"id": bob["id"], "role": None},
    ]
    _, contact = await acme.get("contacts", ann["id"])
    assert contact["opportunities"] == [{"id": deal["id"], "role": "buyer"}]

    # The same PUT again is an update of the one link, not a second link.
    status, link = await acme.call("PUT", f"{base}/{ann['id']}", {"role": "champion"})
    assert status == 200
    assert link["role"] == "champion"
    _, shown = await acme.get("opportunities", deal["id"])
    assert {"id": ann["id"], "role": "champion"} in shown["contacts"]
    assert len(shown["contacts"]) == 2

    status, _ = await acme.call("DELETE", f"{base}/{ann['id']}")
    assert status == 204
    _, shown = await acme.get("opportunities", deal["id"])
    assert shown["contacts"] == [{"id": bob["id"], "role": None}]
    status, _ = await acme.call("DELETE", f"{base}/{ann['id']}")
    assert status == 204

    # From the other side of the same relation.
    other = f"/api/v1/records/contacts/{bob['id']}/associations/opportunities"
    status, _ = await acme.call("DELETE", f"{other}/{deal['id']}")
    assert status == 204
    _, shown = await acme.get("opportunities", deal["id"])
    assert shown["contacts"] == []


async def test_association_requests_that_cannot_be_links_are_refused(
    acme: Api,
) -> None:
    deal = await acme.create("opportunities", name="Deal")
    ann = await acme.create("contacts", first_name="Ann")
    company = await acme.create("companies", name="Acme")
    base = f"/api/v1/records/opportunities/{deal['id']}/associations"
    cases = [
        (f"{base}/companies/{company['id']}", {}, 400, "VALIDATION_ERROR"),
        (f"{base}/widgets/{ann['id']}", {}, 400, "INVALID_OBJECT"),
        (f"{base}/contacts/{uuid.uuid4()}", {}, 404, "RECORD_NOT_FOUND"),
        (f"{base}/contacts/not-a-uuid", {}, 404, "RECORD_NOT_FOUND"),
        (
            f"/api/v1/records/opportunities/{uuid.uuid4()}/associations/contacts/"
            f"{ann['id']}",
            {},
            404,
            "RECORD_NOT_FOUND",
        ),
        (f"{base}/contacts/{ann['id']}", {"rolle": "typo"}, 400, "VALIDATION_ERROR"),
        (f"{base}/contacts/{ann['id']}", {"role": 5}, 400, "VALIDATION_ERROR"),
        (f"{base}/contacts/{ann['id']}", ["role"], 400, "VALIDATION_ERROR"),
    ]
    for path, body, expected, code in cases:
        status, answer = await acme.call("PUT", path, body)
        assert status == expected, (path, body, answer)
        assert error_code(answer) == code
    _, shown = await acme.get("opportunities", deal["id"])
    assert shown["contacts"] == []


# --- organizations ---------------------------------------------------------------


async def test_an_organization_never_sees_or_changes_another_ones_records(
    acme: Api, globex: Api
) -> None:
    theirs = await globex.create("contacts", first_name="Secret", email="s@globex.test")
    their_deal = await globex.create("opportunities", name="Their deal")
    mine = await acme.create("contacts", first_name="Mine")
    my_deal = await acme.create("opportunities", name="My deal")

    not_found = [
        ("GET", f"/api/v1/records/contacts/{theirs['id']}", None),
        ("PUT", f"/api/v1/records/contacts/{theirs['id']}", {"first_name": "x"}),
        ("PATCH", f"/api/v1/records/contacts/{theirs['id']}", {"first_name": "x"}),
        ("DELETE", f"/api/v1/records/contacts/{theirs['id']}", None),
        (
            "PUT",
            f"/api/v1/records/opportunities/{my_deal['id']}/associations/contacts/"
            f"{theirs['id']}",
            {},
        ),
        (
            "PUT",
            f"/api/v1/records/opportunities/{their_deal['id']}/associations/contacts/"
            f"{mine['id']}",
            {},
        ),
        (
            "DELETE",
            f"/api/v1/records/opportunities/{their_deal['id']}/associations/contacts/"
            f"{mine['id']}",
            None,
        ),
    ]
    for method, path, body in not_found:
        status, answer = await acme.call(method, path, body)
        assert status == 404, (method, path, answer)
        # Exactly the answer an id that exists nowhere gets.
        missing = path.replace(theirs["id"], str(uuid.uuid4())).replace(
            their_deal["id"], str(uuid.uuid4())
        )
        status, other = await acme.call(method, missing, body)
        assert (status, other) == (404, answer)

    assert [r["id"] for r in await acme.list_all("contacts")] == [mine["id"]]
    _, page = await acme.call("GET", "/api/v1/records/contacts?email=s@globex.test")
    assert page["total"] == 0
    status, kept = await globex.get("contacts", theirs["id"])
    assert status == 200
    assert kept["first_name"] == "Secret"


async def test_a_relation_to_another_organizations_record_is_refused(
    acme: Api, globex: Api
) -> None:
    their_company = await globex.create("companies", name="Globex")
    their_contact = await globex.create("contacts", first_name="Hank")
    status, answer = await acme.call(
        "POST", "/api/v1/records/contacts", {"company_id": their_company["id"]}
    )
    assert status == 400
    assert error_code(answer) == "VALIDATION_ERROR"
    assert answer["error"]["details"][0]["field"] == "company_id"
    mine = await acme.create("contacts", first_name="Ann")
    status, answer = await acme.call(
        "PATCH",
        f"/api/v1/records/contacts/{mine['id']}",
        {"referred_by_id": their_contact["id"]},
    )
    assert status == 400
    status, answer = await acme.call(
        "POST",
        "/api/v1/records/notes/batch/create",
        {"records": [{"body": "x", "contact_id": their_contact["id"]}]},
    )
    assert status == 400


async def test_admin_and_member_tokens_both_use_records_and_none_is_401(
    acme_admin: Api, acme: Api, client: Client
) -> None:
    created = await acme_admin.create("companies", name="By admin")
    status, _ = await acme.get("companies", created["id"])
    assert status == 200
    async with client.get("/api/v1/records/companies") as response:
        assert response.status == 401
        assert error_code(await response.json()) == "UNAUTHORIZED"


# --- schema ----------------------------------------------------------------------


async def test_schema_describes_objects_fields_and_relations(acme: Api) -> None:
    status, schema = await acme.call("GET", "/api/v1/schema")
    assert status == 200
    by_name = {obj["name"]: obj for obj in schema["data"]}
    assert list(by_name) == ["contacts", "companies", "opportunities", "notes"]
    contacts = by_name["contacts"]
    assert contacts["kind"] == "person"
    fields = {f["name"]: f for f in contacts["fields"]}
    assert fields["additional_emails"]["type"] == "email_list"
    assert fields["company_id"]["target_object"] == "companies"
    assert contacts["match_fields"] == ["email", "phone", "linkedin", "name"]
    status, opportunity = await acme.call("GET", "/api/v1/schema/opportunities")
    assert status == 200
    assert opportunity == by_name["opportunities"]
    kinds = {(r["name"], r["kind"]) for r in opportunity["relations"]}
    assert ("contacts", "MANY_TO_MANY") in kinds
    assert ("company_id", "BELONGS_TO_ONE") in kinds
    required = {f["name"] for f in opportunity["fields"] if f["required"]}
    assert required == {"name"}
