"""Detect: the request contract and every matching and grouping rule.

Records are written with plain SQL, as another system would write them; detection
re-keys them before it matches, which is itself one of the rules under test.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from app.services import accounts
from app.sql import quote_ident
from tests.conftest import Org, World
from tests.support import bearer, error_code

Client = TestClient[Any, Any]
BASE = datetime(2024, 1, 1, tzinfo=UTC)
# The default window and the lifted one run different queries; the rules that both
# implement are checked on both.
BOTH_QUERIES = pytest.mark.parametrize(
    "settings_overrides",
    [pytest.param({}, id="window"), pytest.param({"detect_window": 0}, id="lifted")],
)
CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "additional_emails",
    "phone",
    "additional_phones",
    "linkedin_url",
    "job_title",
    "city",
    "company_id",
    "referred_by_id",
)


class Records:
    """Writes records straight into an organization's tables, oldest first."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self._clock = itertools.count()

    async def add(self, table: str, values: dict[str, Any]) -> UUID:
        row = dict(values)
        row.setdefault("created_at", BASE + timedelta(minutes=next(self._clock)))
        columns = ", ".join(quote_ident(column) for column in row)
        params = ", ".join(f"${index}" for index in range(1, len(row) + 1))
        record_id = await self.conn.fetchval(
            f"INSERT INTO {quote_ident(self.schema)}.{quote_ident(table)} "
            f"({columns}) VALUES ({params}) RETURNING id",
            *row.values(),
        )
        assert isinstance(record_id, UUID)
        return record_id

    async def contact(self, **values: Any) -> UUID:
        return await self.add("contacts", values)

    async def company(self, **values: Any) -> UUID:
        values.setdefault("name", f"Company {next(self._clock)}")
        return await self.add("companies", values)

    async def opportunity(self, **values: Any) -> UUID:
        return await self.add("opportunities", values)


@pytest.fixture
def acme(conn: asyncpg.Connection, world: World) -> Records:
    return Records(conn, world.acme.schema)


async def post_detect(client: Client, token: str, body: Any) -> tuple[int, Any]:
    response = await client.post("/api/v1/duplicates", json=body, headers=bearer(token))
    return response.status, await response.json()


async def detect(client: Client, org: Org, **body: Any) -> dict[str, Any]:
    status, payload = await post_detect(
        client, org.admin_token, {"action": "detect", **body}
    )
    assert status == 200, payload
    assert isinstance(payload, dict)
    return dict(payload)


async def detect_contacts(client: Client, org: Org, **body: Any) -> dict[str, Any]:
    return await detect(client, org, object_name="contacts", **body)


def id_sets(payload: dict[str, Any]) -> list[set[str]]:
    return [{r["id"] for r in g["records"]} for g in payload["duplicate_groups"]]


def ids(*records: UUID) -> set[str]:
    return {str(record) for record in records}


def group_of(payload: dict[str, Any], *records: UUID) -> dict[str, Any]:
    """The one group holding exactly these records."""
    wanted = ids(*records)
    found = [
        g
        for g in payload["duplicate_groups"]
        if {r["id"] for r in g["records"]} == wanted
    ]
    assert len(found) == 1, (wanted, payload["duplicate_groups"])
    return dict(found[0])


async def expect_error(
    client: Client, token: str, body: Any, status: int, code: str
) -> dict[str, Any]:
    got_status, payload = await post_detect(client, token, body)
    assert got_status == status, payload
    assert error_code(payload) == code
    return dict(payload["error"])


# --- the contract ---------------------------------------------------------------


async def test_detect_needs_an_admin_token_before_the_body_is_read(
    client: Client, world: World
) -> None:
    broken = {"action": "detect", "object_name": "contacts", "limit": "x"}
    await expect_error(
        client, world.acme.member_token, broken, 403, "PERMISSION_DENIED"
    )
    response = await client.post("/api/v1/duplicates", json=broken)
    assert response.status == 401
    assert error_code(await response.json()) == "UNAUTHORIZED"


@BOTH_QUERIES
async def test_detect_answers_the_upstream_shape_with_extensions(
    client: Client, world: World, acme: Records
) -> None:
    older = await acme.contact(
        first_name="Alice", last_name="Martin", email="alice@example.com"
    )
    newer = await acme.contact(
        first_name="Alice", last_name="Martin", email="alice@example.com"
    )
    payload = await detect_contacts(client, world.acme, fields=["email"])
    assert set(payload) == {"duplicate_groups", "total_groups", "records_scanned"}
    assert payload["total_groups"] == 1
    assert payload["records_scanned"] == 2
    [group] = payload["duplicate_groups"]
    assert set(group) == {
        "records",
        "match_reason",
        "match_reasons",
        "match_value",
        "record_count",
    }
    assert group["match_reason"] == "email"
    assert group["match_reasons"] == ["email"]
    assert group["match_value"] == "alice@example.com"
    assert group["record_count"] == 2
    assert [r["id"] for r in group["records"]] == [str(older), str(newer)]
    record = group["records"][0]
    assert set(record) == {"id", *CONTACT_FIELDS, "created_at", "updated_at"}
    assert record["first_name"] == "Alice"
    assert record["additional_emails"] is None
    assert record["created_at"] == "2024-01-01T00:00:00Z"
    assert record["updated_at"].endswith("Z")


@pytest.mark.parametrize(
    "extra",
    [
        {"limit": True},
        {"limit": False},
        {"limit": "5"},
        {"limit": 5.0},
        {"limit": 2.5},
        {"limit": 0},
        {"limit": -1},
        {"limit": 1001},
        {"limit": [5]},
        {"fields": []},
        {"fields": "email"},
        {"fields": ["email", "zip"]},
        {"fields": ["Email"]},
        {"fields": [1]},
        {"fields": [None]},
        {"object_name": 7},
        {"object_name": None},
        {"object_name": "x" * 101},
        {"merge_strategy": "keep_master"},
        {"fields_": ["email"]},
    ],
)
async def test_detect_refuses_malformed_bodies(
    client: Client, world: World, extra: dict[str, Any]
) -> None:
    body = {"action": "detect", "object_name": "contacts", **extra}
    await expect_error(client, world.acme.admin_token, body, 400, "VALIDATION_ERROR")


async def test_detect_requires_object_name(client: Client, world: World) -> None:
    error = await expect_error(
        client, world.acme.admin_token, {"action": "detect"}, 400, "VALIDATION_ERROR"
    )
    assert "object_name" in error["message"]


async def test_limit_error_names_the_bounds(client: Client, world: World) -> None:
    body = {"action": "detect", "object_name": "contacts", "limit": 1001}
    error = await expect_error(
        client, world.acme.admin_token, body, 400, "VALIDATION_ERROR"
    )
    assert "limit" in error["message"]
    assert "1000" in error["message"]


async def test_limit_accepts_its_bounds_and_null_means_default(
    client: Client, world: World
) -> None:
    for limit in (1, 1000, None):
        payload = await detect_contacts(client, world.acme, limit=limit)
        assert payload["duplicate_groups"] == []
    payload = await detect_contacts(client, world.acme, fields=None)
    assert payload["total_groups"] == 0


async def test_unknown_object_is_invalid_object(client: Client, world: World) -> None:
    body = {"action": "detect", "object_name": "invoices"}
    error = await expect_error(
        client, world.acme.admin_token, body, 400, "INVALID_OBJECT"
    )
    assert "invoices" in error["message"]


async def test_body_is_validated_before_the_object(
    client: Client, world: World
) -> None:
    body = {"action": "detect", "object_name": "invoices", "limit": 0}
    await expect_error(client, world.acme.admin_token, body, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("object_name", ["opportunities", "notes"])
async def test_object_without_match_fields_cannot_be_matched(
    client: Client, world: World, object_name: str
) -> None:
    body = {"action": "detect", "object_name": object_name}
    error = await expect_error(
        client, world.acme.admin_token, body, 400, "VALIDATION_ERROR"
    )
    assert "cannot be matched" in error["message"]


async def test_field_the_object_cannot_match_on_is_named(
    client: Client, world: World
) -> None:
    body = {"action": "detect", "object_name": "opportunities", "fields": ["email"]}
    error = await expect_error(
        client, world.acme.admin_token, body, 400, "VALIDATION_ERROR"
    )
    assert error["message"].startswith("fields: opportunities cannot match on email")
    assert error["details"] == [
        {"field": "fields", "message": "opportunities cannot match on email"}
    ]
    body = {"action": "detect", "object_name": "notes", "fields": ["name", "email"]}
    error = await expect_error(
        client, world.acme.admin_token, body, 400, "VALIDATION_ERROR"
    )
    assert error["details"] == [
        {"field": "fields", "message": "notes cannot match on email"},
        {"field": "fields", "message": "notes cannot match on name"},
    ]


@BOTH_QUERIES
async def test_fields_restrict_matching_and_repeats_are_harmless(
    client: Client, world: World, acme: Records
) -> None:
    a = await acme.contact(email="same@example.com", phone="212-555-0147")
    b = await acme.contact(email="other@example.com", phone="(212) 555-0147")
    payload = await detect_contacts(client, world.acme, fields=["email", "email"])
    assert payload["total_groups"] == 0
    payload = await detect_contacts(client, world.acme, fields=["phone", "phone"])
    assert id_sets(payload) == [ids(a, b)]
    assert payload["duplicate_groups"][0]["match_reasons"] == ["phone"]


@BOTH_QUERIES
async def test_limit_cuts_groups_but_total_groups_counts_them_all(
    client: Client, world: World, acme: Records
) -> None:
    for index in range(3):
        await acme.contact(email=f"person{index}@example.com")
        await acme.contact(email=f"person{index}@example.com")
    payload = await detect_contacts(client, world.acme, limit=2)
    assert payload["total_groups"] == 3
    assert len(payload["duplicate_groups"]) == 2


async def test_default_limit_is_fifty(
    client: Client, world: World, acme: Records
) -> None:
    for index in range(51):
        await acme.contact(phone=f"212-555-{index:04d}")
        await acme.contact(phone=f"212.555.{index:04d}")
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 51
    assert len(payload["duplicate_groups"]) == 50


async def test_a_token_sees_its_own_organization_only(
    client: Client, world: World, conn: asyncpg.Connection
) -> None:
    globex = Records(conn, world.globex.schema)
    await globex.contact(email="shared@example.com")
    await globex.contact(email="shared@example.com")
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 0
    assert payload["records_scanned"] == 0
    payload = await detect_contacts(client, world.globex)
    assert payload["total_groups"] == 1


async def test_a_detection_is_counted_in_the_metrics(
    client: Client, world: World
) -> None:
    def runs() -> float:
        value = REGISTRY.get_sample_value(
            "dupes_detect_duration_seconds_count", {"object_name": "companies"}
        )
        return value or 0.0

    before = runs()
    await detect(client, world.acme, object_name="companies")
    assert runs() == before + 1


# --- section 3: the keys --------------------------------------------------------


async def test_email_fold_ignores_case_white_space_and_width_but_keeps_accents(
    client: Client, world: World, acme: Records
) -> None:
    plain = await acme.contact(email="ana.perez@example.com")
    shouted = await acme.contact(email="  ANA.PEREZ@Example.COM\t")
    nbsp = await acme.contact(email="\u00a0ana.perez@example.com\u3000")
    wide = await acme.contact(email="ａｎａ.perez@example.com")
    accented = await acme.contact(email="ana.pérez@example.com")
    sharp = await acme.contact(email="STRASSE@example.de")
    eszett = await acme.contact(email="straße@example.de")
    payload = await detect_contacts(client, world.acme)
    assert sorted(id_sets(payload), key=len) == [
        ids(sharp, eszett),
        ids(plain, shouted, nbsp, wide),
    ]
    assert str(accented) not in set().union(*id_sets(payload))


async def test_name_fold_collapses_inner_white_space(
    client: Client, world: World, acme: Records
) -> None:
    a = await acme.contact(first_name="Mary  Ann", last_name="O'Neil")
    b = await acme.contact(first_name=" mary\tann ", last_name="O'NEIL")
    payload = await detect_contacts(client, world.acme)
    group = group_of(payload, a, b)
    assert group["match_value"] == "mary ann o'neil"


async def test_every_email_of_a_record_matches(
    client: Client, world: World, acme: Records
) -> None:
    primary = await acme.contact(email="one@example.com")
    listed = await acme.contact(
        email="two@example.com", additional_emails=["x@example.com", "One@Example.com"]
    )
    both_listed = await acme.contact(additional_emails=["X@example.com "])
    payload = await detect_contacts(client, world.acme)
    assert group_of(payload, primary, listed)["match_value"] == "one@example.com"
    assert group_of(payload, listed, both_listed)["match_value"] == "x@example.com"
    assert payload["total_groups"] == 2


async def test_invalid_emails_never_group(
    client: Client, world: World, acme: Records
) -> None:
    for value in ("a@b@example.com", "@example.com", "user@", "no-at-sign", "@"):
        await acme.contact(email=value)
        await acme.contact(email=value)
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 0


async def test_phone_formats_prefixes_and_additional_phones_match(
    client: Client, world: World, acme: Records
) -> None:
    forms = [
        "(212) 555-0147",
        "212.555.0147",
        "+1 212 555 0147",
        "1-212-555-0147",
        "001 212 555 0147",
        "2125550147",
    ]
    records = [await acme.contact(phone=form) for form in forms]
    listed = await acme.contact(phone="none", additional_phones=["212 555 0147"])
    payload = await detect_contacts(client, world.acme)
    group = group_of(payload, *records, listed)
    assert group["match_value"] == "+12125550147"
    assert group["match_reason"] == "phone"


async def test_local_only_numbers_match_in_any_format(
    client: Client, world: World, acme: Records
) -> None:
    dashed = await acme.contact(phone="386-5286")
    bare = await acme.contact(phone="3865286")
    await acme.contact(phone="(773) 386-5286")
    payload = await detect_contacts(client, world.acme)
    assert id_sets(payload) == [ids(dashed, bare)]


async def test_international_prefix_00_is_read_as_plus(
    client: Client, world: World, acme: Records
) -> None:
    plus = await acme.contact(phone="+44 20 7946 0958")
    zeros = await acme.contact(phone="0044 20 7946 0958")
    payload = await detect_contacts(client, world.acme)
    assert group_of(payload, plus, zeros)["match_value"] == "+442079460958"


async def test_phones_are_read_in_the_organization_region(
    client: Client, world: World, conn: asyncpg.Connection
) -> None:
    org = await accounts.create_organization(conn, "paris", "FR")
    await accounts.create_user(conn, "paris", "admin@paris.test", "admin")
    token = (await accounts.create_token(conn, "admin@paris.test")).token
    paris = Records(conn, org["schema_name"])
    national = await paris.contact(phone="01 42 68 53 00")
    plus = await paris.contact(phone="+33 1 42 68 53 00")
    zeros = await paris.contact(phone="0033 1 42 68 53 00")
    status, payload = await post_detect(
        client, token, {"action": "detect", "object_name": "contacts"}
    )
    assert status == 200, payload
    assert group_of(payload, national, plus, zeros)["match_value"] == "+33142685300"
    # The same national text in a US organization is another number.
    acme = Records(conn, world.acme.schema)
    await acme.contact(phone="01 42 68 53 00")
    us_plus = await acme.contact(phone="+33 1 42 68 53 00")
    us_zeros = await acme.contact(phone="0033 1 42 68 53 00")
    payload = await detect_contacts(client, world.acme)
    assert id_sets(payload) == [ids(us_plus, us_zeros)]


async def test_extensions_are_part_of_the_phone_key(
    client: Client, world: World, acme: Records
) -> None:
    x12 = await acme.contact(phone="212-555-0147 x12")
    ext12 = await acme.contact(phone="(212) 555-0147 ext. 12")
    await acme.contact(phone="212-555-0147 x13")
    await acme.contact(phone="212-555-0147")
    payload = await detect_contacts(client, world.acme)
    assert id_sets(payload) == [ids(x12, ext12)]
    assert payload["duplicate_groups"][0]["match_value"] == "+12125550147;ext=12"


@BOTH_QUERIES
async def test_placeholders_and_blanks_never_group(
    client: Client, world: World, acme: Records
) -> None:
    for phone in ("000-000-0000", "(999) 999-9999", "N/A", "", "   ", "0", None):
        await acme.contact(
            phone=phone,
            email="" if phone else None,
            linkedin_url=" " if phone else None,
            first_name="Jane",
            last_name=" " if phone else None,
            additional_emails=[],
            additional_phones=["", "000 000 0000"],
        )
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 0
    assert payload["records_scanned"] == 7


async def test_linkedin_url_forms_and_bare_vanity_match_on_a_person(
    client: Client, world: World, acme: Records
) -> None:
    forms = [
        "https://www.linkedin.com/in/jane-doe/",
        "linkedin.com/in/Jane-Doe?trk=public_profile",
        "http://uk.linkedin.com/in/jane-doe/details/experience/",
        "https://m.linkedin.com/mwlite/in/jane-doe",
        "www.linkedin.com/in/jane%2Ddoe#about",
        "jane-doe",
    ]
    records = [await acme.contact(linkedin_url=form) for form in forms]
    await acme.contact(linkedin_url="https://notlinkedin.com/in/jane-doe")
    await acme.contact(linkedin_url="https://www.linkedin.com/company/jane-doe")
    payload = await detect_contacts(client, world.acme)
    assert id_sets(payload) == [ids(*records)]
    assert payload["duplicate_groups"][0]["match_value"] == "in:jane-doe"


async def test_bare_vanity_is_a_company_slug_on_companies(
    client: Client, world: World, acme: Records, conn: asyncpg.Connection
) -> None:
    page = await acme.company(
        linkedin_url="https://www.linkedin.com/company/acme-corp/"
    )
    bare = await acme.company(linkedin_url="Acme-Corp")
    await acme.company(linkedin_url="https://www.linkedin.com/in/acme-corp")
    await acme.contact(linkedin_url="acme-corp")
    await acme.contact(linkedin_url="https://www.linkedin.com/company/acme-corp")
    payload = await detect(client, world.acme, object_name="companies")
    assert id_sets(payload) == [ids(page, bare)]
    assert payload["duplicate_groups"][0]["match_value"] == "company:acme-corp"
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 0


async def test_person_names_need_both_parts(
    client: Client, world: World, acme: Records
) -> None:
    a = await acme.contact(first_name="Jane", last_name="Doe")
    b = await acme.contact(first_name="JANE", last_name="  doe ")
    await acme.contact(first_name="Jane", last_name=None)
    await acme.contact(first_name="Jane", last_name="")
    await acme.contact(first_name=None, last_name="Doe")
    await acme.contact(first_name="Doe", last_name="Jane")
    payload = await detect_contacts(client, world.acme)
    assert id_sets(payload) == [ids(a, b)]
    assert payload["duplicate_groups"][0]["match_value"] == "jane doe"


async def test_company_names_match_on_the_name_alone(
    client: Client, world: World, acme: Records
) -> None:
    a = await acme.company(name="ACME  Corp")
    b = await acme.company(name="acme corp ")
    await acme.company(name="Acme Corporation")
    await acme.contact(first_name="Acme", last_name="Corp")
    payload = await detect(client, world.acme, object_name="companies")
    assert id_sets(payload) == [ids(a, b)]
    assert payload["duplicate_groups"][0]["match_reason"] == "name"


@BOTH_QUERIES
async def test_same_key_twice_in_one_record_counts_once(
    client: Client, world: World, acme: Records
) -> None:
    await acme.contact(
        email="me@example.com",
        additional_emails=["ME@example.com", " me@example.com"],
        phone="212-555-0147",
        additional_phones=["(212) 555-0147"],
    )
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 0
    other = await acme.contact(additional_emails=["me@example.com"])
    payload = await detect_contacts(client, world.acme)
    [group] = payload["duplicate_groups"]
    assert group["record_count"] == 2
    assert str(other) in {r["id"] for r in group["records"]}


async def test_rows_written_outside_the_service_are_rekeyed_before_matching(
    client: Client, world: World, acme: Records, conn: asyncpg.Connection
) -> None:
    a = await acme.contact(email="first@example.com")
    b = await acme.contact(email="first@example.com")
    payload = await detect_contacts(client, world.acme)
    assert id_sets(payload) == [ids(a, b)]
    schema = quote_ident(world.acme.schema)
    await conn.execute(
        f"UPDATE {schema}.contacts SET email = 'changed@example.com' WHERE id = $1", b
    )
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 0
    stale = await conn.fetchval(
        f"SELECT count(*) FROM {schema}.contacts WHERE keys_stale"
    )
    assert stale == 0


# --- section 4: groups ------------------------------------------------------------


@BOTH_QUERIES
async def test_fields_giving_the_same_records_form_one_group(
    client: Client, world: World, acme: Records
) -> None:
    a = await acme.contact(
        first_name="Jo", last_name="Lee", email="jo@example.com", phone="212-555-0147"
    )
    b = await acme.contact(
        first_name="jo", last_name="lee", email="JO@example.com", phone="2125550147"
    )
    c = await acme.contact(first_name="Jo", last_name="Lee")
    payload = await detect_contacts(client, world.acme)
    pair = group_of(payload, a, b)
    assert pair["match_reason"] == "email"
    assert pair["match_reasons"] == ["email", "phone"]
    assert pair["match_value"] == "jo@example.com"
    trio = group_of(payload, a, b, c)
    assert trio["match_reasons"] == ["name"]
    assert payload["total_groups"] == 2


@BOTH_QUERIES
async def test_collapsed_group_reason_follows_the_field_order(
    client: Client, world: World, acme: Records
) -> None:
    a = await acme.contact(
        first_name="Jo", last_name="Lee", linkedin_url="jolee", phone="212-555-0147"
    )
    b = await acme.contact(
        first_name="Jo", last_name="Lee", linkedin_url="jolee", phone="212.555.0147"
    )
    payload = await detect_contacts(client, world.acme)
    group = group_of(payload, a, b)
    assert group["match_reason"] == "phone"
    assert group["match_reasons"] == ["phone", "linkedin", "name"]
    assert group["match_value"] == "+12125550147"
    payload = await detect_contacts(client, world.acme, fields=["name", "linkedin"])
    group = group_of(payload, a, b)
    assert group["match_reasons"] == ["linkedin", "name"]
    assert group["match_value"] == "in:jolee"


@BOTH_QUERIES
async def test_two_keys_of_one_field_with_the_same_records_form_one_group(
    client: Client, world: World, acme: Records
) -> None:
    a = await acme.contact(email="b@example.com", additional_emails=["a@example.com"])
    b = await acme.contact(email="a@example.com", additional_emails=["b@example.com"])
    payload = await detect_contacts(client, world.acme)
    assert payload["total_groups"] == 1
    group = group_of(payload, a, b)
    assert group["match_reasons"] == ["email"]
    assert group["match_value"] == "a@example.com"


@BOTH_QUERIES
async def test_groups_are_ordered_by_size_then_age_then_reason_then_key(
    client: Client, world: World, acme: Records
) -> None:
    oldest = await acme.contact(email="b@example.com", phone="212-555-0100")
    by_phone = await acme.contact(phone="212.555.0100")
    by_b = await acme.contact(email="b@example.com")
    later = await acme.contact(email="z@example.com", additional_emails=["a@x.com"])
    by_a = await acme.contact(email="a@x.com")
    by_z = await acme.contact(email="z@example.com")
    big = [await acme.contact(first_name="Big", last_name="Group") for _ in range(3)]
    payload = await detect_contacts(client, world.acme)
    assert id_sets(payload) == [
        ids(*big),
        ids(oldest, by_b),
        ids(oldest, by_phone),
        ids(later, by_a),
        ids(later, by_z),
    ]
    reasons = [g["match_reason"] for g in payload["duplicate_groups"]]
    assert reasons == ["name", "email", "phone", "email", "email"]


@BOTH_QUERIES
async def test_limit_keeps_the_groups_that_come_first(
    client: Client, world: World, acme: Records
) -> None:
    older = [await acme.contact(email="older@example.com") for _ in range(2)]
    newer = [await acme.contact(email="newer@example.com") for _ in range(2)]
    by_key = [await acme.contact(phone="212-555-0100") for _ in range(2)]
    for record in by_key:
        await acme.conn.execute(
            f"UPDATE {quote_ident(acme.schema)}.contacts SET created_at = $1 "
            "WHERE id = $2",
            BASE - timedelta(days=1),
            record,
        )
    big = [await acme.contact(first_name="Big", last_name="Group") for _ in range(3)]
    expected = [ids(*big), ids(*by_key), ids(*older), ids(*newer)]
    for limit in range(1, 5):
        payload = await detect_contacts(client, world.acme, limit=limit)
        assert payload["total_groups"] == 4
        assert id_sets(payload) == expected[:limit]


@BOTH_QUERIES
async def test_records_of_a_group_are_oldest_first_then_by_id(
    client: Client, world: World, acme: Records
) -> None:
    same_time = BASE - timedelta(days=1)
    newest = await acme.contact(email="x@example.com")
    twins = [
        await acme.contact(email="x@example.com", created_at=same_time)
        for _ in range(3)
    ]
    payload = await detect_contacts(client, world.acme)
    listed = [r["id"] for r in payload["duplicate_groups"][0]["records"]]
    assert listed == [*sorted(str(t) for t in twins), str(newest)]


@BOTH_QUERIES
async def test_a_group_lists_at_most_one_hundred_records_with_its_true_size(
    client: Client, world: World, acme: Records
) -> None:
    members = [await acme.contact(phone="+1 212 555 0147") for _ in range(103)]
    payload = await detect_contacts(client, world.acme)
    [group] = payload["duplicate_groups"]
    assert group["record_count"] == 103
    assert [r["id"] for r in group["records"]] == [str(m) for m in members[:100]]


WINDOW = [{"detect_window": 3}]


@pytest.mark.parametrize("settings_overrides", WINDOW)
async def test_old_records_join_groups_that_window_records_open(
    client: Client, world: World, acme: Records
) -> None:
    old = await acme.contact(email="old@example.com", phone="212-555-0100")
    await acme.contact(phone="212.555.0100")
    await acme.contact(first_name="Out", last_name="Side")
    await acme.contact(first_name="Out", last_name="Side")
    new = await acme.contact(email="OLD@example.com")
    await acme.contact(city="Springfield")
    await acme.contact(city="Springfield")
    payload = await detect_contacts(client, world.acme)
    assert payload["records_scanned"] == 3
    # The phone and name pairs lie wholly outside the window: nothing opens them.
    assert id_sets(payload) == [ids(old, new)]
    assert payload["total_groups"] == 1


@pytest.mark.parametrize("settings_overrides", [{"detect_window": 0}])
async def test_window_zero_scans_every_record(
    client: Client, world: World, acme: Records
) -> None:
    for _ in range(2):
        await acme.contact(email="old@example.com")
    for index in range(5):
        await acme.contact(city=f"Town {index}")
    payload = await detect_contacts(client, world.acme)
    assert payload["records_scanned"] == 7
    assert payload["total_groups"] == 1


async def test_records_scanned_is_the_size_of_the_default_window(
    client: Client, world: World, acme: Records
) -> None:
    for index in range(4):
        await acme.contact(city=f"Town {index}")
    payload = await detect_contacts(client, world.acme)
    assert payload["records_scanned"] == 4
    payload = await detect(client, world.acme, object_name="companies")
    assert payload["records_scanned"] == 0


@pytest.mark.parametrize("settings_overrides", [{"detect_window": 2}])
async def test_window_takes_the_newest_by_created_at_then_id(
    client: Client, world: World, acme: Records
) -> None:
    olds = [await acme.contact(email=f"tie{n}@example.com") for n in range(3)]
    tie = BASE + timedelta(days=1)
    news = [
        await acme.contact(email=f"tie{n}@example.com", created_at=tie)
        for n in range(3)
    ]
    payload = await detect_contacts(client, world.acme)
    assert payload["records_scanned"] == 2
    # Three records share the newest created_at: the two largest ids are the window.
    newest_two = sorted(range(3), key=lambda n: str(news[n]))[1:]
    assert {frozenset(group) for group in id_sets(payload)} == {
        frozenset(ids(olds[n], news[n])) for n in newest_two
    }
