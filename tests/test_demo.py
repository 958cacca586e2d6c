"""`dupes demo`: realistic records, related rows, and exactly the planted duplicates."""

from __future__ import annotations

import json
from collections import defaultdict
from uuid import UUID

import asyncpg

from app import demo
from app.sql import quote_ident
from tests.conftest import World
from tests.processes import dupes_env, run_cli


async def key_clusters(
    conn: asyncpg.Connection, schema: str, object_name: str
) -> set[frozenset[UUID]]:
    """Records linked by any shared match key, as connected sets of two or more."""
    rows = await conn.fetch(
        f"SELECT field, key, record_id FROM {quote_ident(schema)}.match_keys"
        " WHERE object_name = $1",
        object_name,
    )
    holders: dict[tuple[str, str], list[UUID]] = defaultdict(list)
    for row in rows:
        holders[(row["field"], row["key"])].append(row["record_id"])
    parent: dict[UUID, UUID] = {}

    def root(node: UUID) -> UUID:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for records in holders.values():
        for other in records[1:]:
            parent[root(other)] = root(records[0])
    clusters: dict[UUID, set[UUID]] = defaultdict(set)
    for node in list(parent):
        clusters[root(node)].add(node)
    return {frozenset(members) for members in clusters.values() if len(members) > 1}


async def count(conn: asyncpg.Connection, schema: str, table: str) -> int:
    value = await conn.fetchval(
        f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(table)}"
    )
    return int(value)


async def test_demo_plants_exactly_the_duplicate_groups_it_reports(
    conn: asyncpg.Connection, world: World
) -> None:
    summary = await demo.fill(conn, "acme", 120, seed=11, duplicate_share=0.25)

    schema = world.acme.schema
    assert summary.contacts == await count(conn, schema, "contacts") == 120
    assert summary.companies == await count(conn, schema, "companies") == 24
    for object_name in ("contacts", "companies"):
        planted = {
            frozenset(members)
            for name, members in summary.groups
            if name == object_name
        }
        assert planted
        assert await key_clusters(conn, schema, object_name) == planted
    assert summary.planted_groups == len(summary.groups)
    assert summary.planted_duplicates == 30 + 6


async def test_demo_uses_every_form_the_match_rules_fold(
    conn: asyncpg.Connection,
) -> None:
    summary = await demo.fill(conn, "acme", 120, seed=3, duplicate_share=0.2)

    contact_forms = {f.split(":")[1] for f in summary.forms if f.startswith("contacts")}
    company_forms = {f.split(":")[1] for f in summary.forms if f.startswith("compan")}
    assert contact_forms == set(demo.CONTACT_FORMS)
    assert company_forms == set(demo.COMPANY_FORMS)


async def test_demo_rows_are_keyed_and_related_like_real_crm_data(
    conn: asyncpg.Connection, world: World
) -> None:
    summary = await demo.fill(conn, "acme", 100, seed=5)

    schema = quote_ident(world.acme.schema)
    for table in ("contacts", "companies"):
        stale = await conn.fetchval(
            f"SELECT count(*) FROM {schema}.{table} WHERE keys_stale"
        )
        assert stale == 0
    assert summary.notes == await count(conn, world.acme.schema, "notes") > 0
    assert summary.opportunities == await count(
        conn, world.acme.schema, "opportunities"
    )
    assert summary.opportunity_links == await count(
        conn, world.acme.schema, "opportunity_contacts"
    )
    roles = await conn.fetchval(
        f"SELECT count(DISTINCT role) FROM {schema}.opportunity_contacts"
    )
    assert roles >= 3
    notes_of_duplicates = await conn.fetchval(
        f"SELECT count(*) FROM {schema}.notes WHERE contact_id = ANY($1::uuid[])",
        [member for _, members in summary.groups for member in members[1:]],
    )
    assert notes_of_duplicates > 0
    # The original of each group is its oldest record, the natural master.
    for object_name, members in summary.groups:
        created = await conn.fetch(
            f"SELECT id FROM {schema}.{quote_ident(object_name)}"
            " WHERE id = ANY($1::uuid[]) ORDER BY created_at, id",
            members,
        )
        assert created[0]["id"] == members[0]


async def test_demo_command_creates_the_organization_and_prints_a_summary(
    db_dsn: str, conn: asyncpg.Connection
) -> None:
    env = dupes_env(DATABASE_URL=db_dsn)
    code, out, err = await run_cli(
        "demo", "--org", "initech", "--contacts", "40", "--seed", "1", "--json", env=env
    )

    assert code == 0, err
    summary = json.loads(out)
    assert summary["organization"] == "initech"
    assert summary["contacts"] == 40
    assert summary["planted_groups"] > 0
    schema = await conn.fetchval(
        "SELECT schema_name FROM dupes_core.organizations WHERE name = 'initech'"
    )
    assert await count(conn, schema, "contacts") == 40

    code, out, err = await run_cli(
        "demo", "--org", "initech", "--contacts", "1", env=env
    )
    assert code == 1
    assert "--contacts" in err
