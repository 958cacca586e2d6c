"""Named queries of detection: the duplicate groups of an object and their records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from app.errors import Unavailable
from app.matching.normalize import MATCH_FIELDS, MatchField
from app.metadata import ObjectMeta
from app.sql import render


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


def _timed_out(exc: asyncpg.QueryCanceledError) -> Unavailable:
    # A lifted window over a very large object can outlast statement_timeout; that
    # is a capacity limit of the server, not a fault of the request.
    return Unavailable(
        "detection did not finish within the server's statement timeout; "
        "restrict fields or scan a smaller window"
    )


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
        raise _timed_out(exc) from exc
    # The query always answers at least one row, holding records_scanned; a scan
    # without groups leaves the group columns of that row null.
    first = rows[0]
    groups = tuple(
        GroupRow(
            record_count=row["record_count"],
            match_reasons=tuple(MATCH_FIELDS[rank - 1] for rank in row["reason_ranks"]),
            match_value=row["match_value"],
            shown_ids=tuple(row["shown_ids"]),
        )
        for row in rows
        if row["position"] is not None
    )
    return GroupsPage(
        records_scanned=first["records_scanned"],
        total_groups=first["total_groups"] or 0,
        groups=groups,
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
        raise _timed_out(exc) from exc
    return {row["id"]: row for row in rows}
