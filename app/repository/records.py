"""Named queries over an organization's records, links and match keys.

Identifiers (schema, table, columns) come from the metadata and are quoted by
`app.sql.render`; values are bound parameters. Database errors that a request can
cause are translated here, once, into the project's errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from app.db import Moment
from app.errors import RecordNotFound, ValidationFailed
from app.metadata import LinkMeta, ObjectMeta
from app.services.serialize import record_columns
from app.sql import render, sql


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Constraint and data errors as 400s. Validation runs first; this is the net for
    what only the database can see, such as a related record deleted meanwhile."""
    try:
        yield
    except asyncpg.ForeignKeyViolationError as exc:
        raise ValidationFailed(
            "a relation points to a record that does not exist in this organization"
            f" ({exc.constraint_name})"
        ) from exc
    except (asyncpg.NotNullViolationError, asyncpg.CheckViolationError) as exc:
        column = getattr(exc, "column_name", None) or exc.constraint_name
        raise ValidationFailed(f"{column} is refused by the database") from exc
    except asyncpg.DataError as exc:
        raise ValidationFailed(f"a value is refused by the database: {exc}") from exc


def _fields(obj: ObjectMeta, names: Sequence[str]) -> list[str]:
    """Only names the metadata knows reach SQL text, whatever the caller passes."""
    known = set(obj.field_names) | {"id"}
    return [name for name in names if name in known]


async def get(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta, record_id: UUID
) -> asyncpg.Record | None:
    query = render(
        "record_by_id", schema=schema, table=obj.table, columns=record_columns(obj)
    )
    return await conn.fetchrow(query, record_id)


async def insert(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta, values_json: str
) -> asyncpg.Record:
    query = render(
        "record_insert",
        schema=schema,
        table=obj.table,
        fields=obj.field_names,
        columns=record_columns(obj),
    )
    with translated_errors():
        row = await conn.fetchrow(query, values_json)
    assert row is not None
    return row


async def insert_many(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta, records_json: str
) -> list[asyncpg.Record]:
    """Inserts records given as a JSON array; each object carries its `id`."""
    query = render(
        "records_insert_many",
        schema=schema,
        table=obj.table,
        fields=("id", *obj.field_names),
        columns=record_columns(obj),
    )
    with translated_errors():
        return list(await conn.fetch(query, records_json))


async def update(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    record_id: UUID,
    names: Sequence[str],
    values_json: str,
) -> asyncpg.Record | None:
    """Sets the named fields; no names only bumps `updated_at`."""
    fields = _fields(obj, names)
    columns = record_columns(obj)
    if not fields:
        query = render("record_touch", schema=schema, table=obj.table, columns=columns)
        return await conn.fetchrow(query, record_id)
    query = render(
        "record_update", schema=schema, table=obj.table, fields=fields, columns=columns
    )
    with translated_errors():
        return await conn.fetchrow(query, record_id, values_json)


async def delete(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta, record_id: UUID
) -> bool:
    query = render("record_delete", schema=schema, table=obj.table)
    return await conn.fetchval(query, record_id) is not None


async def existing_ids(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta, ids: Sequence[UUID]
) -> set[UUID]:
    query = render("records_existing_ids", schema=schema, table=obj.table)
    return {row["id"] for row in await conn.fetch(query, list(ids))}


async def page(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    after: tuple[Moment, UUID],
    limit: int,
    filter_names: Sequence[str],
    filter_json: str,
) -> list[asyncpg.Record]:
    """Records after a keyset position, oldest first, optionally filtered."""
    columns = record_columns(obj)
    filters = _fields(obj, filter_names)
    if not filters:
        query = render("records_page", schema=schema, table=obj.table, columns=columns)
        return list(await conn.fetch(query, after[0], after[1], limit))
    query = render(
        "records_page_filtered",
        schema=schema,
        table=obj.table,
        columns=columns,
        filters=filters,
    )
    return list(await conn.fetch(query, after[0], after[1], limit, filter_json))


async def count(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    filter_names: Sequence[str],
    filter_json: str,
) -> int:
    filters = _fields(obj, filter_names)
    if not filters:
        query = render("records_count", schema=schema, table=obj.table)
        return int(await conn.fetchval(query))
    query = render(
        "records_count_filtered", schema=schema, table=obj.table, filters=filters
    )
    return int(await conn.fetchval(query, filter_json))


def _link_columns(link: LinkMeta) -> tuple[str, ...]:
    return (link.target_column, *link.extra_columns)


async def links(
    conn: asyncpg.Connection, schema: str, link: LinkMeta, record_id: UUID
) -> list[asyncpg.Record]:
    query = render(
        "links_of_record",
        schema=schema,
        junction=link.junction_table,
        link_columns=_link_columns(link),
        source=link.source_column,
        target=link.target_column,
    )
    return list(await conn.fetch(query, record_id))


async def upsert_link(
    conn: asyncpg.Connection,
    schema: str,
    link: LinkMeta,
    source_id: UUID,
    target_id: UUID,
    extras_json: str,
) -> asyncpg.Record:
    """Creates or updates one link; the row says whether it was `inserted`."""
    identifiers: dict[str, Any] = {
        "schema": schema,
        "junction": link.junction_table,
        "source": link.source_column,
        "target": link.target_column,
        "link_columns": _link_columns(link),
    }
    if link.extra_columns:
        query = render("link_upsert", extras=link.extra_columns, **identifiers)
        args: tuple[Any, ...] = (source_id, target_id, extras_json)
    else:
        query = render("link_upsert_plain", **identifiers)
        args = (source_id, target_id)
    try:
        with translated_errors():
            row = await conn.fetchrow(query, *args)
    except ValidationFailed as exc:
        # Both ends were checked first; one vanishing meanwhile reads as a 404.
        raise RecordNotFound("record not found") from exc
    assert row is not None
    return row


async def delete_link(
    conn: asyncpg.Connection,
    schema: str,
    link: LinkMeta,
    source_id: UUID,
    target_id: UUID,
) -> bool:
    query = render(
        "link_delete",
        schema=schema,
        junction=link.junction_table,
        source=link.source_column,
        target=link.target_column,
    )
    return await conn.fetchval(query, source_id, target_id) is not None


async def existing_keys(
    conn: asyncpg.Connection,
    schema: str,
    object_name: str,
    keys: Sequence[tuple[str, str]],
) -> set[tuple[str, str]]:
    """The (field, key) pairs among `keys` that a stored record already holds."""
    if not keys:
        return set()
    query = render("existing_match_keys", schema=schema)
    rows = await conn.fetch(
        query, object_name, [field for field, _ in keys], [key for _, key in keys]
    )
    return {(row["field"], row["key"]) for row in rows}


async def lock_imports(conn: asyncpg.Connection, schema: str, object_name: str) -> None:
    """Holds the import lock of one object until the transaction ends."""
    await conn.execute(sql("import_lock"), f"{schema}.{object_name}")


async def copy_rows(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Bulk-writes rows with COPY (asyncpg quotes the identifiers it is given)."""
    with translated_errors():
        await conn.copy_records_to_table(
            table, records=rows, columns=list(columns), schema_name=schema
        )
