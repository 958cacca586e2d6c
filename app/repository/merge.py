"""Named queries of the merge: locking, the catalog's foreign keys, re-pointing, audit.

Every function here runs inside the caller's transaction. PostgreSQL errors are turned
into the project's own exceptions on the way out, so the service above never sees an
asyncpg class: a clash with a constraint is a `Conflict` naming the table and the
constraint, and a deadlock or serialization failure is a `MergeContention`, which the
service retries.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

import asyncpg

from app.errors import Conflict
from app.sql import render, sql

P = ParamSpec("P")
T = TypeVar("T")


class MergeContention(Conflict):
    """Another transaction got in the way (deadlock, serialization); worth a retry."""


_CONTENDED = "another request changed these records at the same time; try again"


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """One foreign key that points at the object's table, as the catalog states it."""

    constraint: str
    source_schema: str
    source_table: str
    source_oid: int
    source_columns: tuple[str, ...]
    target_columns: tuple[str, ...]
    source_is_referenced: bool


@dataclass(frozen=True, slots=True)
class UniqueIndex:
    """One unique index of a referencing table (primary keys included)."""

    table_oid: int
    constraint: str
    key_columns: tuple[str, ...]
    nulls_not_distinct: bool
    is_partial_or_expression: bool


def _conflict_from(exc: asyncpg.PostgresError) -> Conflict:
    table = getattr(exc, "table_name", None)
    constraint = getattr(exc, "constraint_name", None)
    column = getattr(exc, "column_name", None)
    detail: dict[str, str] = {}
    if table:
        detail["table"] = table
    if constraint:
        detail["constraint"] = constraint
    if column:
        detail["column"] = column
    if isinstance(exc, asyncpg.UniqueViolationError):
        what = "a unique constraint"
    elif isinstance(exc, asyncpg.ForeignKeyViolationError):
        what = "a foreign key"
    elif isinstance(exc, asyncpg.NotNullViolationError):
        what = "a NOT NULL column"
    elif isinstance(exc, asyncpg.CheckViolationError):
        what = "a check constraint"
    else:
        what = "a constraint"
    where = " ".join(
        part
        for part in (
            f"on table {table}" if table else "",
            f"({constraint})" if constraint else "",
            f"column {column}" if column and not constraint else "",
        )
        if part
    )
    message = f"the merge would break {what} {where}".strip()
    return Conflict(f"{message}; nothing was changed", [detail] if detail else None)


def translated(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turns the PostgreSQL errors a merge can meet into the project's exceptions."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await func(*args, **kwargs)
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            raise MergeContention(_CONTENDED) from exc
        except asyncpg.LockNotAvailableError as exc:
            raise Conflict(
                "the records are locked by another request; try again"
            ) from exc
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _conflict_from(exc) from exc

    return wrapper


def _rows_json(rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    return [json.loads(row["row_json"]) for row in rows]


@translated
async def guard_table(conn: asyncpg.Connection, schema: str, table: str) -> None:
    await conn.execute(render("merge_guard_table", schema=schema, table=table))


@translated
async def lock_records(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: Sequence[str],
    ids: Sequence[UUID],
) -> list[asyncpg.Record]:
    """Locks the given records in id order; returns those that exist."""
    query = render("merge_lock_records", schema=schema, table=table, columns=columns)
    return list(await conn.fetch(query, list(ids)))


@translated
async def foreign_keys(
    conn: asyncpg.Connection, schema: str, table: str
) -> list[ForeignKey]:
    """Every foreign key, in any schema, that points at `schema.table`."""
    rows = await conn.fetch(sql("merge_references"), schema, table)
    return [
        ForeignKey(
            constraint=row["constraint_name"],
            source_schema=row["source_schema"],
            source_table=row["source_table"],
            source_oid=int(row["source_oid"]),
            source_columns=tuple(row["source_columns"]),
            target_columns=tuple(row["target_columns"]),
            source_is_referenced=row["source_is_referenced"],
        )
        for row in rows
    ]


@translated
async def unique_indexes(
    conn: asyncpg.Connection, table_oids: Sequence[int]
) -> list[UniqueIndex]:
    """The unique indexes of the given tables."""
    if not table_oids:
        return []
    rows = await conn.fetch(sql("merge_unique_keys"), list(table_oids))
    return [
        UniqueIndex(
            table_oid=int(row["table_oid"]),
            constraint=row["constraint_name"],
            key_columns=tuple(row["key_columns"]),
            nulls_not_distinct=row["nulls_not_distinct"],
            is_partial_or_expression=row["is_partial_or_expression"],
        )
        for row in rows
    ]


@translated
async def count_blocking_references(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    key: ForeignKey,
    duplicate_ids: Sequence[UUID],
) -> int:
    query = render(
        "merge_count_blocking_references",
        schema=schema,
        table=table,
        foreign_schema=key.source_schema,
        foreign_table=key.source_table,
        foreign_columns=key.source_columns,
        key_columns=key.target_columns,
    )
    return int(await conn.fetchval(query, list(duplicate_ids)))


@translated
async def drop_self_links(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    column: str,
    partner_columns: Sequence[str],
    master_id: UUID,
    duplicate_ids: Sequence[UUID],
) -> list[dict[str, Any]]:
    """Deletes the duplicates' rows that would link the master to itself."""
    query = render(
        "merge_drop_self_links",
        schema=schema,
        source_table=table,
        column=column,
        partner_columns=partner_columns,
    )
    everyone = [master_id, *duplicate_ids]
    return _rows_json(await conn.fetch(query, everyone, list(duplicate_ids)))


@translated
async def drop_repeated_rows(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    column: str,
    other_columns: Sequence[str],
    nulls_not_distinct: bool,
    master_id: UUID,
    duplicate_ids: Sequence[UUID],
) -> list[dict[str, Any]]:
    """Deletes the duplicates' rows that would repeat a kept row on one unique key."""
    query = render(
        "merge_drop_repeated_rows",
        schema=schema,
        source_table=table,
        column=column,
        other_columns=other_columns,
    )
    rows = await conn.fetch(query, master_id, list(duplicate_ids), nulls_not_distinct)
    return _rows_json(rows)


@translated
async def relink(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    column: str,
    master_id: UUID,
    duplicate_ids: Sequence[UUID],
    repeat_constraints: frozenset[str] = frozenset(),
) -> int:
    """Re-points the column from the duplicates to the master.

    `repeat_constraints` are the unique keys whose repeats the statement before this
    one dropped. A clash on one of them now means a row committed in between (a
    concurrent merge of the other object re-pointed a link onto the same pair): the
    merge is retried, and the retry drops that repeat like any other.
    """
    query = render("merge_relink", schema=schema, source_table=table, column=column)
    try:
        return int(await conn.fetchval(query, master_id, list(duplicate_ids)))
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name in repeat_constraints:
            raise MergeContention(_CONTENDED) from exc
        raise


@translated
async def relink_self(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    column: str,
    master_id: UUID,
    duplicate_ids: Sequence[UUID],
) -> tuple[int, int]:
    """Re-points a self-reference; returns (rows moved, master references cleared)."""
    query = render("merge_relink_self", schema=schema, table=table, self_column=column)
    row = await conn.fetchrow(query, master_id, list(duplicate_ids))
    assert row is not None
    return int(row["moved"]), int(row["cleared"])


@translated
async def delete_duplicates(
    conn: asyncpg.Connection, schema: str, table: str, duplicate_ids: Sequence[UUID]
) -> dict[UUID, dict[str, Any]]:
    """Deletes the duplicates; returns each deleted row, every column, as JSON."""
    query = render("merge_delete_duplicates", schema=schema, table=table)
    rows = await conn.fetch(query, list(duplicate_ids))
    return {row["id"]: json.loads(row["row_json"]) for row in rows}


@translated
async def write_master(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    fields: Sequence[str],
    columns: Sequence[str],
    master_id: UUID,
    values_json: str,
) -> asyncpg.Record:
    query = render(
        "merge_write_master", schema=schema, table=table, fields=fields, columns=columns
    )
    row = await conn.fetchrow(query, master_id, values_json)
    assert row is not None
    return row


@translated
async def check_deferred(conn: asyncpg.Connection) -> None:
    await conn.execute(sql("merge_check_deferred"))


@translated
async def insert_audit(
    conn: asyncpg.Connection,
    schema: str,
    actor_user_id: UUID,
    actor_email: str,
    object_name: str,
    master_id: UUID,
    strategy: str,
    duplicate_ids: Sequence[UUID],
    duplicates: Sequence[Mapping[str, Any]],
    counts: Mapping[str, Any],
) -> asyncpg.Record:
    row = await conn.fetchrow(
        render("merge_insert_audit", schema=schema),
        actor_user_id,
        actor_email,
        object_name,
        master_id,
        strategy,
        list(duplicate_ids),
        json.dumps(duplicates, separators=(",", ":")),
        json.dumps(counts, separators=(",", ":")),
    )
    assert row is not None
    return row
