"""Running the service: database, migrations, first-start bootstrap, then HTTP."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiohttp import web

from app import migrations
from app.db import resolve_dsn, stop_embedded
from app.services import accounts
from app.services.accounts import IssuedToken
from app.settings import Settings
from app.web.app import create_app

log = logging.getLogger("dupes.server")


async def prepare_database(dsn: str, settings: Settings) -> IssuedToken | None:
    """Applies migrations and, on an empty installation, creates the first admin."""
    conn = await asyncpg.connect(dsn)
    try:
        applied = await migrations.migrate(conn)
        if applied:
            log.info("migrations applied", extra={"count": applied})
        return await accounts.bootstrap(conn) if settings.bootstrap else None
    finally:
        await conn.close()


def first_start_banner(issued: IssuedToken, settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    return "\n".join(
        [
            "",
            "First start: created organization "
            f"'{issued.org_name}' and admin {issued.user_email}.",
            "Admin API token (shown once, store it now):",
            "",
            f"    {issued.token}",
            "",
            "Try it:",
            "",
            f"    curl -H 'Authorization: Bearer {issued.token}' {base}/api/v1/me",
            "",
        ]
    )


def _embedded_running(settings: Settings) -> bool:
    return (
        settings.data_dir.expanduser().resolve() / "pgdata" / "postmaster.pid"
    ).exists()


def serve(settings: Settings, workers: int = 1) -> int:
    started_embedded = settings.database_url is None and not _embedded_running(settings)
    dsn = resolve_dsn(settings)
    try:
        issued = asyncio.run(prepare_database(dsn, settings))
        if issued is not None:
            print(first_start_banner(issued, settings), flush=True)
        print(f"dupes listening on http://{settings.host}:{settings.port}", flush=True)
        web.run_app(
            create_app(settings, dsn),
            host=settings.host,
            port=settings.port,
            access_log=None,
            print=None,
            shutdown_timeout=30,
        )
    finally:
        if started_embedded:
            stop_embedded(settings.data_dir)
    return 0
