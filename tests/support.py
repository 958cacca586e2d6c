"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(dsn: str, name: str) -> str:
    """The same server's DSN, naming another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(body: Any) -> str:
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str)
    assert error["message"]
    return str(error["code"])


async def wait_for_blocked(holder: asyncpg.Connection, count: int) -> list[int]:
    """The backends blocked by `holder`, once there are `count` of them."""
    for _ in range(600):
        # Activity is read once per transaction unless the snapshot is cleared.
        await holder.execute("SELECT pg_stat_clear_snapshot()")
        pids = await holder.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE $1::int = ANY(pg_blocking_pids(pid))",
            holder.get_server_pid(),
        )
        if len(pids) >= count:
            return [p["pid"] for p in pids]
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} blocked backend(s)")
