"""Detect: the duplicate groups of one object, as the duplicates contract defines them.

The grouping itself happens in PostgreSQL (`sql/detect.sql`) over `shared_keys`, the
match keys that two records or more hold. This module checks the request against the
object, brings stale match keys and then the shared keys up to date, and turns the
rows into groups of records.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from app.auth import Principal
from app.db import Database
from app.errors import ValidationFailed
from app.logs import event
from app.matching.normalize import MATCH_FIELDS, MatchField
from app.metadata import ModelCache, ObjectMeta
from app.metrics import observe_detect
from app.repository import detect as repo
from app.services.keys import rekey_stale
from app.services.serialize import record_columns, to_api

#: A group lists at most this many records; `record_count` still gives its size.
RECORDS_PER_GROUP = 100
#: Logged key changes from which one rebuild of the shared keys is cheaper than
#: recounting each changed key (a bulk import, a phone region change).
REBUILD_AT = 200_000
#: A rebuild reads every match key of the object (10 s at a million contacts in the
#: benchmark, minutes beyond ten million): it may outlast the usual statement timeout.
REBUILD_TIMEOUT = "15min"
#: Memory for the lifted window to collapse every group in one hash table (tens of
#: MB at a million contacts); the server default of 4 MB would spill to disk.
LIFTED_WORK_MEM = "64MB"
#: Reads of the groups when a record they list was deleted in between (see detect).
READ_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class DetectParams:
    """A validated detect request. `fields` None means every field of the object."""

    object_name: str
    fields: tuple[MatchField, ...] | None
    limit: int


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """One group as the API shows it: its first records and what made it."""

    records: list[dict[str, Any]]
    match_reason: MatchField
    match_reasons: list[MatchField]
    match_value: str
    record_count: int

    def as_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "match_reason": self.match_reason,
            "match_reasons": self.match_reasons,
            "match_value": self.match_value,
            "record_count": self.record_count,
        }


@dataclass(frozen=True, slots=True)
class Detection:
    """The answer to one detect request."""

    groups: list[DuplicateGroup]
    total_groups: int
    records_scanned: int

    def as_json(self) -> dict[str, Any]:
        return {
            "duplicate_groups": [group.as_json() for group in self.groups],
            "total_groups": self.total_groups,
            "records_scanned": self.records_scanned,
        }


def match_fields_for(
    obj: ObjectMeta, requested: Sequence[MatchField] | None
) -> tuple[MatchField, ...]:
    """The fields to match on, in the canonical order, or 400 naming what cannot be.

    An object without any match field cannot be matched at all, so asking to detect
    on it is refused rather than answered with an empty scan that looks like a
    clean bill of health.
    """
    available = obj.match_fields
    if requested is not None:
        unsupported = [f for f in MATCH_FIELDS if f in requested and f not in available]
        if unsupported:
            names = ", ".join(unsupported)
            matches = (
                f"it matches on {', '.join(available)}"
                if available
                else "it has no email, phone, linkedin or name field"
            )
            raise ValidationFailed(
                f"fields: {obj.name} cannot match on {names}; {matches}",
                [
                    {"field": "fields", "message": f"{obj.name} cannot match on {f}"}
                    for f in unsupported
                ],
            )
    if not available:
        raise ValidationFailed(
            f"{obj.name} cannot be matched: it has no email, phone, linkedin or "
            "name field",
            [{"field": "object_name", "message": "object has no match fields"}],
        )
    if requested is None:
        return available
    return tuple(field for field in MATCH_FIELDS if field in requested)


async def refresh_shared_keys(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    rebuild_at: int = REBUILD_AT,
) -> str:
    """Brings `obj`'s shared keys up to date with its match keys.

    Returns what it did: "fresh" (nothing logged: one indexed probe), "applied"
    (the logged keys were recounted) or "rebuilt" (built in full, because it never
    was or because `rebuild_at` changes or more wait).
    """
    status = await repo.shared_keys_status(conn, schema, obj, rebuild_at)
    if status.built and status.pending == 0:
        return "fresh"
    async with conn.transaction():
        await repo.lock_shared_keys(conn, schema, obj)
        # Another refresher may have done the work while this one waited.
        status = await repo.shared_keys_status(conn, schema, obj, rebuild_at)
        if not status.built or status.pending >= rebuild_at:
            await repo.rebuild_shared_keys(conn, schema, obj, REBUILD_TIMEOUT)
            event("detect.shared_keys_rebuilt", object=obj.name)
            return "rebuilt"
        if status.pending == 0:
            return "fresh"
        await repo.apply_key_changes(conn, schema, obj)
        return "applied"


async def _read_groups(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    fields: Sequence[MatchField],
    window: int,
    limit: int,
) -> tuple[repo.GroupsPage, dict[UUID, Any]]:
    # One snapshot for both reads, so the records are those the groups were made of.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if window == 0:
            await repo.use_work_mem(conn, LIFTED_WORK_MEM)
        page = await repo.find_groups(
            conn, schema, obj, fields, window, limit, RECORDS_PER_GROUP
        )
        ids = list({i: None for group in page.groups for i in group.shown_ids})
        rows = await repo.fetch_records(conn, schema, obj, record_columns(obj), ids)
    return page, rows


async def detect(
    db: Database,
    models: ModelCache,
    principal: Principal,
    params: DetectParams,
    window: int,
) -> Detection:
    """Finds the duplicate groups of one object of the caller's organization.

    `window` is the number of newest records that open groups (0: every record).
    """
    started = time.perf_counter()
    async with db.connection() as conn:
        model = await models.get(conn, principal.org_id)
        obj = model.object(params.object_name)
        fields = match_fields_for(obj, params.fields)
        schema = principal.schema
        # Rows written by COPY or another system carry no keys yet. When none are
        # stale this is one probe of a small partial index.
        rekeyed = await rekey_stale(conn, schema, obj, principal.phone_region)
        refresh = await refresh_shared_keys(conn, schema, obj)
        for _ in range(READ_ATTEMPTS):
            page, rows = await _read_groups(
                conn, schema, obj, fields, window, params.limit
            )
            if all(i in rows for group in page.groups for i in group.shown_ids):
                break
            # A delete committed between the refresh and the read (a merge, most
            # likely) left a shared key naming a record the snapshot no longer has:
            # the change is in the log by now, so refresh and read again.
            await refresh_shared_keys(conn, schema, obj)
    # A record shown in several groups is serialized once.
    shown = {record_id: to_api(obj, row) for record_id, row in rows.items()}
    groups = [_group(group, shown) for group in page.groups]
    seconds = time.perf_counter() - started
    observe_detect(obj.name, seconds)
    event(
        "detect.done",
        object=obj.name,
        fields=",".join(fields),
        window=window,
        scanned=page.records_scanned,
        groups=page.total_groups,
        rekeyed=rekeyed,
        shared_keys=refresh,
        duration_ms=round(seconds * 1000, 1),
    )
    return Detection(groups, page.total_groups, page.records_scanned)


def _group(group: repo.GroupRow, shown: dict[UUID, dict[str, Any]]) -> DuplicateGroup:
    # A record still missing after every attempt is left out rather than failing
    # the whole detection; record_count keeps the size the group was found with.
    return DuplicateGroup(
        records=[shown[i] for i in group.shown_ids if i in shown],
        match_reason=group.match_reasons[0],
        match_reasons=list(group.match_reasons),
        match_value=group.match_value,
        record_count=group.record_count,
    )
