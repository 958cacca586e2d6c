"""Detect: the duplicate groups of one object, as behaviour.md section 4 defines them.

The grouping itself happens in PostgreSQL over the stored match keys (see
`sql/detect.sql`); this module checks the request against the object, brings stale
keys up to date, and turns the rows into groups of records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from app.auth import Principal
from app.db import Database
from app.errors import ValidationFailed
from app.matching.normalize import MATCH_FIELDS, MatchField
from app.metadata import ModelCache, ObjectMeta
from app.repository import detect as repo
from app.services.keys import rekey_stale
from app.services.serialize import record_columns, to_api

log = logging.getLogger("dupes.detect")

#: A group lists at most this many records; `record_count` still gives its size.
RECORDS_PER_GROUP = 100


@dataclass(frozen=True, slots=True)
class DetectParams:
    """A validated detect request. `fields` None means every field of the object."""

    object_name: str
    fields: tuple[MatchField, ...] | None
    limit: int


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
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
    if not available:
        raise ValidationFailed(
            f"{obj.name} cannot be matched: it has no email, phone, linkedin or "
            "name field",
            [{"field": "object_name", "message": "object has no match fields"}],
        )
    if requested is None:
        return available
    unsupported = [field for field in MATCH_FIELDS if field in requested]
    unsupported = [field for field in unsupported if field not in available]
    if unsupported:
        names = ", ".join(unsupported)
        raise ValidationFailed(
            f"fields: {obj.name} cannot match on {names}; "
            f"it matches on {', '.join(available)}",
            [
                {"field": "fields", "message": f"{obj.name} cannot match on {field}"}
                for field in unsupported
            ],
        )
    return tuple(field for field in MATCH_FIELDS if field in requested)


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
        # Rows written by COPY or another system carry no keys yet. When none are
        # stale this is one probe of a small partial index.
        rekeyed = await rekey_stale(conn, principal.schema, obj, principal.phone_region)
        # One snapshot for both reads, so a record merged away in between cannot
        # leave a group pointing at nothing.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            page = await repo.find_groups(
                conn,
                principal.schema,
                obj,
                fields,
                window,
                params.limit,
                RECORDS_PER_GROUP,
            )
            ids = list({i: None for g in page.groups for i in g.shown_ids})
            rows = await repo.fetch_records(
                conn, principal.schema, obj, record_columns(obj), ids
            )
    groups = [_group(obj, group, rows) for group in page.groups]
    log.info(
        "detect object=%s fields=%s scanned=%d groups=%d rekeyed=%d ms=%.1f",
        obj.name,
        ",".join(fields),
        page.records_scanned,
        page.total_groups,
        rekeyed,
        (time.perf_counter() - started) * 1000,
    )
    return Detection(groups, page.total_groups, page.records_scanned)


def _group(
    obj: ObjectMeta, group: repo.GroupRow, rows: dict[UUID, Any]
) -> DuplicateGroup:
    return DuplicateGroup(
        records=[to_api(obj, rows[record_id]) for record_id in group.shown_ids],
        match_reason=group.match_reasons[0],
        match_reasons=list(group.match_reasons),
        match_value=group.match_value,
        record_count=group.record_count,
    )
