"""The load test refuses any target that is not on loopback, before touching it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "loadtest.py"


async def run_script(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, err.decode()


@pytest.mark.parametrize(
    "host", ["10.1.2.3", "192.0.2.10", "example.com", "2001:db8::1"]
)
async def test_load_test_refuses_a_host_off_loopback(host: str) -> None:
    code, err = await run_script("--host", host)

    assert code == 2
    assert "loopback" in err


async def test_load_test_refuses_a_database_server_off_loopback() -> None:
    code, err = await run_script(
        "--server-dsn", "postgresql://postgres@192.0.2.10:5432/postgres"
    )

    assert code == 2
    assert "loopback" in err


async def test_load_test_refuses_unbounded_runs() -> None:
    code, err = await run_script("--duration", "100000")

    assert code == 2
    assert "3600" in err
