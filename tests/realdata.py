"""The shared real data set, loaded through the service's own import path.

`load_chicago_companies` imports `chicago-early-childhood.csv` as companies (`Site
name` -> name, `Phone` -> phone) with `app.services.importer.import_file`, exactly as
`dupes import` does, and returns which record came from which row together with the
row's hand-made cluster (`True Id`), so that detection can be scored against it.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg

from app.metadata import load_model
from app.repository import core
from app.services import importer
from app.services.records import OrgScope

CHICAGO_CSV = Path(__file__).resolve().parent / "data" / "chicago-early-childhood.csv"
CHICAGO_ROWS = 3337
CHICAGO_MAPPING: Mapping[str, str] = {"Site name": "name", "Phone": "phone"}


@dataclass(frozen=True)
class ChicagoLoad:
    """What the load did, and the truth to score detection against."""

    report: importer.FileReport
    # Record id -> the `True Id` of the row it came from (same value, same site).
    true_ids: dict[UUID, str]

    @property
    def clusters(self) -> dict[str, set[UUID]]:
        """True Id -> the ids of its records."""
        grouped: dict[str, set[UUID]] = {}
        for record_id, true_id in self.true_ids.items():
            grouped.setdefault(true_id, set()).add(record_id)
        return grouped


def chicago_csv() -> Path:
    """The file's path (it ships with the tests, so it is never missing)."""
    assert CHICAGO_CSV.is_file(), f"the real data set is missing: {CHICAGO_CSV}"
    return CHICAGO_CSV


def _true_ids(path: Path) -> dict[int, str]:
    """Row number (1 = first record after the header) -> True Id."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return {number: row["True Id"] for number, row in enumerate(reader, start=1)}


async def load_chicago_companies(
    target: asyncpg.Connection | str,
    org_name: str,
    *,
    mapping: Mapping[str, str] | None = None,
    batch_size: int = 1000,
) -> ChicagoLoad:
    """Imports the Chicago file as companies of the organization named `org_name`.

    `target` is a connection or a DSN. `mapping` replaces the default column mapping
    (for example to add `"Email Address": "email"`).
    """
    path = chicago_csv()
    conn = await asyncpg.connect(target) if isinstance(target, str) else target
    try:
        org = await core.get_organization_by_name(conn, org_name)
        assert org is not None, f"no organization {org_name!r}"
        scope = OrgScope(org["id"], org["schema_name"], org["phone_region"])
        model = await load_model(conn, scope.org_id)
        report = await importer.import_file(
            conn,
            scope,
            model,
            model.object("companies"),
            path,
            mapping=mapping or CHICAGO_MAPPING,
            batch_size=batch_size,
            keep_ids=True,
        )
    finally:
        if isinstance(target, str):
            await conn.close()
    truth = _true_ids(path)
    return ChicagoLoad(
        report,
        {record_id: truth[row] for row, record_id in report.record_ids.items()},
    )
