"""Every named query prepares against the migrated schema; every route is documented."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from app.sql import QUERIES, quote_ident, render
from app.web.app import all_endpoints
from tests.conftest import World

# Sample identifiers for the placeholders that queries use.
SAMPLES: dict[str, Any] = {
    "table": "contacts",
    "columns": ["id", "email"],
    "junction": "opportunity_contacts",
    "column": "contact_id",
    "fields": ["email", "phone"],
    "filters": ["email"],
    "source": "opportunity_id",
    "target": "contact_id",
    "extras": ["role"],
    "link_columns": ["contact_id", "role"],
    "source_table": "opportunity_contacts",
    "other_columns": ["opportunity_id"],
    "partner_columns": ["opportunity_id"],
    "self_column": "referred_by_id",
    "foreign_schema": "dupes_core",
    "foreign_table": "users",
    "foreign_columns": ["id"],
    "key_columns": ["id"],
}


async def test_every_named_query_prepares(
    conn: asyncpg.Connection, world: World
) -> None:
    failures: list[str] = []
    for name, query in sorted(QUERIES.items()):
        values = {**SAMPLES, "schema": world.acme.schema}
        unknown = query.placeholders - values.keys()
        if unknown:
            failures.append(f"{name}: no sample for {sorted(unknown)}")
            continue
        text = render(name, **{k: values[k] for k in query.placeholders})
        try:
            async with conn.transaction():
                await conn.prepare(text)
                raise _Rollback
        except _Rollback:
            pass
        except asyncpg.PostgresError as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, "\n".join(failures)


class _Rollback(Exception):
    pass


def test_quote_ident_doubles_quotes() -> None:
    assert quote_ident('we"ird') == '"we""ird"'


async def test_openapi_documents_every_route(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    registered = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert registered == documented
    assert {(e.method, e.path) for e in all_endpoints()} == documented


async def test_openapi_request_schema_is_the_validating_model(
    client: TestClient[Any, Any],
) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    operation = document["paths"]["/api/v1/duplicates"]["post"]
    assert operation["security"] == [{"bearer": []}]
    assert "403" in operation["responses"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/DuplicatesRequest")
