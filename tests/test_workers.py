"""`dupes serve --workers N`: several processes on one port, one migration run, and a
clean stop that lets in-flight requests finish."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from app import migrations
from tests.processes import dupes_env, exchange, free_port, run_cli
from tests.support import bearer, with_database

WORKER_HEADER = "X-Worker-PID"


@pytest.fixture
async def empty_dsn(server_dsn: str) -> AsyncIterator[str]:
    """A database with nothing in it, as on a first deployment."""
    name = f"dupes_w_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(server_dsn, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def start_serve(
    workers: int, port: int, env: dict[str, str], stderr_path: Path
) -> tuple[asyncio.subprocess.Process, str]:
    """Starts `dupes serve`; returns the process and what it printed until ready."""
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "serve",
            "--workers",
            str(workers),
            "--port",
            str(port),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    printed = ""
    while "listening" not in printed:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line, "serve ended before it listened; see its log"
        printed += line.decode()
    return process, printed


async def answering_pids(base: str, wanted: int, attempts: int = 200) -> set[int]:
    """The worker pids seen over fresh connections, until `wanted` distinct ones."""
    pids: set[int] = set()
    for _ in range(attempts):
        # A new connection each time: the kernel picks a worker per connection.
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(f"{base}/healthz") as response,
        ):
            assert response.status == 200
            pids.add(int(response.headers[WORKER_HEADER]))
        if len(pids) >= wanted:
            break
    return pids


async def pool_owners(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT application_name FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE 'dupes-%'"
    )
    return {row["application_name"] for row in rows}


async def wait_for_lock_waiter(conn: asyncpg.Connection, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("no request started waiting on the lock")


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


async def test_two_workers_answer_on_one_port_after_one_migration_and_stop_cleanly(
    empty_dsn: str, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stderr_path = tmp_path / "serve.log"
    env = dupes_env(DATABASE_URL=empty_dsn, DUPES_LOG_LEVEL="INFO")
    process, printed = await start_serve(2, port, env, stderr_path)
    conn = await asyncpg.connect(empty_dsn)
    locker = await asyncpg.connect(empty_dsn)
    try:
        token_match = re.search(r"(ksr_[A-Za-z0-9]{32,})", printed)
        assert token_match is not None, printed
        token = token_match.group(1)

        # Both processes answer, each with its own pool, and neither is the parent.
        workers = await answering_pids(base, 2)
        assert len(workers) == 2
        assert process.pid not in workers
        assert {f"dupes-{pid}" for pid in workers} <= await pool_owners(conn)

        # Migrations and the first-start bootstrap ran once, in the parent.
        core = migrations.load_set("core")
        org = migrations.load_set("org")
        assert await conn.fetchval(
            "SELECT count(*) FROM dupes_core.schema_migrations WHERE scope = 'core'"
        ) == len(core)
        assert await conn.fetchval(
            "SELECT count(*) FROM dupes_core.schema_migrations WHERE scope <> 'core'"
        ) == len(org)
        assert await conn.fetchval("SELECT count(*) FROM dupes_core.organizations") == 1
        assert printed.count("First start") == 1

        # Requests the HTTP parser refuses are answered in the JSON error shape too.
        status, _, body = await exchange(port, b"GARBAGE / HTTP/1.1\r\n\r\n")
        assert (status, body["error"]["code"]) == (400, "VALIDATION_ERROR")

        # A request is held in flight by a lock on the token table, then SIGTERM.
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute(
            "LOCK TABLE dupes_core.api_tokens IN ACCESS EXCLUSIVE MODE"
        )
        async with aiohttp.ClientSession() as session:
            in_flight = asyncio.create_task(
                session.get(f"{base}/api/v1/me", headers=bearer(token))
            )
            await wait_for_lock_waiter(conn)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            assert process.returncode is None, "serve stopped before its request"
            await transaction.rollback()
            response = await asyncio.wait_for(in_flight, 30)
            assert response.status == 200
            assert (await response.json())["email"] == "admin@example.com"
            response.release()

        assert await asyncio.wait_for(process.wait(), 60) == 0
        assert await pool_owners(conn) == set()
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), 1),
        ):
            pass
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await locker.close()
        await conn.close()

    lines = json_lines(stderr_path)
    applied = [line for line in lines if line["msg"].startswith("applied core")]
    assert len(applied) == len(core)
    assert {line["pid"] for line in applied} == {process.pid}
    stopped = {line["pid"] for line in lines if line["msg"] == "worker stopped"}
    assert stopped == workers
    assert [line for line in lines if line["level"] == "error"] == []


async def test_a_worker_that_dies_is_replaced(db_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dupes_env(DATABASE_URL=db_dsn, DUPES_BOOTSTRAP="false")
    process, _ = await start_serve(2, port, env, tmp_path / "serve.log")
    try:
        first = await answering_pids(base, 2)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        seen: set[int] = set()
        while time.monotonic() < deadline and not (seen - first):
            seen |= await answering_pids(base, 3, attempts=20)
        assert seen - first, "no replacement worker answered"
        assert victim not in await answering_pids(base, 2)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0


async def test_serve_refuses_a_port_that_is_taken(db_dsn: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dupes_env(DATABASE_URL=db_dsn, DUPES_BOOTSTRAP="false")
        code, _, err = await run_cli(
            "serve", "--workers", "2", "--port", str(port), env=env
        )
    assert code == 1
    assert "already in use" in err


async def test_serve_refuses_zero_workers(db_dsn: str) -> None:
    env = dupes_env(DATABASE_URL=db_dsn, DUPES_BOOTSTRAP="false")
    code, _, err = await run_cli("serve", "--workers", "0", env=env)
    assert code == 2
    assert "at least 1" in err


async def test_workers_stop_when_the_supervisor_is_killed(
    db_dsn: str, tmp_path: Path
) -> None:
    port = free_port()
    env = dupes_env(DATABASE_URL=db_dsn, DUPES_BOOTSTRAP="false")
    process, _ = await start_serve(2, port, env, tmp_path / "serve.log")
    workers = await answering_pids(f"http://127.0.0.1:{port}", 2)

    process.kill()
    await process.wait()

    deadline = time.monotonic() + 20
    alive = set(workers)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
        await asyncio.sleep(0.2)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "workers outlived their supervisor"
