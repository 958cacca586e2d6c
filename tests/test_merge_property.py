"""Property-based: random graphs of records and relations, random merges, and the
invariants every merge must keep.

Each example builds contacts, companies and opportunities with notes, junction rows
(opportunity_contacts, and a hand-made contact-to-contact junction), a hand-made table
with two plain references to contacts, and self-references; then runs a few merges.
Each merge is first run as a dry run, which must change nothing and report exactly
what the real merge then reports. After the real merge the database must equal what
an independent model of the rules predicts: every reference to a duplicate now names
the master, every related row still exists unless it was a junction repeat or
self-link (and those are exactly the rows the response counts), and the master holds
the values its strategy gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import World
from tests.test_merge_support import Client, Rows, merge_body, post_merge, snapshot

State = dict[str, dict[UUID, dict[str, Any]]]

# The columns each table is compared on (besides id).
COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": (
        "first_name",
        "last_name",
        "email",
        "additional_emails",
        "phone",
        "job_title",
        "company_id",
        "referred_by_id",
    ),
    "companies": ("name", "industry", "employees", "parent_company_id"),
    "opportunities": ("name", "company_id", "primary_contact_id"),
    "notes": ("body", "contact_id", "company_id"),
    "opportunity_contacts": ("opportunity_id", "contact_id", "role"),
    "contact_links": ("from_contact", "to_contact", "kind"),
    "call_logs": ("who", "other", "minutes"),
}
FIELDS: dict[str, tuple[str, ...]] = {
    "contacts": (
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
    ),
    "companies": (
        "name",
        "domain",
        "email",
        "phone",
        "linkedin_url",
        "industry",
        "employees",
        "parent_company_id",
    ),
}


@dataclass(frozen=True)
class Ref:
    """One column that references an object, as the model of the rules sees it."""

    table: str
    column: str
    is_self: bool = False
    # For a junction: the other column of its unique key.
    key_partner: str | None = None
    # The partner references the same object (contact-to-contact).
    partner_is_object: bool = False


REFS: dict[str, list[Ref]] = {
    "contacts": sorted(
        [
            Ref("contacts", "referred_by_id", is_self=True),
            Ref("notes", "contact_id"),
            Ref("opportunities", "primary_contact_id"),
            Ref("opportunity_contacts", "contact_id", key_partner="opportunity_id"),
            Ref(
                "contact_links",
                "from_contact",
                key_partner="to_contact",
                partner_is_object=True,
            ),
            Ref(
                "contact_links",
                "to_contact",
                key_partner="from_contact",
                partner_is_object=True,
            ),
            Ref("call_logs", "who"),
            Ref("call_logs", "other"),
        ],
        key=lambda r: (not r.is_self, r.table, r.column),
    ),
    "companies": sorted(
        [
            Ref("companies", "parent_company_id", is_self=True),
            Ref("contacts", "company_id"),
            Ref("notes", "company_id"),
            Ref("opportunities", "company_id"),
        ],
        key=lambda r: (not r.is_self, r.table, r.column),
    ),
}
JUNCTIONS = {"contacts": ("contact_links", "opportunity_contacts"), "companies": ()}


@dataclass
class MergeSpec:
    object_name: str
    master: int
    duplicates: list[int]
    strategy: str


@dataclass
class Graph:
    contacts: list[dict[str, Any]]
    companies: list[dict[str, Any]]
    opportunities: list[dict[str, Any]]
    notes: list[tuple[int | None, int | None]]
    opportunity_links: dict[tuple[int, int], str | None]
    contact_links: dict[tuple[int, int], str | None]
    call_logs: list[tuple[int, int | None]]
    merges: list[MergeSpec] = field(default_factory=list)


TEXTS = st.sampled_from([None, "", "  ", "\t", "Ann", "Bob", "ann"])
EMAILS = st.sampled_from([None, "", " ", "a@x.io", "b@x.io"])
LISTS = st.sampled_from([None, [], ["c@x.io"], ["d@x.io", "c@x.io"]])


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    n_contacts = draw(st.integers(2, 7))
    n_companies = draw(st.integers(2, 4))
    n_opps = draw(st.integers(1, 3))
    contact_index = st.integers(0, n_contacts - 1)
    company_index = st.integers(0, n_companies - 1)
    maybe_contact = st.none() | contact_index
    maybe_company = st.none() | company_index
    contacts = [
        {
            "first_name": draw(TEXTS),
            "last_name": draw(TEXTS),
            "email": draw(EMAILS),
            "additional_emails": draw(LISTS),
            "phone": draw(st.sampled_from([None, "", "555-0100", "555-0199"])),
            "job_title": draw(TEXTS),
            "company_id": draw(maybe_company),
            "referred_by_id": draw(maybe_contact),
        }
        for _ in range(n_contacts)
    ]
    companies = [
        {
            "name": draw(st.sampled_from(["Acme", "ACME", "Beta"])),
            "industry": draw(TEXTS),
            "employees": draw(st.sampled_from([None, Decimal(0), Decimal(12)])),
            "parent_company_id": draw(maybe_company),
        }
        for _ in range(n_companies)
    ]
    opportunities = [
        {"company_id": draw(maybe_company), "primary_contact_id": draw(maybe_contact)}
        for _ in range(n_opps)
    ]
    notes = draw(
        st.lists(st.tuples(maybe_contact, maybe_company), min_size=0, max_size=8)
    )
    roles = st.sampled_from([None, "buyer", "user"])
    opportunity_links = draw(
        st.dictionaries(
            st.tuples(st.integers(0, n_opps - 1), contact_index), roles, max_size=8
        )
    )
    contact_links = draw(
        st.dictionaries(st.tuples(contact_index, contact_index), roles, max_size=8)
    )
    call_logs = draw(st.lists(st.tuples(contact_index, maybe_contact), max_size=5))
    merges: list[MergeSpec] = []
    for _ in range(draw(st.integers(1, 3))):
        object_name = draw(st.sampled_from(["contacts", "contacts", "companies"]))
        size = n_contacts if object_name == "contacts" else n_companies
        master = draw(st.integers(0, size - 1))
        others = [i for i in range(size) if i != master]
        duplicates = draw(
            st.lists(
                st.sampled_from(others),
                min_size=1,
                max_size=min(4, len(others)),
                unique=True,
            )
        )
        strategy = draw(st.sampled_from(["keep_master", "fill_blanks"]))
        merges.append(MergeSpec(object_name, master, duplicates, strategy))
    return Graph(
        contacts,
        companies,
        opportunities,
        notes,
        opportunity_links,
        contact_links,
        call_logs,
        merges,
    )


HAND_MADE = """
CREATE TABLE contact_links (
    id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    from_contact uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    to_contact uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    kind text,
    PRIMARY KEY (from_contact, to_contact)
);
CREATE TABLE call_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    who uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    other uuid REFERENCES contacts (id) ON DELETE SET NULL,
    minutes integer
)
"""
ALL_TABLES = (
    "contacts, companies, opportunities, notes, opportunity_contacts, match_keys, "
    "merge_audit, contact_links, call_logs"
)


@pytest.fixture
async def rows(conn: asyncpg.Connection, world: World) -> Rows:
    made = Rows(conn, world.acme.schema)
    await made.execute(HAND_MADE)
    return made


async def build(rows: Rows, graph: Graph) -> tuple[list[UUID], list[UUID]]:
    """Inserts the graph; returns the ids of contacts and companies by index."""
    await rows.execute(f"TRUNCATE {ALL_TABLES}")
    companies = [
        await rows.company(c["name"], industry=c["industry"], employees=c["employees"])
        for c in graph.companies
    ]
    for spec, company in zip(graph.companies, companies, strict=True):
        if spec["parent_company_id"] is not None:
            await _set(
                rows,
                "companies",
                company,
                "parent_company_id",
                companies[spec["parent_company_id"]],
            )
    contacts = []
    for spec in graph.contacts:
        values = {k: v for k, v in spec.items() if k != "referred_by_id"}
        if values["company_id"] is not None:
            values["company_id"] = companies[values["company_id"]]
        contacts.append(await rows.contact(**values))
    for spec, contact in zip(graph.contacts, contacts, strict=True):
        if spec["referred_by_id"] is not None:
            await _set(
                rows,
                "contacts",
                contact,
                "referred_by_id",
                contacts[spec["referred_by_id"]],
            )
    opportunities = [
        await rows.opportunity(
            f"deal {i}",
            company_id=_pick(companies, o["company_id"]),
            primary_contact_id=_pick(contacts, o["primary_contact_id"]),
        )
        for i, o in enumerate(graph.opportunities)
    ]
    for i, (on_contact, on_company) in enumerate(graph.notes):
        await rows.note(
            f"note {i}",
            contact_id=_pick(contacts, on_contact),
            company_id=_pick(companies, on_company),
        )
    for (opp, linked), role in graph.opportunity_links.items():
        await rows.link(opportunities[opp], contacts[linked], role)
    for (a, b), kind in graph.contact_links.items():
        await rows.insert(
            "contact_links", from_contact=contacts[a], to_contact=contacts[b], kind=kind
        )
    for i, (who, other) in enumerate(graph.call_logs):
        await rows.insert(
            "call_logs", who=contacts[who], other=_pick(contacts, other), minutes=i
        )
    return contacts, companies


def _pick(ids: list[UUID], index: int | None) -> UUID | None:
    return ids[index] if index is not None else None


async def _set(rows: Rows, table: str, record: UUID, column: str, value: UUID) -> None:
    await rows.conn.execute(
        f'UPDATE {rows.table(table)} SET "{column}" = $1 WHERE id = $2', value, record
    )


async def read_state(rows: Rows) -> State:
    state: State = {}
    for table, columns in COLUMNS.items():
        listed = ", ".join(f'"{c}"' for c in columns)
        fetched = await rows.conn.fetch(f"SELECT id, {listed} FROM {rows.table(table)}")
        state[table] = {r["id"]: {c: r[c] for c in columns} for r in fetched}
    return state


def _blank(value: Any) -> bool:
    # Written apart from the service's own rule, so that the two check each other.
    if value is None or value == [] or value == {}:
        return True
    return isinstance(value, str) and value.strip() == ""


@dataclass
class Expected:
    state: State
    relinked: dict[str, int]
    dropped: dict[str, int]
    cleared: int


def expected_merge(
    before: State, object_name: str, master: UUID, duplicates: list[UUID], strategy: str
) -> Expected:
    """The state after a merge, computed row by row from the rules."""
    state = {
        table: {i: dict(r) for i, r in rows.items()} for table, rows in before.items()
    }
    merged = {master, *duplicates}
    rank = {d: position for position, d in enumerate(duplicates)}
    relinked: dict[str, int] = {}
    dropped = dict.fromkeys(JUNCTIONS[object_name], 0)
    cleared = 0
    table = state[object_name]
    master_before = dict(table[master])
    duplicate_rows = [dict(table[d]) for d in duplicates]

    for ref in REFS[object_name]:
        rows = state[ref.table]
        moved = 0
        if ref.is_self:
            for record_id, row in rows.items():
                if row[ref.column] not in rank:
                    continue
                if record_id == master:
                    row[ref.column] = None
                    cleared += 1
                elif record_id not in merged:
                    row[ref.column] = master
                    moved += 1
        elif ref.key_partner is None:
            for row in rows.values():
                if row[ref.column] in rank:
                    row[ref.column] = master
                    moved += 1
        else:
            partner = ref.key_partner
            candidates = sorted(
                (r for r in rows.items() if r[1][ref.column] in rank),
                key=lambda item: rank[item[1][ref.column]],
            )
            kept = {r[partner] for r in rows.values() if r[ref.column] == master}
            for record_id, row in candidates:
                if ref.partner_is_object and row[partner] in merged:
                    del rows[record_id]
                    dropped[ref.table] += 1
            survivors = [(i, r) for i, r in candidates if i in rows]
            claimed: set[Any] = set()
            for record_id, row in survivors:
                key = row[partner]
                if key in kept or key in claimed:
                    del rows[record_id]
                    dropped[ref.table] += 1
                claimed.add(key)
            for record_id, row in survivors:
                if record_id in rows:
                    row[ref.column] = master
                    moved += 1
        relinked[f"{ref.table}.{ref.column}"] = moved

    for d in duplicates:
        del table[d]
    written = table[master]
    self_column = next(r.column for r in REFS[object_name] if r.is_self)
    for name in COLUMNS[object_name]:
        value = master_before[name]
        if name == self_column and value in rank:
            value = None
        if strategy == "fill_blanks" and _blank(value):
            for row in duplicate_rows:
                candidate = row[name]
                if _blank(candidate) or (name == self_column and candidate in merged):
                    continue
                value = candidate
                break
        written[name] = value
    return Expected(state, relinked, dropped, cleared)


def _references(state: State) -> Iterator[tuple[str, str, UUID]]:
    for object_name, refs in REFS.items():
        for ref in refs:
            for row in state[ref.table].values():
                if row[ref.column] is not None:
                    yield object_name, f"{ref.table}.{ref.column}", row[ref.column]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(graph=graphs())
async def test_random_merges_keep_every_invariant(
    client: Client, world: World, rows: Rows, graph: Graph
) -> None:
    contacts, companies = await build(rows, graph)
    ids = {"contacts": contacts, "companies": companies}
    token = world.acme.admin_token
    schema = world.acme.schema
    for spec in graph.merges:
        master = ids[spec.object_name][spec.master]
        duplicates = [ids[spec.object_name][i] for i in spec.duplicates]
        body = merge_body(
            master, duplicates, spec.object_name, merge_strategy=spec.strategy
        )
        before = await read_state(rows)
        whole_before = await snapshot(rows.conn, schema)
        alive = set(before[spec.object_name])

        dry_status, dry = await post_merge(client, token, {**body, "dry_run": True})
        assert await snapshot(rows.conn, schema) == whole_before, "dry run changed data"
        status, real = await post_merge(client, token, body)

        if not {master, *duplicates} <= alive:
            # An earlier merge of the example deleted one of them.
            missing = [str(i) for i in [master, *duplicates] if i not in alive]
            assert (dry_status, status) == (404, 404), real
            assert real["error"]["details"] == missing
            assert await snapshot(rows.conn, schema) == whole_before
            continue
        assert (dry_status, status) == (200, 200), (dry, real)
        after = await read_state(rows)
        want = expected_merge(
            before, spec.object_name, master, duplicates, spec.strategy
        )

        # The database is exactly what the rules predict, row by row.
        assert after == want.state
        # The response counts what changed, and nothing else.
        assert real["relinked"] == want.relinked
        assert real["junction_rows_dropped"] == want.dropped
        assert real["self_references_cleared"] == want.cleared
        assert real["duplicates_deleted"] == len(duplicates)
        lost = {
            table: len(set(before[table]) - set(after[table]))
            for table in COLUMNS
            if table != spec.object_name
        }
        assert lost == {t: want.dropped.get(t, 0) for t in lost}
        # No row references a deleted record.
        for object_name, label, target in _references(after):
            assert target in after[object_name], f"{label} points at deleted {target}"
        # The dry run predicted exactly this.
        for report in (dry, real):
            del report["dry_run"], report["audit_id"], report["master"]["updated_at"]
        assert dry == real
        for name in FIELDS[spec.object_name]:
            if name in COLUMNS[spec.object_name]:
                got = real["master"][name]
                expected = want.state[spec.object_name][master][name]
                assert got == _as_json(expected), name


def _as_json(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
