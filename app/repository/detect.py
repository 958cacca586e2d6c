"""Named queries of detection: the shared keys, the duplicate groups, their records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from app.errors import Unavailable
from app.matching.normalize import MATCH_FIELDS, MatchField
from app.metadata import ObjectMeta
from app.sql import render, sql


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One duplicate group as SQL found it, before its records are read."""

    record_count: int
    match_reasons: tuple[MatchField, ...]
    match_value: str
    shown_ids: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class GroupsPage:
    """The groups of one detection, in order, with the counts of the whole scan."""

    records_scanned: int
    total_groups: int
    groups: tuple[GroupRow, ...]


@dataclass(frozen=True, slots=True)
class SharedKeysStatus:
    built: bool
    pending: int


def _timed_out() -> Unavailable:
    # A lifted window over a very large object can outlast statement_timeout; that
    # is a capacity limit of the server, not a fault of the request.
    return Unavailable(
        "detection did not finish within the server's statement timeout; "
        "restrict fields or scan a smaller window"
    )


def reasons_of(bits: int) -> tuple[MatchField, ...]:
    """The match fields of a reason bit set (bit n is MATCH_FIELDS[n])."""
    return tuple(field for rank, field in enumerate(MATCH_FIELDS) if bits >> rank & 1)


def _group(row: asyncpg.Record) -> GroupRow:
    first_reason: str = row["first_reason"]
    # The rank digit leads the key so that one text min() orders by rank, then key.
    return GroupRow(
        record_count=row["record_count"],
        match_reasons=reasons_of(row["reason_bits"]),
        match_value=first_reason[1:],
        shown_ids=tuple(row["shown_ids"] or ()),
    )


async def shared_keys_status(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta, rebuild_at: int
) -> SharedKeysStatus:
    """Whether `obj`'s shared keys were built, and its logged changes (up to
    `rebuild_at`)."""
    row = await conn.fetchrow(
        render("detect_shared_keys_status", schema=schema), obj.name, rebuild_at
    )
    assert row is not None
    return SharedKeysStatus(row["built"], row["pending"])


async def lock_shared_keys(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta
) -> None:
    """Takes the object's refresh lock for the rest of the transaction."""
    await conn.execute(
        sql("detect_lock_shared_keys"), f"dupes.detect:{schema}:{obj.name}"
    )


async def apply_key_changes(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta
) -> int:
    """Recounts the keys named in the change log; returns how many keys that was."""
    text = render("detect_apply_key_changes", schema=schema, table=obj.table)
    try:
        row = await conn.fetchrow(text, obj.name)
    except asyncpg.QueryCanceledError as exc:
        raise _timed_out() from exc
    assert row is not None
    return int(row["changed_keys"])


async def rebuild_shared_keys(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta, statement_timeout: str
) -> None:
    """Rebuilds the object's shared keys from all of its match keys.

    Runs inside the caller's transaction, which holds the refresh lock, with the
    statement timeout set to `statement_timeout` until that transaction ends.
    """
    await conn.execute(sql("detect_rebuild_timeout"), statement_timeout)
    try:
        await conn.execute(render("detect_clear_key_changes", schema=schema), obj.name)
        await conn.execute(render("detect_clear_shared_keys", schema=schema), obj.name)
        await conn.execute(
            render("detect_fill_shared_keys", schema=schema, table=obj.table),
            obj.name,
        )
    except asyncpg.QueryCanceledError as exc:
        raise _timed_out() from exc
    await conn.execute(render("detect_mark_shared_keys_built", schema=schema), obj.name)


async def use_work_mem(conn: asyncpg.Connection, amount: str) -> None:
    """Sets work_mem for the rest of the current transaction."""
    await conn.execute(sql("detect_work_mem"), amount)


async def find_groups(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    fields: Sequence[MatchField],
    window: int,
    limit: int,
    records_per_group: int,
) -> GroupsPage:
    """The first `limit` duplicate groups of `obj` on `fields`, in one round trip.

    `window` is how many of the newest records open groups; 0 means every record.
    """
    args: list[object] = [
        obj.name,
        list(fields),
        list(MATCH_FIELDS),
        limit,
        records_per_group,
    ]
    if window == 0:
        text = render("detect_groups_all", schema=schema, table=obj.table)
    else:
        text = render("detect_groups_window", schema=schema, table=obj.table)
        args.append(window)
    try:
        rows = await conn.fetch(text, *args)
    except asyncpg.QueryCanceledError as exc:
        raise _timed_out() from exc
    # The query always answers at least one row, holding records_scanned; a scan
    # without groups leaves the group columns of that row null.
    first = rows[0]
    return GroupsPage(
        records_scanned=first["records_scanned"],
        total_groups=first["total_groups"] or 0,
        groups=tuple(_group(row) for row in rows if row["record_count"] is not None),
    )


async def fetch_records(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    columns: Sequence[str],
    ids: Sequence[UUID],
) -> dict[UUID, asyncpg.Record]:
    """The records with the given ids, by id, read with `columns` (holding `id`)."""
    if not ids:
        return {}
    text = render("detect_records", schema=schema, table=obj.table, columns=columns)
    try:
        rows = await conn.fetch(text, list(ids))
    except asyncpg.QueryCanceledError as exc:
        raise _timed_out() from exc
    return {row["id"]: row for row in rows}
