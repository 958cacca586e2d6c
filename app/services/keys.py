"""Match keys: computed in Python from the metadata, stored for detection to read.

Every write of the service computes the keys of the rows it writes in the same
transaction (`write_keys`, after `mark_fresh`). Rows written by anything else are
marked stale by a trigger and re-keyed by `rekey_stale` before detection reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from app.matching.normalize import (
    MatchField,
    company_name_key,
    email_key,
    linkedin_key,
    person_name_key,
    phone_key,
)
from app.metadata import ObjectMeta
from app.sql import render, sql

Key = tuple[MatchField, str]
REKEY_BATCH = 5000


def _values(value: Any) -> Iterable[Any]:
    if isinstance(value, list | tuple):
        return value
    return (value,)


def record_keys(obj: ObjectMeta, values: Mapping[str, Any], region: str) -> set[Key]:
    """Every (match field, key) a record holds; a value with no key adds nothing."""
    keys: set[Key] = set()
    for match_field in obj.match_fields:
        sources = obj.match_sources(match_field)
        if match_field == "name":
            if obj.kind == "person" and len(sources) >= 2:
                key = person_name_key(
                    values.get(sources[0].name), values.get(sources[1].name)
                )
            elif obj.kind == "company":
                key = company_name_key(values.get(sources[0].name))
            else:
                key = None
            if key is not None:
                keys.add(("name", key))
            continue
        for source in sources:
            for value in _values(values.get(source.name)):
                if match_field == "email":
                    key = email_key(value)
                elif match_field == "phone":
                    key = phone_key(value, region)
                else:
                    key = linkedin_key(value, obj.kind)
                if key is not None:
                    keys.add((match_field, key))
    return keys


def match_source_columns(obj: ObjectMeta) -> tuple[str, ...]:
    """The columns whose values make the keys, in declaration order."""
    return tuple(f.name for f in obj.fields if f.match_field is not None)


async def mark_fresh(conn: asyncpg.Connection) -> None:
    """Within the current transaction, writes do not mark rows stale."""
    await conn.execute(sql("mark_keys_fresh"))


async def write_keys(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    rows: Sequence[Mapping[str, Any]],
    region: str,
) -> None:
    """Replaces the stored keys of `rows` (each holding `id` and its match fields)."""
    if not rows or not obj.match_fields:
        return
    ids: list[UUID] = []
    fields: list[str] = []
    keys: list[str] = []
    owners: list[UUID] = []
    for row in rows:
        record_id = row["id"]
        ids.append(record_id)
        for field, key in record_keys(obj, row, region):
            fields.append(field)
            keys.append(key)
            owners.append(record_id)
    await conn.execute(render("delete_record_keys", schema=schema), obj.name, ids)
    if keys:
        await conn.execute(
            render("insert_record_keys", schema=schema), obj.name, fields, keys, owners
        )


async def rekey_stale(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    region: str,
    batch_size: int = REKEY_BATCH,
) -> int:
    """Re-keys every row marked stale, batch by batch; returns how many there were.

    Each batch is its own transaction, so a large backlog does not hold locks long.
    """
    if not obj.match_fields:
        return 0
    columns = ("id", *match_source_columns(obj))
    select = render("lock_stale_rows", schema=schema, table=obj.table, columns=columns)
    clear = render("clear_stale_marks", schema=schema, table=obj.table)
    total = 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(select, batch_size)
            if not rows:
                return total
            await write_keys(conn, schema, obj, [dict(row) for row in rows], region)
            await conn.execute(clear, [row["id"] for row in rows])
        total += len(rows)
        if len(rows) < batch_size:
            return total
