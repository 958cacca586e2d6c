"""Imports: many records at once, through the same validation and keying as the API.

Every import goes through two steps: `prepare_batch` validates records and computes
their match keys (pure work, done in worker processes for large files), and
`write_batch` writes one batch in one transaction, COPYing the new rows and their
keys with the keys marked fresh, so nothing is left for the stale-key pass. The API's
`POST /import/{object}` runs both on its records (`load_batch`); `dupes import` runs
them on each batch of a file.

With `skip_duplicates`, a record whose match keys meet those of a stored record or of
an earlier record of the same import is counted as a duplicate and not written.
"""

from __future__ import annotations

import asyncio
import csv
import io
import multiprocessing
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg

from app.db import Database
from app.errors import ValidationFailed
from app.logs import event
from app.metadata import ModelCache, ObjectMeta, OrgModel
from app.repository import records as repo
from app.services import values
from app.services.ids import time_ordered_uuid
from app.services.keys import Key, mark_fresh, record_keys, rekey_stale
from app.services.records import OrgScope, relation_problems
from app.services.retry import retried_on_contention

API_IMPORT_MAX = 50
DEFAULT_BATCH = 5000
POOL_MIN_BYTES = 4 << 20
# csv refuses fields longer than this by default (128 KiB); a cell is still checked
# against the field's own limit afterwards.
_CSV_FIELD_LIMIT = 1 << 24
_MATCH_KEY_COLUMNS = ("object_name", "field", "key", "record_id")

# A checked record on its way to the table: (input index, values, match keys).
Keyed = tuple[int, dict[str, Any], set[Key]]


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one input record was refused. `index` is its position in the request, or
    its row number in a file (1 = the first record after the header)."""

    index: int
    code: str
    message: str
    line: int | None = None

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "index": self.index,
            "code": self.code,
            "message": self.message,
        }
        if self.line is not None:
            shown["line"] = self.line
        return shown


@dataclass(slots=True)
class BatchOutcome:
    created: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    # (input index, new record id) of every record written, in input order.
    created_ids: list[tuple[int, uuid.UUID]] = field(default_factory=list)


def _error(index: int, exc: ValidationFailed, line: int | None = None) -> RowError:
    return RowError(index, exc.code, exc.message, line)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch checked and keyed, not yet written. Plain data, so that a worker
    process can prepare it while the database writes the one before."""

    records: list[Keyed]
    errors: list[RowError]


def prepare_batch(
    obj: ObjectMeta, items: Sequence[tuple[int, Mapping[str, Any]]], region: str
) -> Prepared:
    """Validates `(index, record)` items and computes the match keys of valid ones."""
    records: list[Keyed] = []
    errors: list[RowError] = []
    for index, data in items:
        try:
            cleaned = values.clean_record(obj, data)
        except ValidationFailed as exc:
            errors.append(_error(index, exc))
            continue
        records.append((index, cleaned, record_keys(obj, cleaned, region)))
    return Prepared(records, errors)


async def write_batch(
    conn: asyncpg.Connection,
    scope: OrgScope,
    model: OrgModel,
    obj: ObjectMeta,
    prepared: Prepared,
    *,
    skip_duplicates: bool,
) -> BatchOutcome:
    """Writes a prepared batch in one transaction: relations checked, duplicates
    dropped when asked, rows and keys copied."""
    outcome = BatchOutcome(errors=list(prepared.errors))
    async with conn.transaction():
        problems = await relation_problems(
            conn, scope, model, obj, [record for _, record, _ in prepared.records]
        )
        keyed: list[Keyed] = []
        for position, item in enumerate(prepared.records):
            found = problems.get(position)
            if found:
                message = "; ".join(f"{p.field} {p.message}" for p in found)
                outcome.errors.append(RowError(item[0], "VALIDATION_ERROR", message))
            else:
                keyed.append(item)
        if skip_duplicates:
            await repo.lock_imports(conn, scope.schema, obj.name)
            keyed, outcome.duplicates = await _without_duplicates(
                conn, scope, obj, keyed
            )
        await _write(conn, scope, obj, keyed, outcome)
    outcome.errors.sort(key=lambda error: error.index)
    return outcome


async def load_batch(
    conn: asyncpg.Connection,
    scope: OrgScope,
    model: OrgModel,
    obj: ObjectMeta,
    items: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    skip_duplicates: bool,
) -> BatchOutcome:
    """Validates, keys and writes `(index, record)` items in one transaction.

    Invalid records are reported with their index and not written; the valid ones
    are. Records with no key at all are never duplicates.
    """
    prepared = prepare_batch(obj, items, scope.phone_region)
    return await write_batch(
        conn, scope, model, obj, prepared, skip_duplicates=skip_duplicates
    )


async def _without_duplicates(
    conn: asyncpg.Connection,
    scope: OrgScope,
    obj: ObjectMeta,
    keyed: list[Keyed],
) -> tuple[list[Keyed], int]:
    """Drops records that share a key with a stored record or an earlier one here."""
    wanted = sorted({key for _, _, keys in keyed for key in keys})
    seen: set[tuple[str, str]] = await repo.existing_keys(
        conn, scope.schema, obj.name, wanted
    )
    kept: list[Keyed] = []
    duplicates = 0
    for item in keyed:
        keys = item[2]
        if seen.intersection(keys):
            duplicates += 1
        else:
            kept.append(item)
        # A duplicate's keys count too: a later record matching it matches this batch.
        seen.update(keys)
    return kept, duplicates


async def _write(
    conn: asyncpg.Connection,
    scope: OrgScope,
    obj: ObjectMeta,
    keyed: list[Keyed],
    outcome: BatchOutcome,
) -> None:
    if not keyed:
        return
    columns = ("id", *obj.field_names, "keys_stale")
    rows: list[tuple[Any, ...]] = []
    key_rows: list[tuple[str, str, str, uuid.UUID]] = []
    for index, record, keys in keyed:
        rid = time_ordered_uuid()
        rows.append((rid, *(record.get(name) for name in obj.field_names), False))
        key_rows.extend((obj.name, field, key, rid) for field, key in keys)
        outcome.created_ids.append((index, rid))
    # In index order, consecutive keys land on the same index pages.
    key_rows.sort()
    await mark_fresh(conn)
    await repo.copy_rows(conn, scope.schema, obj.table, columns, rows)
    if key_rows:
        await repo.copy_rows(
            conn, scope.schema, "match_keys", _MATCH_KEY_COLUMNS, key_rows
        )
    outcome.created += len(rows)


# --- the API import --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    object_name: str
    created: int
    duplicates: int
    failed: int
    errors: list[RowError]

    def as_json(self) -> dict[str, Any]:
        return {
            "object_name": self.object_name,
            "created": self.created,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "errors": [error.as_json() for error in self.errors],
        }


@retried_on_contention
async def import_records(
    db: Database,
    models: ModelCache,
    scope: OrgScope,
    object_name: str,
    records: Sequence[Any],
) -> ImportResult:
    """Creates the records that are valid and not duplicates; counts the rest."""
    if len(records) > API_IMPORT_MAX:
        raise ValidationFailed(f"an import takes at most {API_IMPORT_MAX} records")
    async with db.connection() as conn:
        model = await models.get(conn, scope.org_id)
        obj = model.object(object_name)
        # Keys of rows written by other means must be current before they are compared.
        await rekey_stale(conn, scope.schema, obj, scope.phone_region)
        items: list[tuple[int, Mapping[str, Any]]] = []
        refused: list[RowError] = []
        for index, data in enumerate(records):
            if isinstance(data, dict):
                items.append((index, data))
            else:
                refused.append(
                    RowError(
                        index, "VALIDATION_ERROR", "a record must be a JSON object"
                    )
                )
        outcome = await load_batch(conn, scope, model, obj, items, skip_duplicates=True)
    errors = sorted([*refused, *outcome.errors], key=lambda error: error.index)
    event(
        "import.done",
        object=obj.name,
        created=outcome.created,
        duplicates=outcome.duplicates,
        failed=len(errors),
    )
    return ImportResult(
        obj.name, outcome.created, outcome.duplicates, len(errors), errors
    )


# --- files -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One record read from a file: its values, or why it could not be read."""

    number: int
    line: int
    data: dict[str, Any] | None
    problem: str | None = None


@dataclass(slots=True)
class FileReport:
    object_name: str
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Row number -> id of the record created from it, when asked for (`keep_ids`).
    record_ids: dict[int, uuid.UUID] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.errors)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "object_name": self.object_name,
            "rows": self.rows,
            "created": self.created,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "ignored_columns": self.ignored_columns,
            "errors": [
                {"row": e.index, "line": e.line, "code": e.code, "message": e.message}
                for e in self.errors
            ],
        }


_COLUMN_SEPARATORS = re.compile(r"[\s-]+")


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """`--map "Site name=name"` options as {column: field}."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, equals, field_name = pair.rpartition("=")
        if not equals or not column.strip() or not field_name.strip():
            raise ValidationFailed(f"--map {pair!r}: write it as 'Column name=field'")
        if column in mapping:
            raise ValidationFailed(f"--map names column {column!r} twice")
        mapping[column] = field_name.strip()
    return mapping


def _field_for(obj: ObjectMeta, name: str, mapping: Mapping[str, str]) -> str | None:
    """The field a column or key feeds: mapped, or the field of the same name
    (ignoring case and outer white space, inner spaces and hyphens read as
    underscores: "Additional Emails" feeds additional_emails), or None."""
    if name in mapping:
        return mapping[name]
    wanted = _COLUMN_SEPARATORS.sub("_", name.strip()).casefold()
    for candidate in obj.field_names:
        if candidate.casefold() == wanted:
            return candidate
    return None


def _check_mapping(obj: ObjectMeta, mapping: Mapping[str, str]) -> None:
    for column, field_name in mapping.items():
        if obj.field(field_name) is None:
            raise ValidationFailed(
                f"--map {column}={field_name}: {obj.name} has no field {field_name!r}"
                f" (fields: {', '.join(obj.field_names)})"
            )


class _ByteCounter(io.RawIOBase):
    """A file that counts the bytes read from it, for progress."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.done += len(data)
        return len(data)


def _csv_rows(
    text: IO[str], obj: ObjectMeta, mapping: Mapping[str, str], ignored: list[str]
) -> Iterator[SourceRow]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    missing = [column for column in mapping if column not in header]
    if missing:
        raise ValidationFailed(
            f"--map names columns the file does not have: {', '.join(missing)}"
        )
    targets: list[tuple[int, str]] = []
    used: dict[str, str] = {}
    for position, column in enumerate(header):
        name = _field_for(obj, column, mapping)
        if name is None:
            ignored.append(column)
            continue
        if name in used:
            raise ValidationFailed(
                f"columns {used[name]!r} and {column!r} both feed field {name!r}"
            )
        used[name] = column
        targets.append((position, name))
    fields = {name: obj.field(name) for _, name in targets}
    number = 0
    line = reader.line_num + 1
    for cells in reader:
        start, line = line, reader.line_num + 1
        if not cells:
            # A blank line holds no record (csv.DictReader skips it too).
            continue
        number += 1
        if len(cells) > len(header):
            yield SourceRow(
                number,
                start,
                None,
                f"has {len(cells)} cells but the header has {len(header)} columns",
            )
            continue
        data: dict[str, Any] = {}
        for position, name in targets:
            meta = fields[name]
            assert meta is not None
            cell = cells[position] if position < len(cells) else None
            data[name] = values.from_text(meta, cell)
        yield SourceRow(number, start, data)


def _jsonl_rows(
    text: IO[str], obj: ObjectMeta, mapping: Mapping[str, str], ignored: list[str]
) -> Iterator[SourceRow]:
    number = 0
    for line_number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        number += 1
        try:
            parsed = values.load_json(line)
        except (ValueError, RecursionError) as exc:
            yield SourceRow(number, line_number, None, f"is not valid JSON: {exc}")
            continue
        if not isinstance(parsed, dict):
            yield SourceRow(number, line_number, None, "is not a JSON object")
            continue
        data: dict[str, Any] = {}
        for key, value in parsed.items():
            name = _field_for(obj, key, mapping)
            if name is None:
                if key not in ignored:
                    ignored.append(key)
                continue
            data[name] = value
        yield SourceRow(number, line_number, data)


Progress = Callable[[int, int, int], None]
"""Called after each batch with (rows written, bytes read, file size)."""


class _Pipeline:
    """Batches of a file on their way in: prepared (validated and keyed) by worker
    processes ahead of the one being written, and written strictly in file order, so
    that "an earlier row" means the same with or without workers."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        scope: OrgScope,
        model: OrgModel,
        obj: ObjectMeta,
        report: FileReport,
        *,
        skip_duplicates: bool,
        keep_ids: bool,
        pool: ProcessPoolExecutor | None,
        ahead: int,
    ) -> None:
        self._conn = conn
        self._scope = scope
        self._model = model
        self._obj = obj
        self._report = report
        self._skip_duplicates = skip_duplicates
        self._keep_ids = keep_ids
        self._pool = pool
        self._ahead = ahead
        self._pending: deque[tuple[list[SourceRow], asyncio.Future[Prepared]]] = deque()

    async def submit(self, batch: list[SourceRow]) -> None:
        items = [(row.number, row.data) for row in batch if row.data is not None]
        loop = asyncio.get_running_loop()
        if self._pool is not None:
            future = loop.run_in_executor(
                self._pool, prepare_batch, self._obj, items, self._scope.phone_region
            )
        else:
            future = loop.create_future()
            future.set_result(prepare_batch(self._obj, items, self._scope.phone_region))
        self._pending.append((batch, future))
        while len(self._pending) > self._ahead:
            await self._write_oldest()

    async def drain(self) -> None:
        while self._pending:
            await self._write_oldest()

    def cancel(self) -> None:
        for _, future in self._pending:
            future.cancel()

    async def _write_oldest(self) -> None:
        batch, future = self._pending.popleft()
        prepared = await future
        outcome = await write_batch(
            self._conn,
            self._scope,
            self._model,
            self._obj,
            prepared,
            skip_duplicates=self._skip_duplicates,
        )
        report = self._report
        lines = {row.number: row.line for row in batch}
        report.errors.extend(
            RowError(row.number, "VALIDATION_ERROR", f"row {row.problem}", row.line)
            for row in batch
            if row.data is None
        )
        report.errors.extend(
            RowError(e.index, e.code, e.message, lines[e.index]) for e in outcome.errors
        )
        if self._keep_ids:
            report.record_ids.update(outcome.created_ids)
        report.rows += len(batch)
        report.created += outcome.created
        report.duplicates += outcome.duplicates


def _worker_pool(workers: int) -> ProcessPoolExecutor | None:
    if workers <= 1:
        return None
    # spawn, not fork: the parent runs an event loop and holds a connection.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


async def import_file(
    conn: asyncpg.Connection,
    scope: OrgScope,
    model: OrgModel,
    obj: ObjectMeta,
    path: Path,
    *,
    mapping: Mapping[str, str] | None = None,
    skip_duplicates: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    keep_ids: bool = False,
    workers: int = 1,
) -> FileReport:
    """Loads every record of a CSV (with a header) or JSONL file, batch by batch.

    Each batch is committed on its own, so a failure part-way keeps what was loaded.
    Without `skip_duplicates` duplicates are loaded too: finding them is detection's
    job. Rows that fail validation are reported with their row and line numbers.
    With `keep_ids` the report maps each row number to the id of its new record.
    With `workers` above 1 and a file of at least `POOL_MIN_BYTES`, that many
    processes validate and key the batches ahead of the one being written.
    """
    mapping = dict(mapping or {})
    _check_mapping(obj, mapping)
    if not 1 <= batch_size <= 100_000:
        raise ValidationFailed("--batch-size must be from 1 to 100000")
    if not 1 <= workers <= 64:
        raise ValidationFailed("--workers must be from 1 to 64")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ValidationFailed("the file must end in .csv, .jsonl or .ndjson")
    started = time.perf_counter()
    report = FileReport(obj.name)
    await rekey_stale(conn, scope.schema, obj, scope.phone_region)
    size = (await asyncio.to_thread(path.stat)).st_size
    # A worker takes about a second to start; below this size it would not pay off.
    pool = _worker_pool(workers if size >= POOL_MIN_BYTES else 1)
    pipeline = _Pipeline(
        conn,
        scope,
        model,
        obj,
        report,
        skip_duplicates=skip_duplicates,
        keep_ids=keep_ids,
        pool=pool,
        ahead=workers if pool is not None else 0,
    )
    try:
        with path.open("rb") as raw:
            counter = _ByteCounter(raw)
            text = io.TextIOWrapper(
                io.BufferedReader(counter, 1 << 20), encoding="utf-8-sig", newline=""
            )
            reader = _csv_rows if suffix == ".csv" else _jsonl_rows
            batch: list[SourceRow] = []
            try:
                for row in reader(text, obj, mapping, report.ignored_columns):
                    batch.append(row)
                    if len(batch) >= batch_size:
                        await pipeline.submit(batch)
                        batch = []
                        if progress is not None:
                            progress(report.rows, counter.done, size)
                if batch:
                    await pipeline.submit(batch)
                await pipeline.drain()
            except UnicodeDecodeError as exc:
                raise ValidationFailed(
                    f"the file is not UTF-8 text near byte {counter.done}; "
                    "the batches before it were loaded"
                ) from exc
            if progress is not None:
                progress(report.rows, counter.done, size)
    finally:
        pipeline.cancel()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    report.errors.sort(key=lambda error: error.index)
    report.seconds = time.perf_counter() - started
    event(
        "import.file.done",
        object=obj.name,
        rows=report.rows,
        created=report.created,
        duplicates=report.duplicates,
        failed=report.failed,
        seconds=round(report.seconds, 3),
    )
    return report
