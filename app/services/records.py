"""Records of an organization: create, read, list, update, delete, link.

Each write runs in one transaction that also writes the record's match keys, so keys
are never behind the data they come from. Every object, field and relation is read
from the organization's metadata; nothing here names a table.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from app.auth import Principal
from app.db import Database, Moment
from app.errors import InvalidObject, RecordNotFound, ValidationFailed
from app.logs import event
from app.metadata import LinkMeta, ModelCache, ObjectMeta, OrgModel
from app.repository import records as repo
from app.services import values
from app.services.ids import time_ordered_uuid
from app.services.keys import mark_fresh, write_keys
from app.services.retry import retried_on_contention
from app.services.serialize import json_value, to_api

LIMIT_DEFAULT = 20
LIMIT_MAX = 100
BATCH_MAX = 100
# The keyset position before every record, where the first page starts: rows written
# by other systems may carry any timestamp PostgreSQL holds, '-infinity' included.
_START: tuple[Moment, UUID] = ("-infinity", UUID(int=0))
# PostgreSQL's text for a timestamp Python cannot hold, as a cursor may carry it.
_PG_MOMENT = re.compile(
    r"-?infinity|\d{4,6}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?\+00( BC)?"
)


@dataclass(frozen=True, slots=True)
class OrgScope:
    """The organization a call works in: its schema and its phone region."""

    org_id: UUID
    schema: str
    phone_region: str

    @classmethod
    def of(cls, principal: Principal) -> OrgScope:
        return cls(principal.org_id, principal.schema, principal.phone_region)


@dataclass(frozen=True, slots=True)
class Page:
    data: list[dict[str, Any]]
    total: int
    next_cursor: str | None

    def as_json(self) -> dict[str, Any]:
        return {"data": self.data, "total": self.total, "nextCursor": self.next_cursor}


@dataclass(frozen=True, slots=True)
class LinkResult:
    link: dict[str, Any]
    created: bool


def _shown(obj: ObjectMeta, row: asyncpg.Record) -> dict[str, Any]:
    return to_api(obj, dict(row.items()))


def record_id(obj: ObjectMeta, raw: str) -> UUID:
    """A path id; a malformed one names no record, so it is the same 404 as a
    missing one."""
    parsed = values.parse_uuid(raw)
    if parsed is None:
        raise _not_found(obj)
    return parsed


def _not_found(obj: ObjectMeta) -> RecordNotFound:
    return RecordNotFound(f"no record of {obj.name} has this id")


# --- relations -------------------------------------------------------------------


async def relation_problems(
    conn: asyncpg.Connection,
    scope: OrgScope,
    model: OrgModel,
    obj: ObjectMeta,
    records: Sequence[Mapping[str, Any]],
) -> dict[int, list[values.Problem]]:
    """Relation values that name no record of the target object, by record index.

    One query per relation field, whatever the number of records. The organization's
    tables hold only its own records, so an id of another organization is missing
    here exactly like an id that exists nowhere.
    """
    problems: dict[int, list[values.Problem]] = {}
    for field in obj.relations:
        wanted = {
            record[field.name]
            for record in records
            if record.get(field.name) is not None
        }
        if not wanted or field.target_object is None:
            continue
        target = model.object(field.target_object)
        found = await repo.existing_ids(conn, scope.schema, target, sorted(wanted))
        for index, record in enumerate(records):
            value = record.get(field.name)
            if value is not None and value not in found:
                problems.setdefault(index, []).append(
                    values.Problem(
                        field.name, f"names no record of {target.name} (id {value})"
                    )
                )
    return problems


def _raise_problems(problems: Sequence[values.Problem]) -> None:
    if problems:
        raise ValidationFailed(
            "; ".join(f"{p.field} {p.message}" for p in problems),
            [p.as_detail() for p in problems],
        )


# --- reads -----------------------------------------------------------------------


async def _object(
    conn: asyncpg.Connection, models: ModelCache, scope: OrgScope, name: str
) -> tuple[OrgModel, ObjectMeta]:
    model = await models.get(conn, scope.org_id)
    return model, model.object(name)


async def _links_json(
    conn: asyncpg.Connection, scope: OrgScope, obj: ObjectMeta, rid: UUID
) -> dict[str, list[dict[str, Any]]]:
    linked: dict[str, list[dict[str, Any]]] = {}
    for link in obj.links:
        rows = await repo.links(conn, scope.schema, link, rid)
        linked[link.name] = [_link_json(link, dict(row.items())) for row in rows]
    return linked


def _link_json(link: LinkMeta, row: Mapping[str, Any]) -> dict[str, Any]:
    shown = {"id": json_value(row[link.target_column])}
    shown.update({column: json_value(row[column]) for column in link.extra_columns})
    return shown


async def get_record(
    db: Database, models: ModelCache, scope: OrgScope, object_name: str, raw_id: str
) -> dict[str, Any]:
    """One record with its MANY_TO_MANY links (`"contacts": [{"id", "role"}]`)."""
    async with db.transaction("repeatable_read") as conn:
        _, obj = await _object(conn, models, scope, object_name)
        rid = record_id(obj, raw_id)
        row = await repo.get(conn, scope.schema, obj, rid)
        if row is None:
            raise _not_found(obj)
        record = _shown(obj, row)
        record.update(await _links_json(conn, scope, obj, rid))
    return record


_MALFORMED_CURSOR = (
    "cursor is malformed; pass the nextCursor of a previous page unchanged"
)


def encode_cursor(object_name: str, created_at: Moment, rid: UUID) -> str:
    moment = created_at if isinstance(created_at, str) else created_at.isoformat()
    raw = json.dumps([object_name, moment, str(rid)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(object_name: str, cursor: str) -> tuple[Moment, UUID]:
    """The keyset position a cursor holds, or 400 for anything this did not issue."""
    problem = ValidationFailed(_MALFORMED_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, text, rid = json.loads(raw)
        position = (_cursor_moment(text), UUID(rid))
    except (
        binascii.Error,
        ValueError,
        TypeError,
        AttributeError,
        RecursionError,
    ) as exc:
        raise problem from exc
    if name != object_name:
        raise problem
    return position


def _cursor_moment(text: str) -> Moment:
    if _PG_MOMENT.fullmatch(text):
        return text
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a cursor's timestamp has a time zone")
    return moment


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return LIMIT_DEFAULT
    # ASCII digits only: int() would also take "+5", " 5", "5_0" and other scripts'
    # digits.
    limit = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 4 else 0
    if not 1 <= limit <= LIMIT_MAX:
        raise ValidationFailed(f"limit must be an integer from 1 to {LIMIT_MAX}")
    return limit


def _filters(obj: ObjectMeta, raw: Mapping[str, str]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    problems: list[values.Problem] = []
    for name, text in raw.items():
        field = obj.field(name)
        if field is None:
            problems.append(
                values.Problem(
                    name, f"is neither a field of {obj.name} nor a list option"
                )
            )
            continue
        try:
            cleaned[name] = values.filter_value(field, text)
        except values.FieldProblem as exc:
            problems.append(values.Problem(name, str(exc)))
    _raise_problems(problems)
    return cleaned


async def list_records(
    db: Database,
    models: ModelCache,
    scope: OrgScope,
    object_name: str,
    limit: int,
    cursor: str | None,
    filters: Mapping[str, str],
) -> Page:
    """A page of records, oldest first, keyset-paginated on (created_at, id).

    A cursor is the position after the last record shown, so records inserted or
    deleted between two requests never shift a page: nothing is skipped or repeated.
    """
    async with db.transaction("repeatable_read") as conn:
        _, obj = await _object(conn, models, scope, object_name)
        after = decode_cursor(obj.name, cursor) if cursor is not None else _START
        wanted = _filters(obj, filters)
        filter_json = values.dump_json(wanted)
        try:
            rows = await repo.page(
                conn, scope.schema, obj, after, limit + 1, list(wanted), filter_json
            )
        except asyncpg.DataError as exc:
            # A cursor's timestamp in PostgreSQL's own text that it then refuses.
            if cursor is None:
                raise
            raise ValidationFailed(_MALFORMED_CURSOR) from exc
        total = await repo.count(conn, scope.schema, obj, list(wanted), filter_json)
    shown = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = shown[-1]
        next_cursor = encode_cursor(obj.name, last["created_at"], last["id"])
    return Page([_shown(obj, row) for row in shown], total, next_cursor)


# --- writes ----------------------------------------------------------------------


async def _write_keys(
    conn: asyncpg.Connection,
    scope: OrgScope,
    obj: ObjectMeta,
    rows: Sequence[asyncpg.Record],
) -> None:
    await write_keys(
        conn, scope.schema, obj, [dict(row) for row in rows], scope.phone_region
    )


@retried_on_contention
async def create_record(
    db: Database,
    models: ModelCache,
    scope: OrgScope,
    object_name: str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """Creates one record and its match keys; returns it as the API shows it."""
    async with db.transaction() as conn:
        model, obj = await _object(conn, models, scope, object_name)
        cleaned = values.clean_record(obj, data)
        problems = await relation_problems(conn, scope, model, obj, [cleaned])
        _raise_problems(problems.get(0, []))
        await mark_fresh(conn)
        row = await repo.insert(conn, scope.schema, obj, values.dump_json(cleaned))
        await _write_keys(conn, scope, obj, [row])
    event("record.created", object=obj.name, id=str(row["id"]))
    return _shown(obj, row)


@retried_on_contention
async def create_batch(
    db: Database,
    models: ModelCache,
    scope: OrgScope,
    object_name: str,
    records: Sequence[Any],
) -> list[dict[str, Any]]:
    """Creates every record or none; the answer keeps the input order."""
    if not 1 <= len(records) <= BATCH_MAX:
        raise ValidationFailed(f"records must hold 1 to {BATCH_MAX} records")
    async with db.transaction() as conn:
        model, obj = await _object(conn, models, scope, object_name)
        cleaned: list[dict[str, Any]] = []
        details: list[dict[str, Any]] = []
        for index, data in enumerate(records):
            if not isinstance(data, dict):
                details.append({"index": index, "message": "must be a JSON object"})
                continue
            try:
                cleaned.append(values.clean_record(obj, data))
            except ValidationFailed as exc:
                details.extend(
                    {"index": index, **detail} for detail in exc.details or []
                )
        if not details:
            problems = await relation_problems(conn, scope, model, obj, cleaned)
            for index in sorted(problems):
                details.extend(
                    {"index": index, **p.as_detail()} for p in problems[index]
                )
        if details:
            first = details[0]
            raise ValidationFailed(
                f"records[{first['index']}]"
                + (f".{first['field']}" if "field" in first else "")
                + f" {first['message']}; nothing was created",
                details,
            )
        # In input order: they share created_at, and ids break the tie.
        ids = [time_ordered_uuid() for _ in cleaned]
        rows_json = values.dump_json(
            [{"id": rid, **record} for rid, record in zip(ids, cleaned, strict=True)]
        )
        await mark_fresh(conn)
        rows = await repo.insert_many(conn, scope.schema, obj, rows_json)
        await _write_keys(conn, scope, obj, rows)
    by_id = {row["id"]: row for row in rows}
    event("records.created", object=obj.name, count=len(rows))
    return [_shown(obj, by_id[rid]) for rid in ids]


@retried_on_contention
async def update_record(
    db: Database,
    models: ModelCache,
    scope: OrgScope,
    object_name: str,
    raw_id: str,
    data: Mapping[str, Any],
    *,
    partial: bool,
) -> dict[str, Any]:
    """PUT (`partial=False`) replaces every field; PATCH changes the given ones."""
    async with db.transaction() as conn:
        model, obj = await _object(conn, models, scope, object_name)
        rid = record_id(obj, raw_id)
        cleaned = values.clean_record(obj, data, partial=partial)
        problems = await relation_problems(conn, scope, model, obj, [cleaned])
        _raise_problems(problems.get(0, []))
        await mark_fresh(conn)
        row = await repo.update(
            conn, scope.schema, obj, rid, list(cleaned), values.dump_json(cleaned)
        )
        if row is None:
            raise _not_found(obj)
        await _write_keys(conn, scope, obj, [row])
    return _shown(obj, row)


@retried_on_contention
async def delete_record(
    db: Database, models: ModelCache, scope: OrgScope, object_name: str, raw_id: str
) -> None:
    """Deletes one record; its keys and links go with it (triggers, foreign keys)."""
    async with db.transaction() as conn:
        _, obj = await _object(conn, models, scope, object_name)
        rid = record_id(obj, raw_id)
        if not await repo.delete(conn, scope.schema, obj, rid):
            raise _not_found(obj)
    event("record.deleted", object=obj.name, id=str(rid))


# --- associations ----------------------------------------------------------------


def _link_of(model: OrgModel, obj: ObjectMeta, to_object: str) -> LinkMeta:
    link = obj.link(to_object)
    if link is not None:
        return link
    if to_object not in model.objects:
        raise InvalidObject(
            f"unknown object {to_object!r}; known objects: {', '.join(model.objects)}"
        )
    many = ", ".join(link.name for link in obj.links) or "none"
    raise ValidationFailed(
        f"{obj.name} has no MANY_TO_MANY relation to {to_object} (it has: {many});"
        " a BELONGS_TO_ONE relation is set through its id field"
    )


def _link_extras(link: LinkMeta, body: Mapping[str, Any]) -> dict[str, Any]:
    problems: list[values.Problem] = []
    extras: dict[str, Any] = {}
    for name in body:
        if name not in link.extra_columns:
            allowed = ", ".join(link.extra_columns) or "none"
            problems.append(
                values.Problem(name, f"is not a field of this link (fields: {allowed})")
            )
    for name in link.extra_columns:
        try:
            extras[name] = values.clean_link_value(body.get(name))
        except values.FieldProblem as exc:
            problems.append(values.Problem(name, str(exc)))
    _raise_problems(problems)
    return extras


async def _both_ends(
    conn: asyncpg.Connection,
    scope: OrgScope,
    model: OrgModel,
    obj: ObjectMeta,
    link: LinkMeta,
    source_id: UUID,
    target_id: UUID,
) -> None:
    target = model.object(link.target_object)
    if not await repo.existing_ids(conn, scope.schema, obj, [source_id]):
        raise _not_found(obj)
    if not await repo.existing_ids(conn, scope.schema, target, [target_id]):
        raise _not_found(target)


@retried_on_contention
async def put_association(
    db: Database,
    models: ModelCache,
    scope: OrgScope,
    object_name: str,
    raw_id: str,
    to_object: str,
    raw_to_id: str,
    body: Mapping[str, Any],
) -> LinkResult:
    """Links two records, or sets the link's extra fields (absent ones to null)."""
    async with db.transaction() as conn:
        model, obj = await _object(conn, models, scope, object_name)
        link = _link_of(model, obj, to_object)
        source_id = record_id(obj, raw_id)
        target_id = record_id(model.object(link.target_object), raw_to_id)
        extras = _link_extras(link, body)
        await _both_ends(conn, scope, model, obj, link, source_id, target_id)
        row = await repo.upsert_link(
            conn, scope.schema, link, source_id, target_id, values.dump_json(extras)
        )
    return LinkResult(_link_json(link, dict(row.items())), bool(row["inserted"]))


@retried_on_contention
async def delete_association(
    db: Database,
    models: ModelCache,
    scope: OrgScope,
    object_name: str,
    raw_id: str,
    to_object: str,
    raw_to_id: str,
) -> None:
    """Unlinks two records; unlinking records that are not linked changes nothing."""
    async with db.transaction() as conn:
        model, obj = await _object(conn, models, scope, object_name)
        link = _link_of(model, obj, to_object)
        source_id = record_id(obj, raw_id)
        target_id = record_id(model.object(link.target_object), raw_to_id)
        await _both_ends(conn, scope, model, obj, link, source_id, target_id)
        await repo.delete_link(conn, scope.schema, link, source_id, target_id)


# --- schema ----------------------------------------------------------------------


def describe(obj: ObjectMeta) -> dict[str, Any]:
    """One object as `GET /api/v1/schema` shows it."""
    fields: list[dict[str, Any]] = []
    for field in obj.fields:
        shown: dict[str, Any] = {
            "name": field.name,
            "type": field.type,
            "required": field.required,
            "match_field": field.match_field,
        }
        if field.is_relation:
            shown["target_object"] = field.target_object
        fields.append(shown)
    relations: list[dict[str, Any]] = [
        {
            "name": field.name,
            "kind": "BELONGS_TO_ONE",
            "target_object": field.target_object,
            "field": field.name,
        }
        for field in obj.relations
    ]
    relations.extend(
        {
            "name": link.name,
            "kind": "MANY_TO_MANY",
            "target_object": link.target_object,
            "fields": list(link.extra_columns),
        }
        for link in obj.links
    )
    return {
        "name": obj.name,
        "label": obj.label,
        "kind": obj.kind,
        "fields": fields,
        "relations": relations,
        "match_fields": list(obj.match_fields),
    }


async def describe_schema(
    db: Database, models: ModelCache, scope: OrgScope, object_name: str | None = None
) -> dict[str, Any]:
    """Every object of the organization (`{"data": [...]}`), or one object."""
    async with db.connection() as conn:
        model = await models.get(conn, scope.org_id)
    if object_name is not None:
        return describe(model.object(object_name))
    return {"data": [describe(obj) for obj in model.objects.values()]}
