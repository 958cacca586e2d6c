"""`dupes import`: files loaded with the API's validation and keys, refused rows
reported by row and line, and the shared real data set loaded whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.metadata import load_model
from app.repository import core
from app.services import importer
from app.services.records import OrgScope
from tests.conftest import World
from tests.processes import dupes_env, run_cli
from tests.realdata import CHICAGO_ROWS, load_chicago_companies

CSV_TEXT = (
    "Site name,Phone,Employees,Notes\n"
    "Acme Corp,386-5286,12,ignored\n"
    '"Two\nLine Co",3865286,,ignored\n'
    ",555-0100,3,no name\n"
    "\n"
    "Big Co,(312) 555 0100,lots,not a number\n"
    "Extra Co,1,2,3,4\n"
    "  ,,,\n"
    "Last Co,,7.5,\n"
)


async def import_report(
    db_dsn: str, object_name: str, path: Path, *options: str
) -> dict[str, Any]:
    """`dupes import` of `path` into acme as a user runs it; its --json report."""
    code, out, err = await run_cli(
        "import",
        object_name,
        str(path),
        "--org",
        "acme",
        *options,
        "--json",
        env=dupes_env(DATABASE_URL=db_dsn),
    )
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


async def test_csv_import_loads_valid_rows_and_reports_refused_ones(
    db_dsn: str, conn: asyncpg.Connection, world: World, tmp_path: Path
) -> None:
    path = tmp_path / "companies.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    report = await import_report(
        db_dsn,
        "companies",
        path,
        "--map",
        "Site name=name",
        "--map",
        "Phone=phone",
        "--batch-size",
        "2",
    )
    assert report["rows"] == 7
    assert report["created"] == 3
    assert report["failed"] == 4
    assert report["duplicates"] == 0
    assert report["ignored_columns"] == ["Notes"]
    refused = [(e["row"], e["line"]) for e in report["errors"]]
    # Row 2 spans lines 3-4 and line 6 is blank, so rows and lines part ways.
    assert refused == [(3, 5), (4, 7), (5, 8), (6, 9)]
    messages = [e["message"] for e in report["errors"]]
    assert "name is required" in messages[0]
    assert "employees must be a number" in messages[1]
    assert "5 cells" in messages[2]
    assert "name is required" in messages[3]

    schema = world.acme.schema
    rows = await conn.fetch(
        f'SELECT name, phone, employees, keys_stale FROM "{schema}".companies '
        "ORDER BY name"
    )
    assert [r["name"] for r in rows] == ["Acme Corp", "Last Co", "Two\nLine Co"]
    assert not any(r["keys_stale"] for r in rows)
    phone_owners = await conn.fetchval(
        f'SELECT count(*) FROM "{schema}".match_keys '
        "WHERE field = 'phone' AND key = '+13865286'"
    )
    # Duplicates are loaded: finding them is detection's work.
    assert phone_owners == 2


async def test_jsonl_import_can_skip_duplicates_of_stored_and_earlier_rows(
    db_dsn: str, conn: asyncpg.Connection, world: World, tmp_path: Path
) -> None:
    env = dupes_env(DATABASE_URL=db_dsn)
    first = tmp_path / "first.jsonl"
    first.write_text(
        json.dumps({"first_name": "Ann", "email": "ann@example.com"}) + "\n",
        encoding="utf-8",
    )
    code, _, err = await run_cli(
        "import", "contacts", str(first), "--org", "acme", env=env
    )
    assert code == 0, err
    second = tmp_path / "second.jsonl"
    lines = [
        json.dumps({"first_name": "Ann again", "email": "ANN@example.com"}),
        json.dumps({"First_Name": "Bob", "phone": "312 555 0100", "extra": 1}),
        json.dumps({"first_name": "Bob twin", "additional_phones": ["3125550100"]}),
        "{broken json",
        json.dumps(["not", "an", "object"]),
        json.dumps({"first_name": "Cy", "phone": 3125550199}),
        "",
    ]
    second.write_text("\n".join(lines), encoding="utf-8")
    report = await import_report(db_dsn, "contacts", second, "--skip-duplicates")
    assert (report["rows"], report["created"], report["duplicates"]) == (6, 1, 2)
    assert report["failed"] == 3
    assert [e["row"] for e in report["errors"]] == [4, 5, 6]
    assert "not valid JSON" in report["errors"][0]["message"]
    assert "phone must be a string" in report["errors"][2]["message"]
    assert report["ignored_columns"] == ["extra"]
    names = await conn.fetch(
        f'SELECT first_name FROM "{world.acme.schema}".contacts ORDER BY first_name'
    )
    assert [r["first_name"] for r in names] == ["Ann", "Bob"]


async def test_import_text_report_and_usage_errors(db_dsn: str, tmp_path: Path) -> None:
    env = dupes_env(DATABASE_URL=db_dsn)
    path = tmp_path / "c.csv"
    path.write_text("name,phone\nAcme,\n,x\n", encoding="utf-8")
    code, out, err = await run_cli(
        "import", "companies", str(path), "--org", "acme", env=env
    )
    assert code == 0, err
    assert "2 rows read, 1 created" in out
    assert "row 2 (line 3): name is required" in out

    failures = [
        ("companies", str(path), "--org", "nobody"),
        ("widgets", str(path), "--org", "acme"),
        ("companies", str(tmp_path / "missing.csv"), "--org", "acme"),
        ("companies", str(path), "--org", "acme", "--map", "name=nope"),
        ("companies", str(path), "--org", "acme", "--map", "Website=domain"),
        ("companies", str(path), "--org", "acme", "--map", "no equals sign"),
        ("companies", str(path), "--org", "acme", "--batch-size", "0"),
    ]
    for args in failures:
        code, _, err = await run_cli("import", *args, env=env)
        assert code == 1, args
        assert err.startswith("dupes: "), err


async def test_the_chicago_data_set_imports_whole_as_companies(
    db_dsn: str, conn: asyncpg.Connection, world: World
) -> None:
    load = await load_chicago_companies(db_dsn, "acme")
    report = load.report
    assert report.rows == CHICAGO_ROWS
    assert report.failed == 0, report.errors[:5]
    assert report.created == CHICAGO_ROWS
    assert len(load.true_ids) == CHICAGO_ROWS
    # 1,162 hand-made clusters, as the data set's README says.
    assert len(load.clusters) == 1162
    schema = world.acme.schema
    stale = await conn.fetchval(
        f'SELECT count(*) FROM "{schema}".companies WHERE keys_stale'
    )
    assert stale == 0
    keyed = await conn.fetchval(
        f'SELECT count(DISTINCT record_id) FROM "{schema}".match_keys '
        "WHERE object_name = 'companies' AND field = 'name'"
    )
    assert keyed == CHICAGO_ROWS
    # Names are stored as given, stray spaces and line breaks included.
    kept = await conn.fetchval(
        f'SELECT count(*) FROM "{schema}".companies WHERE position(chr(10) IN name) > 0'
    )
    assert kept > 0


async def test_worker_processes_load_a_file_exactly_like_one_process(
    conn: asyncpg.Connection,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = ["name,email,phone"]
    for number in range(60):
        # Every fifth row repeats an earlier row's email; every seventh is invalid.
        email = f"c{number - number % 5}@example.com"
        name = "" if number % 7 == 3 else f"Company {number}"
        lines.append(f"{name},{email},312-555-{number:04}")
    path = tmp_path / "companies.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(importer, "POOL_MIN_BYTES", 0)
    reports = []
    for org, workers in (("acme", 1), ("globex", 2)):
        row = await core.get_organization_by_name(conn, org)
        assert row is not None
        scope = OrgScope(row["id"], row["schema_name"], row["phone_region"])
        model = await load_model(conn, scope.org_id)
        reports.append(
            await importer.import_file(
                conn,
                scope,
                model,
                model.object("companies"),
                path,
                skip_duplicates=True,
                batch_size=7,
                workers=workers,
                keep_ids=True,
            )
        )
    alone, pooled = reports
    assert (alone.rows, alone.created, alone.duplicates, alone.failed) == (
        60,
        12,
        39,
        9,
    )
    assert pooled.as_json()["errors"] == alone.as_json()["errors"]
    assert sorted(pooled.record_ids) == sorted(alone.record_ids)
    assert (pooled.created, pooled.duplicates) == (alone.created, alone.duplicates)


async def test_csv_headers_dates_deep_cells_and_file_order(
    db_dsn: str, conn: asyncpg.Connection, world: World, tmp_path: Path
) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "First Name,Additional Emails,City\n"
        + "".join(f"Row {n},row{n}@x.test;other{n}@x.test,Paris\n" for n in range(40))
        + "Deep,"
        + "[" * 5000
        + ",Paris\n",
        encoding="utf-8",
    )
    report = await import_report(db_dsn, "contacts", contacts)
    assert (report["created"], report["failed"]) == (40, 1)
    assert report["ignored_columns"] == []
    assert report["errors"][0]["row"] == 41
    assert "additional_emails" in report["errors"][0]["message"]
    rows = await conn.fetch(
        f'SELECT first_name, additional_emails FROM "{world.acme.schema}".contacts '
        "ORDER BY created_at, id"
    )
    # One transaction, one created_at: the ids keep the rows in file order.
    assert [r["first_name"] for r in rows] == [f"Row {n}" for n in range(40)]
    assert rows[0]["additional_emails"] == ["row0@x.test", "other0@x.test"]

    deals = tmp_path / "deals.csv"
    deals.write_text(
        "name,amount,close_date\nBig deal,1200.50,2026-01-31\nNo date,,\n"
        "Bad date,1,2026-02-30\n",
        encoding="utf-8",
    )
    report = await import_report(db_dsn, "opportunities", deals)
    assert (report["created"], report["failed"]) == (2, 1)
    stored = await conn.fetch(
        f"SELECT name, amount::text, close_date::text "
        f'FROM "{world.acme.schema}".opportunities ORDER BY name'
    )
    assert [tuple(r) for r in stored] == [
        ("Big deal", "1200.50", "2026-01-31"),
        ("No date", None, None),
    ]
