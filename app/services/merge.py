"""Merging duplicate records into one master, in one transaction.

The steps, in the order they run:

1. Lock the master and the duplicates in id order (``FOR UPDATE``). Two merges that
   share records queue behind each other instead of deadlocking; the later one then
   finds a record gone and answers 404.
2. Read from the catalog every foreign key that points at the object's table, in the
   organization's schema, whoever declared it. A single-column key on ``id`` is
   re-pointed; any other kind (several columns, another column, another schema) cannot
   be, and a row holding one blocks the merge with 409.
3. For every referencing column, one statement at a time: junction rows that would link
   the master to itself are dropped, rows that would repeat a kept row on a unique key
   are dropped, and every remaining row is re-pointed to the master. The object's own
   self-references move too, and the master's own reference to a duplicate is cleared.
4. Delete the duplicates: nothing references them any more, so no ``ON DELETE CASCADE``
   takes anything with them.
5. Write the master's resolved values (after the delete, so a unique value taken from
   a duplicate is free), recompute its match keys, check deferred constraints, and
   write the audit entry. A dry run does all of this and rolls back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import asyncpg

from app.auth import Principal
from app.db import Database
from app.errors import Conflict, RecordNotFound
from app.logs import event
from app.metadata import ModelCache, ObjectMeta
from app.metrics import observe_merge
from app.repository import merge as repo
from app.repository.merge import ForeignKey, MergeContention, UniqueIndex
from app.services import keys
from app.services.retry import with_retries
from app.services.serialize import record_columns, to_api

log = logging.getLogger("dupes.merge")

Strategy = Literal["keep_master", "fill_blanks"]
MAX_DUPLICATES = 100


@dataclass(frozen=True, slots=True)
class MergeCommand:
    object_name: str
    master_id: UUID
    duplicate_ids: tuple[UUID, ...]
    strategy: Strategy = "keep_master"
    dry_run: bool = False


@dataclass(slots=True)
class MergeReport:
    """What a merge did, or with a dry run, what it would do."""

    master_id: UUID
    strategy: Strategy
    duplicates_deleted: int = 0
    relinked: dict[str, int] = field(default_factory=dict)
    junction_rows_dropped: dict[str, int] = field(default_factory=dict)
    self_references_cleared: int = 0
    dry_run: bool = False
    master: dict[str, Any] = field(default_factory=dict)
    audit_id: UUID | None = None

    def counts(self) -> dict[str, Any]:
        return {
            "duplicates_deleted": self.duplicates_deleted,
            "relinked": self.relinked,
            "junction_rows_dropped": self.junction_rows_dropped,
            "self_references_cleared": self.self_references_cleared,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "master_id": str(self.master_id),
            "duplicates_deleted": self.duplicates_deleted,
            "strategy": self.strategy,
            "relinked": self.relinked,
            "junction_rows_dropped": self.junction_rows_dropped,
            "self_references_cleared": self.self_references_cleared,
            "dry_run": self.dry_run,
            "master": self.master,
            "audit_id": str(self.audit_id) if self.audit_id is not None else None,
        }


@dataclass(frozen=True, slots=True)
class RepeatKey:
    """A unique key of a junction that holds the referencing column and others:
    re-pointing a row to the master can make it repeat a row already there."""

    constraint: str
    other_columns: tuple[str, ...]
    nulls_not_distinct: bool


@dataclass(frozen=True, slots=True)
class Relink:
    """One referencing column of the organization's schema, re-pointed by the merge."""

    constraint: str
    table: str
    column: str
    is_self: bool
    repeat_keys: tuple[RepeatKey, ...] = ()
    # Other columns of a repeat key that point at the same object (a contact-to-contact
    # junction): a row whose partner is the master or a duplicate would become a link
    # of the master to itself.
    partner_columns: tuple[str, ...] = ()
    table_is_referenced: bool = False

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def is_junction(self) -> bool:
        return bool(self.repeat_keys) and not self.is_self

    @property
    def repeat_constraints(self) -> frozenset[str]:
        return frozenset(key.constraint for key in self.repeat_keys)


@dataclass(frozen=True, slots=True)
class ReferencePlan:
    relinks: tuple[Relink, ...]
    # Foreign keys the merge cannot re-point; a row holding one blocks the merge.
    blockers: tuple[ForeignKey, ...]

    @property
    def self_columns(self) -> frozenset[str]:
        return frozenset(r.column for r in self.relinks if r.is_self)

    @property
    def junction_tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.table for r in self.relinks if r.is_junction))


class _DryRunDone(Exception):
    """Raised inside the transaction of a dry run so that it rolls back."""

    def __init__(self, report: MergeReport) -> None:
        super().__init__("dry run")
        self.report = report


def plan_references(
    schema: str,
    table: str,
    foreign_keys: Sequence[ForeignKey],
    unique_indexes: Sequence[UniqueIndex],
) -> ReferencePlan:
    """Sorts the foreign keys that point at `schema.table` into what the merge does.

    A key is re-pointed when it is one column, in the organization's schema, and
    references ``id``. Its repeat keys are the plain unique indexes of its table that
    hold the column and at least one other: on those a moved row can repeat a kept
    one and is dropped. A unique index on the column alone is a one-to-one relation:
    moving onto it clashes and the database answers, which becomes 409. So do partial
    and expression indexes, which cannot be judged by column values.
    """
    movable: dict[tuple[str, str], ForeignKey] = {}
    blockers: list[ForeignKey] = []
    for key in foreign_keys:
        if (
            key.source_schema == schema
            and len(key.source_columns) == 1
            and key.target_columns == ("id",)
        ):
            # Two constraints on the same column move it once.
            movable.setdefault((key.source_table, key.source_columns[0]), key)
        else:
            blockers.append(key)
    object_columns: dict[str, set[str]] = {}
    for source_table, column in movable:
        object_columns.setdefault(source_table, set()).add(column)
    indexes_of: dict[int, list[UniqueIndex]] = {}
    for index in unique_indexes:
        indexes_of.setdefault(index.table_oid, []).append(index)

    relinks: list[Relink] = []
    for (source_table, column), key in movable.items():
        is_self = source_table == table
        repeat_keys: list[RepeatKey] = []
        partners: dict[str, None] = {}
        for index in indexes_of.get(key.source_oid, []):
            if (
                is_self
                or index.is_partial_or_expression
                or column not in index.key_columns
                or len(index.key_columns) < 2
            ):
                continue
            others = tuple(c for c in index.key_columns if c != column)
            repeat_keys.append(
                RepeatKey(index.constraint, others, index.nulls_not_distinct)
            )
            for other in others:
                if other in object_columns[source_table]:
                    partners[other] = None
        relinks.append(
            Relink(
                constraint=key.constraint,
                table=source_table,
                column=column,
                is_self=is_self,
                repeat_keys=tuple(repeat_keys),
                partner_columns=tuple(partners),
                table_is_referenced=key.source_is_referenced,
            )
        )
    # The object's own table first, then the others by name: a fixed order keeps
    # "earlier in the same merge" well defined and the lock order stable.
    relinks.sort(key=lambda r: (not r.is_self, r.table, r.column))
    return ReferencePlan(tuple(relinks), tuple(blockers))


def is_blank(value: Any) -> bool:
    """Blank for fill_blanks: null, an empty or white-space-only string, an empty list
    or an empty JSON object. 0 and false are values."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict):
        return len(value) == 0
    return False


def resolve_fields(
    obj: ObjectMeta,
    strategy: Strategy,
    master: Mapping[str, Any],
    duplicates: Sequence[Mapping[str, Any]],
    self_columns: frozenset[str],
) -> dict[str, Any]:
    """The master's value of every data field after the merge.

    A self-reference (``referred_by_id``) never ends up naming a duplicate: the
    master's own reference to one is cleared (and, being null, is then a blank that
    fill_blanks fills), and a duplicate's reference to the master or another duplicate
    is not a value to fill with.
    """
    merged_ids = {master["id"], *(row["id"] for row in duplicates)}
    values: dict[str, Any] = {}
    for meta in obj.fields:
        name = meta.name
        is_self = name in self_columns or (
            meta.is_relation and meta.target_object == obj.name
        )
        value = master[name]
        if is_self and value in merged_ids and value != master["id"]:
            value = None
        if strategy == "fill_blanks" and is_blank(value):
            for row in duplicates:
                candidate = row[name]
                if is_blank(candidate) or (is_self and candidate in merged_ids):
                    continue
                value = candidate
                break
        values[name] = value
    return values


def _json_default(value: Any) -> Any:
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


async def _plan(
    conn: asyncpg.Connection, schema: str, obj: ObjectMeta
) -> ReferencePlan:
    foreign_keys = await repo.foreign_keys(conn, schema, obj.table)
    oids = sorted({key.source_oid for key in foreign_keys})
    indexes = await repo.unique_indexes(conn, oids)
    return plan_references(schema, obj.table, foreign_keys, indexes)


async def _check_blockers(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    plan: ReferencePlan,
    duplicate_ids: Sequence[UUID],
) -> None:
    for key in plan.blockers:
        count = await repo.count_blocking_references(
            conn, schema, obj.table, key, duplicate_ids
        )
        if count:
            raise Conflict(
                f"{count} row(s) of table {key.source_table} reference a duplicate "
                f"through {key.constraint}, which a merge cannot re-point "
                f"(columns {', '.join(key.source_columns)}); nothing was changed",
                [{"table": key.source_table, "constraint": key.constraint}],
            )


async def _lock(
    conn: asyncpg.Connection,
    schema: str,
    obj: ObjectMeta,
    master_id: UUID,
    duplicate_ids: Sequence[UUID],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Locks the records in id order; the master's row and the duplicates' in order."""
    await repo.guard_table(conn, schema, obj.table)
    locked = await repo.lock_records(
        conn, schema, obj.table, record_columns(obj), [master_id, *duplicate_ids]
    )
    by_id = {row["id"]: dict(row) for row in locked}
    missing = [i for i in (master_id, *duplicate_ids) if i not in by_id]
    if missing:
        raise RecordNotFound(
            f"{len(missing)} record(s) not found in {obj.name}",
            [str(i) for i in missing],
        )
    return by_id[master_id], [by_id[i] for i in duplicate_ids]


async def _move_references(
    conn: asyncpg.Connection,
    schema: str,
    plan: ReferencePlan,
    master_id: UUID,
    duplicate_ids: Sequence[UUID],
    report: MergeReport,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Re-points every referencing column; returns the dropped junction rows per
    duplicate and table, for the audit."""
    dropped_by_duplicate: dict[str, dict[str, list[dict[str, Any]]]] = {}
    report.junction_rows_dropped = dict.fromkeys(plan.junction_tables, 0)
    for relink in plan.relinks:
        if relink.is_self:
            moved, cleared = await repo.relink_self(
                conn, schema, relink.table, relink.column, master_id, duplicate_ids
            )
            report.self_references_cleared += cleared
        else:
            dropped = await _drop_junction_rows(
                conn, schema, relink, master_id, duplicate_ids
            )
            for row in dropped:
                owner = dropped_by_duplicate.setdefault(str(row[relink.column]), {})
                owner.setdefault(relink.table, []).append(row)
            if relink.is_junction:
                report.junction_rows_dropped[relink.table] += len(dropped)
            moved = await repo.relink(
                conn,
                schema,
                relink.table,
                relink.column,
                master_id,
                duplicate_ids,
                relink.repeat_constraints,
            )
        report.relinked[relink.label] = moved
    return dropped_by_duplicate


async def _merge_in(
    conn: asyncpg.Connection,
    principal: Principal,
    obj: ObjectMeta,
    command: MergeCommand,
) -> MergeReport:
    """Every step of one merge, inside the caller's transaction."""
    schema = principal.schema
    master_id = command.master_id
    duplicate_ids = list(command.duplicate_ids)
    report = MergeReport(master_id, command.strategy, dry_run=command.dry_run)
    await keys.mark_fresh(conn)
    master_row, duplicate_rows = await _lock(
        conn, schema, obj, master_id, duplicate_ids
    )

    plan = await _plan(conn, schema, obj)
    await _check_blockers(conn, schema, obj, plan, duplicate_ids)
    dropped = await _move_references(
        conn, schema, plan, master_id, duplicate_ids, report
    )
    # Only now, with nothing pointing at them, can the duplicates go without an
    # ON DELETE CASCADE taking anything along; and only after that is the master
    # written, so that a unique value it takes from a duplicate is free.
    deleted = await repo.delete_duplicates(conn, schema, obj.table, duplicate_ids)
    report.duplicates_deleted = len(deleted)
    values = resolve_fields(
        obj, command.strategy, master_row, duplicate_rows, plan.self_columns
    )
    written = dict(
        await repo.write_master(
            conn,
            schema,
            obj.table,
            obj.field_names,
            record_columns(obj),
            master_id,
            json.dumps(values, default=_json_default),
        )
    )
    await keys.write_keys(conn, schema, obj, [written], principal.phone_region)
    await repo.check_deferred(conn)
    report.master = to_api(obj, written)
    if command.dry_run:
        return report

    snapshots = [
        {
            "id": str(i),
            "record": deleted[i],
            "dropped_rows": dropped.get(str(i), {}),
        }
        for i in duplicate_ids
    ]
    audit = await repo.insert_audit(
        conn,
        schema,
        principal.user_id,
        principal.email,
        obj.name,
        master_id,
        command.strategy,
        duplicate_ids,
        snapshots,
        report.counts(),
    )
    report.audit_id = audit["id"]
    return report


async def _merge_once(
    db: Database, principal: Principal, obj: ObjectMeta, command: MergeCommand
) -> MergeReport:
    """One attempt in one transaction; a dry run's is rolled back."""
    try:
        async with db.transaction() as conn:
            report = await _merge_in(conn, principal, obj, command)
            if command.dry_run:
                raise _DryRunDone(report)
    except _DryRunDone as done:
        return done.report
    return report


async def _drop_junction_rows(
    conn: asyncpg.Connection,
    schema: str,
    relink: Relink,
    master_id: UUID,
    duplicate_ids: Sequence[UUID],
) -> list[dict[str, Any]]:
    """Drops the duplicates' rows that would be self-links or repeats once moved."""
    if not relink.is_junction:
        return []
    dropped: list[dict[str, Any]] = []
    if relink.partner_columns:
        dropped += await repo.drop_self_links(
            conn,
            schema,
            relink.table,
            relink.column,
            relink.partner_columns,
            master_id,
            duplicate_ids,
        )
    # Keys are judged one after the other. With one repeat key (every junction the
    # service declares) that is exact. With several, a row dropped on the first key
    # still counts as "earlier" on the second, so in a contrived chain a row that
    # could have survived is dropped too; judging all keys in one recursive
    # statement would lift that.
    for key in relink.repeat_keys:
        dropped += await repo.drop_repeated_rows(
            conn,
            schema,
            relink.table,
            relink.column,
            key.other_columns,
            key.nulls_not_distinct,
            master_id,
            duplicate_ids,
        )
    if dropped and relink.table_is_referenced:
        # Deleting a junction row could cascade to rows that point at it (or null
        # their reference): not a merge's call to make. Which rows do point at the
        # dropped ones is not checked, so any such foreign key refuses every drop.
        raise Conflict(
            f"{len(dropped)} row(s) of table {relink.table} would be dropped as "
            "repeats, but a foreign key with an ON DELETE action references that "
            "table; nothing was changed",
            [{"table": relink.table, "constraint": relink.repeat_keys[0].constraint}],
        )
    return dropped


async def merge(
    db: Database, models: ModelCache, principal: Principal, command: MergeCommand
) -> MergeReport:
    """Merges the duplicates into the master, or with `dry_run` tells what it would do.

    Raises InvalidObject, RecordNotFound (details: the missing ids) or Conflict; a
    deadlock or serialization failure is retried a few times first.
    """
    async with db.connection() as conn:
        model = await models.get(conn, principal.org_id)
    obj = model.object(command.object_name)
    started = time.perf_counter()
    report, attempts = await with_retries(
        lambda: _merge_once(db, principal, obj, command), "merge", (MergeContention,)
    )
    observe_merge(
        obj.name,
        time.perf_counter() - started,
        report.duplicates_deleted,
        dry_run=command.dry_run,
    )
    event(
        "merge.dry_run" if command.dry_run else "merge.done",
        object=obj.name,
        master_id=str(command.master_id),
        duplicates=report.duplicates_deleted,
        relinked=sum(report.relinked.values()),
        junction_rows_dropped=sum(report.junction_rows_dropped.values()),
        self_references_cleared=report.self_references_cleared,
        attempts=attempts,
    )
    return report
