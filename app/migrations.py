"""Numbered, append-only SQL migrations, in two sets.

``migrations/core`` builds the shared schema (organizations, users, tokens, object
metadata). ``migrations/org`` builds the tables inside one organization's schema; every
organization runs them, and a new one is created at the latest version.

Each file is applied in its own transaction and recorded with its SHA-256. Runs hold a
PostgreSQL advisory lock, so two processes starting at once apply each file once. A file
changed after it was applied is refused: migrations are append-only.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg

from app.sql import quote_ident, sql

log = logging.getLogger("dupes.migrations")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
CORE_SCOPE = "core"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    """A migration set cannot be applied as it stands."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def load_set(kind: str, root: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations of one set, in order. Names and numbering are checked here."""
    migrations: list[Migration] = []
    for path in sorted((root / kind).iterdir()):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"{kind}/{path.name}: migration files are named NNNN_words.sql"
            )
        migrations.append(
            Migration(int(match.group(1)), path.name, path.read_text(encoding="utf-8"))
        )
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise MigrationError(f"{kind} migrations must be numbered 1..n without gaps")
    return migrations


async def _pending(
    conn: asyncpg.Connection, scope: str, migrations: list[Migration]
) -> list[Migration]:
    """Checks the applied ones against their files; returns those still to apply."""
    applied = {
        row["version"]: row
        for row in await conn.fetch(sql("applied_migrations"), scope)
    }
    for migration in migrations:
        row = applied.get(migration.version)
        if row is not None and row["checksum"] != migration.checksum:
            raise MigrationError(
                f"migration {row['name']} ({scope}) was changed after it was applied: "
                "applied migrations are append-only; add a new file instead"
            )
    unknown = sorted(set(applied) - {m.version for m in migrations})
    if unknown:
        raise MigrationError(
            f"the database ({scope}) has migrations {unknown} that this code does not "
            "know: it is older than the database"
        )
    return [m for m in migrations if m.version not in applied]


async def _apply_core(conn: asyncpg.Connection, migration: Migration) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL search_path TO dupes_core")
        await conn.execute(migration.text)
        await conn.execute(
            sql("record_migration"),
            CORE_SCOPE,
            migration.version,
            migration.name,
            migration.checksum,
        )
    log.info("applied core migration %s", migration.name)


async def apply_org_migration(
    conn: asyncpg.Connection, org_id: UUID, schema: str, migration: Migration
) -> None:
    """Applies one organization migration inside the caller's transaction."""
    await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}, dupes_core")
    await conn.execute("SELECT set_config('dupes.org_id', $1::text, true)", str(org_id))
    await conn.execute(migration.text)
    await conn.execute(
        sql("record_migration"),
        schema,
        migration.version,
        migration.name,
        migration.checksum,
    )


async def _migrate_org(
    conn: asyncpg.Connection, org_id: UUID, schema: str, migrations: list[Migration]
) -> int:
    applied = 0
    for migration in await _pending(conn, schema, migrations):
        async with conn.transaction():
            await apply_org_migration(conn, org_id, schema, migration)
        log.info("applied organization migration %s to %s", migration.name, schema)
        applied += 1
    return applied


async def migrate(conn: asyncpg.Connection, root: Path = MIGRATIONS_DIR) -> int:
    """Brings the core schema and every organization to the latest version.

    Returns the number of files applied. Safe to call from many processes at once.
    """
    core = load_set("core", root)
    org = load_set("org", root)
    await conn.execute(sql("lock_migrations"))
    try:
        await conn.execute(sql("create_core_schema"))
        await conn.execute(sql("migrations_table"))
        applied = 0
        for migration in await _pending(conn, CORE_SCOPE, core):
            await _apply_core(conn, migration)
            applied += 1
        for row in await conn.fetch(sql("list_org_schemas")):
            applied += await _migrate_org(conn, row["id"], row["schema_name"], org)
        return applied
    finally:
        await conn.execute(sql("unlock_migrations"))
