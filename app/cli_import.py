"""`dupes import OBJECT FILE --org NAME`: load a CSV or JSONL file into an object.

Every row goes through the records API's validation and keying (`app.services`), and
is written with COPY, batch by batch. Refused rows are listed with their row number,
line and reason; the command succeeds (exit code 0) once the file has been read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from app import commands
from app.db import open_connection
from app.errors import NotFoundInCli
from app.metadata import load_model
from app.repository import core
from app.services import importer
from app.services.records import OrgScope
from app.settings import Settings

# Refused rows printed in text mode; --json lists every one.
_SHOWN_ERRORS = 1000
_BAR_WIDTH = 30


class ProgressBar:
    """A one-line progress bar on a terminal's stderr; silent elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._started = time.perf_counter()
        self._drawn = False

    def __call__(self, rows: int, done: int, size: int) -> None:
        if not self._enabled:
            return
        share = min(done / size, 1.0) if size else 1.0
        filled = int(share * _BAR_WIDTH)
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        self._stream.write(
            f"\r[{bar}] {share:6.1%}  {rows:,} rows  {rows / elapsed:,.0f} rows/s "
        )
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def _text_report(report: importer.FileReport) -> str:
    lines = [
        f"{report.object_name}: {report.rows:,} rows read, {report.created:,} created, "
        f"{report.duplicates:,} duplicates skipped, {report.failed:,} refused "
        f"in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)"
    ]
    if report.ignored_columns:
        lines.append("ignored columns: " + ", ".join(report.ignored_columns))
    for error in report.errors[:_SHOWN_ERRORS]:
        lines.append(f"row {error.index} (line {error.line}): {error.message}")
    hidden = report.failed - _SHOWN_ERRORS
    if hidden > 0:
        lines.append(f"... and {hidden:,} more refused rows (--json lists them all)")
    return "\n".join(lines)


async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Runs one import; exit code 0 when the file was read, whatever it held."""
    mapping = importer.parse_mapping(args.map or [])
    path: Path = args.file
    if not await asyncio.to_thread(path.is_file):
        raise NotFoundInCli(f"no file {path}")
    conn = await open_connection(settings)
    bar = ProgressBar(sys.stderr)
    try:
        org = await core.get_organization_by_name(conn, args.org)
        if org is None:
            raise NotFoundInCli(f"no organization named {args.org!r}")
        scope = OrgScope(org["id"], org["schema_name"], org["phone_region"])
        model = await load_model(conn, scope.org_id)
        report = await importer.import_file(
            conn,
            scope,
            model,
            model.object(args.object),
            path,
            mapping=mapping,
            skip_duplicates=args.skip_duplicates,
            batch_size=args.batch_size,
            progress=bar,
            workers=args.workers,
        )
    finally:
        bar.close()
        await conn.close()
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(_text_report(report))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Adds `dupes import` to the command line."""
    parser = sub.add_parser(
        "import",
        parents=[common],
        help="load a CSV or JSONL file into an object",
        description="Load every row of a CSV (with a header) or JSONL file into an "
        "object of an organization, with the records API's validation and match keys.",
    )
    parser.add_argument("object", help="the object to load into, e.g. companies")
    parser.add_argument("file", type=Path, help="a .csv or .jsonl file")
    parser.add_argument("--org", required=True, help="the organization's name")
    parser.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD",
        help="feed a column into a field, e.g. --map 'Site name=name' (repeatable); "
        "a column named like a field feeds it without a mapping",
    )
    parser.add_argument(
        "--skip-duplicates",
        action="store_true",
        help="do not load rows whose match keys meet a stored row or an earlier row",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=importer.DEFAULT_BATCH,
        help=f"rows per transaction (default {importer.DEFAULT_BATCH})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes that validate and key rows ahead of the writer "
        "(default: one per CPU; 1 does it all in this process)",
    )
    parser.set_defaults(func=cmd_import)


commands.REGISTRY.append(register)
