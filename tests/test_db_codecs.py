"""The date codec reads and writes every date PostgreSQL holds, from 4713 BC to the
year 5874897 and the two infinities, exactly as PostgreSQL writes them."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db import SERVER_SETTINGS, _init_connection

# PostgreSQL's date range, as days since 2000-01-01.
FIRST_DAY = -2_451_545  # 4714-11-24 BC
LAST_DAY = 2_145_031_948  # 5874897-12-31

EDGES = [
    "infinity",
    "-infinity",
    "4714-11-24 BC",
    "0001-12-31 BC",
    "0001-01-01",
    "1999-12-31",
    "2000-01-01",
    "9999-12-31",
    "10000-01-01",
    "5874897-12-31",
]


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, server_settings=SERVER_SETTINGS)
    await _init_connection(conn)
    return conn


async def test_edge_dates_read_and_write_as_postgresql_writes_them(
    db_dsn: str,
) -> None:
    conn = await _connect(db_dsn)
    try:
        for text in EDGES:
            read = await conn.fetchval("SELECT $1::text::date", text)
            assert (read.isoformat() if isinstance(read, date) else read) == text
            # Written back as a parameter, the value is the same date.
            assert await conn.fetchval("SELECT $1::date::text", read) == text
    finally:
        await conn.close()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(days=st.integers(min_value=FIRST_DAY, max_value=LAST_DAY))
async def test_every_date_round_trips(db_dsn: str, days: int) -> None:
    conn = await _connect(db_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT d::text, d FROM (SELECT DATE '2000-01-01' + $1::integer AS d) AS x",
            days,
        )
        assert row is not None
        text, read = row
        shown: Any = read.isoformat() if isinstance(read, date) else read
        assert shown == text
        assert await conn.fetchval("SELECT $1::date - DATE '2000-01-01'", read) == days
    finally:
        await conn.close()


async def test_copy_writes_dates(db_dsn: str) -> None:
    conn = await _connect(db_dsn)
    try:
        await conn.execute("CREATE TEMPORARY TABLE moments (d date)")
        values = [date(2026, 1, 31), "infinity", "0044-03-15 BC", None]
        await conn.copy_records_to_table("moments", records=[(v,) for v in values])
        rows = await conn.fetch("SELECT d::text FROM moments")
        assert [row[0] for row in rows] == [
            "2026-01-31",
            "infinity",
            "0044-03-15 BC",
            None,
        ]
    finally:
        await conn.close()
