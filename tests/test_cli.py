"""The `dupes` command: organizations, users and tokens, and the first start."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import aiohttp
import asyncpg

from app.auth import hash_token
from app.db import embedded_running, start_embedded, stop_embedded
from tests.conftest import World
from tests.processes import dupes_env, free_port, run_cli, serving
from tests.support import bearer


async def test_org_user_token_lifecycle_as_json(db_dsn: str) -> None:
    env = dupes_env(DATABASE_URL=db_dsn)
    code, out, err = await run_cli(
        "org", "create", "Initech", "--phone-region", "gb", "--json", env=env
    )
    assert code == 0, err
    org = json.loads(out)
    assert org["name"] == "Initech"
    assert org["phone_region"] == "GB"

    code, out, err = await run_cli(
        "user",
        "create",
        "--org",
        "Initech",
        "--email",
        "boss@initech.test",
        "--role",
        "admin",
        "--json",
        env=env,
    )
    assert code == 0, err
    assert json.loads(out)["role"] == "admin"

    code, out, err = await run_cli(
        "token",
        "create",
        "--user",
        "boss@initech.test",
        "--expires-in",
        "30d",
        "--json",
        env=env,
    )
    assert code == 0, err
    issued = json.loads(out)
    assert re.fullmatch(r"ksr_[A-Za-z0-9]{40}", issued["token"])
    assert issued["id"]

    code, out, err = await run_cli("token", "list", "--json", env=env)
    assert code == 0, err
    listed = {t["id"]: t for t in json.loads(out)}
    assert listed[issued["id"]]["revoked_at"] is None
    assert issued["token"] not in out

    code, out, err = await run_cli("token", "revoke", issued["id"], "--json", env=env)
    assert code == 0, err
    code, out, err = await run_cli(
        "token", "list", "--org", "Initech", "--json", env=env
    )
    assert [t["revoked_at"] is not None for t in json.loads(out)] == [True]

    code, out, err = await run_cli("token", "list", "--org", "Initech", env=env)
    assert code == 0, err
    header, line = out.splitlines()
    assert header.split("\t") == [
        "id",
        "token",
        "user",
        "role",
        "organization",
        "state",
        "expires",
    ]
    fields = line.split("\t")
    assert fields[0] == issued["id"]
    assert fields[2:6] == ["boss@initech.test", "admin", "Initech", "revoked"]
    assert issued["token"] not in out


async def test_cli_errors_are_clear_and_exit_nonzero(db_dsn: str) -> None:
    env = dupes_env(DATABASE_URL=db_dsn)
    cases = [
        (
            ("user", "create", "--org", "nope", "--email", "a@b.c", "--role", "admin"),
            "no organization",
        ),
        (("token", "create", "--user", "ghost@nowhere.test"), "no user"),
        (("token", "revoke", "not-a-uuid"), "invalid token id"),
        (("org", "create", "acme"), "already exists"),
        (("org", "create", "x", "--phone-region", "ZZ"), "unknown phone region"),
        (("token", "create", "--user", "x@y.z", "--expires-in", "soon"), "duration"),
        (
            ("token", "create", "--user", "x@y.z", "--expires-in", "9999999d"),
            "at most 100 years",
        ),
        (
            ("token", "create", "--user", "x@y.z", "--expires-in", "99999999999d"),
            "at most 100 years",
        ),
    ]
    for args, message in cases:
        code, out, err = await run_cli(*args, env=env)
        assert code == 1, (args, out, err)
        assert message in err, (args, err)


async def test_revocation_reaches_another_process_within_a_second(
    db_dsn: str, world: World, conn: asyncpg.Connection
) -> None:
    port = free_port()
    env = dupes_env(DATABASE_URL=db_dsn, DUPES_BOOTSTRAP="false")
    token = world.acme.member_token
    token_id = await conn.fetchval(
        "SELECT id FROM dupes_core.api_tokens WHERE token_hash = $1", hash_token(token)
    )
    url = f"http://127.0.0.1:{port}/api/v1/me"
    async with serving(env=env, port=port), aiohttp.ClientSession() as session:
        for _ in range(3):  # the token is now cached in the server process
            async with session.get(url, headers=bearer(token)) as response:
                assert response.status == 200
        code, _, err = await run_cli("token", "revoke", str(token_id), env=env)
        assert code == 0, err
        revoked_at = time.monotonic()
        while True:
            async with session.get(url, headers=bearer(token)) as response:
                if response.status == 401:
                    break
            assert time.monotonic() - revoked_at < 1.0, "revocation took over 1 s"
            await asyncio.sleep(0.02)


async def test_first_start_serves_on_embedded_postgres_with_a_working_curl_line(
    tmp_path: Path,
) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    env = dupes_env()
    async with serving("--data-dir", str(data_dir), env=env, port=port) as process:
        assert process.stdout is not None
        banner = ""
        while "curl" not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), 10)
            assert line, "the server printed no curl line"
            banner += line.decode()
        command = next(line for line in banner.splitlines() if "curl" in line)
        token = re.search(r"Bearer (ksr_[A-Za-z0-9]+)", command)
        url = re.search(r"(http://\S+/api/v1/me)", command)
        assert token is not None
        assert url is not None
        async with (
            aiohttp.ClientSession() as session,
            session.get(url.group(1), headers=bearer(token.group(1))) as response,
        ):
            assert response.status == 200
            assert (await response.json())["role"] == "admin"
    assert (data_dir / "pgdata" / "PG_VERSION").exists()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


async def test_shared_options_work_before_or_after_the_subcommand(
    db_dsn: str,
) -> None:
    env = dupes_env(DATABASE_URL=db_dsn)
    before = await run_cli("--json", "org", "list", env=env)
    after = await run_cli("org", "list", "--json", env=env)
    assert before[0] == after[0] == 0, (before, after)
    assert json.loads(before[1]) == json.loads(after[1])
    assert {org["name"] for org in json.loads(before[1])} == {"acme", "globex"}


async def test_a_command_stops_the_embedded_postgres_it_started_and_no_other(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = dupes_env()

    code, out, err = await run_cli(
        "org", "create", "solo", "--data-dir", str(data_dir), "--json", env=env
    )
    assert code == 0, err
    assert json.loads(out)["name"] == "solo"
    assert f"no database in {data_dir.resolve()} yet" in err
    assert not embedded_running(data_dir)

    # Stopped, not new: it is started again without a word.
    code, out, err = await run_cli(
        "org", "list", "--data-dir", str(data_dir), "--json", env=env
    )
    assert code == 0, err
    assert "no database" not in err
    assert not embedded_running(data_dir)

    # Running already, as under `dupes serve`: the command leaves it running.
    await asyncio.to_thread(start_embedded, data_dir)
    try:
        code, out, err = await run_cli(
            "org", "list", "--data-dir", str(data_dir), "--json", env=env
        )
        assert code == 0, err
        assert {org["name"] for org in json.loads(out)} == {"solo"}
        assert embedded_running(data_dir)
    finally:
        await asyncio.to_thread(stop_embedded, data_dir)
