"""Migrations: applied once, in order, under a lock; append-only; per organization."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from app import migrations
from app.services import accounts


def test_migration_files_are_numbered_in_order() -> None:
    for kind in ("core", "org"):
        loaded = migrations.load_set(kind)
        assert [m.version for m in loaded] == list(range(1, len(loaded) + 1))


def test_a_misnamed_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, root)
    (root / "core" / "7_oops.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match=r"named NNNN_words\.sql"):
        migrations.load_set("core", root)


async def test_concurrent_starts_apply_each_migration_once(empty_dsn: str) -> None:
    connections = [await asyncpg.connect(empty_dsn) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(migrations.migrate(c) for c in connections))
        rows = await connections[0].fetch(
            "SELECT scope, version, count(*) AS n FROM dupes_core.schema_migrations "
            "GROUP BY scope, version"
        )
    finally:
        for connection in connections:
            await connection.close()
    core = migrations.load_set("core")
    assert sum(applied) == len(core)
    assert sorted(r["version"] for r in rows) == [m.version for m in core]
    assert all(r["n"] == 1 for r in rows)


async def test_concurrent_processes_migrate_once(empty_dsn: str) -> None:
    import os
    import sys

    env = {**os.environ, "DATABASE_URL": empty_dsn}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "migrate",
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [await p.communicate() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    import json

    counts = [json.loads(out)["applied"] for out, _ in outputs]
    assert sorted(counts) == [0, 0, len(migrations.load_set("core"))]


async def test_a_changed_migration_is_refused(empty_dsn: str, tmp_path: Path) -> None:
    root = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, root)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrations.migrate(conn, root)
        first = sorted((root / "core").iterdir())[0]
        first.write_text(first.read_text() + "\n-- an afterthought\n")
        with pytest.raises(migrations.MigrationError, match="was changed after"):
            await migrations.migrate(conn, root)
    finally:
        await conn.close()


async def test_new_org_migration_reaches_every_organization(
    empty_dsn: str, tmp_path: Path
) -> None:
    root = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, root)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrations.migrate(conn, root)
        first = await accounts.create_organization(conn, "one", migrations_root=root)
        second = await accounts.create_organization(conn, "two", migrations_root=root)
        number = len(migrations.load_set("org", root)) + 1
        (root / "org" / f"{number:04d}_add_tags.sql").write_text(
            "CREATE TABLE tags (id uuid PRIMARY KEY, label text NOT NULL);\n"
        )
        assert await migrations.migrate(conn, root) == 2
        third = await accounts.create_organization(conn, "three", migrations_root=root)
        for org in (first, second, third):
            found = await conn.fetchval(
                "SELECT to_regclass($1::text) IS NOT NULL",
                f'"{org["schema_name"]}".tags',
            )
            assert found, org["name"]
            versions = await conn.fetchval(
                "SELECT max(version) FROM dupes_core.schema_migrations "
                "WHERE scope = $1",
                org["schema_name"],
            )
            assert versions == number
    finally:
        await conn.close()


async def test_organizations_are_isolated_schemas(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT schema_name FROM dupes_core.organizations ORDER BY name"
    )
    assert len(rows) == 2
    for row in rows:
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            row["schema_name"],
        )
        assert tables >= 6
