"""The `dupes` command: serve, migrate, and manage organizations, users and tokens.

Every subcommand reaches the same database as the server: ``DATABASE_URL`` when set,
otherwise the embedded PostgreSQL in ``--data-dir``. ``--json`` prints one JSON
document for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from app import migrations
from app.db import embedded_exists, embedded_running, open_connection, stop_embedded
from app.errors import AppError, NotFoundInCli
from app.logs import configure as configure_logging
from app.services import accounts
from app.settings import Settings

log = logging.getLogger("dupes.cli")

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    conn = await open_connection(settings, migrate=False)
    try:
        applied = await migrations.migrate(conn)
    finally:
        await conn.close()
    _print(args, {"applied": applied}, f"applied {applied} migration(s)")
    return 0


async def cmd_org_create(args: argparse.Namespace, settings: Settings) -> int:
    conn = await open_connection(settings)
    try:
        org = await accounts.create_organization(conn, args.name, args.phone_region)
    finally:
        await conn.close()
    data = {
        "id": str(org["id"]),
        "name": org["name"],
        "schema": org["schema_name"],
        "phone_region": org["phone_region"],
    }
    _print(
        args, data, f"created organization {org['name']} (schema {org['schema_name']})"
    )
    return 0


async def cmd_org_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.repository import core

    conn = await open_connection(settings)
    try:
        rows = await core.list_organizations(conn)
    finally:
        await conn.close()
    data = [
        {
            "id": str(r["id"]),
            "name": r["name"],
            "schema": r["schema_name"],
            "phone_region": r["phone_region"],
        }
        for r in rows
    ]
    text = "\n".join(f"{d['name']}\t{d['schema']}\t{d['phone_region']}" for d in data)
    _print(args, data, text or "no organizations")
    return 0


async def cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    conn = await open_connection(settings)
    try:
        user = await accounts.create_user(conn, args.org, args.email, args.role)
    finally:
        await conn.close()
    data = {"id": str(user["id"]), "email": user["email"], "role": user["role"]}
    _print(args, data, f"created {user['role']} {user['email']}")
    return 0


async def cmd_user_active(args: argparse.Namespace, settings: Settings) -> int:
    conn = await open_connection(settings)
    try:
        data = await accounts.set_user_active(conn, args.email, args.active)
    finally:
        await conn.close()
    state = "active" if data["is_active"] else "inactive"
    _print(args, data, f"{data['email']} is {state}")
    return 0


async def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    expires = accounts.parse_duration(args.expires_in) if args.expires_in else None
    conn = await open_connection(settings)
    try:
        issued = await accounts.create_token(conn, args.user, expires)
    finally:
        await conn.close()
    text = f"{issued.token}\n(token id {issued.id}; shown once, store it now)"
    _print(args, issued.as_json(), text)
    return 0


async def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    conn = await open_connection(settings)
    try:
        tokens = await accounts.list_tokens(conn, args.org)
    finally:
        await conn.close()
    rows = [
        (
            t["id"],
            f"{t['prefix']}…",
            t["user"],
            t["role"],
            t["organization"],
            "revoked" if t["revoked_at"] else "active",
            t["expires_at"] or "never",
        )
        for t in tokens
    ]
    header = ("id", "token", "user", "role", "organization", "state", "expires")
    text = "\n".join("\t".join(row) for row in [header, *rows]) if rows else ""
    _print(args, tokens, text or "no tokens")
    return 0


async def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    conn = await open_connection(settings)
    try:
        data = await accounts.revoke_token(conn, args.id)
    finally:
        await conn.close()
    _print(args, data, f"revoked token {data['id']}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from app.server import serve

    return serve(settings, workers=args.workers)


def _add_shared_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: an option given before the subcommand is not reset by the
    # subcommand's own default, so `dupes --json org list` and
    # `dupes org list --json` mean the same.
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="folder of the embedded PostgreSQL (default .dupes; ignored with "
        "DATABASE_URL)",
    )
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON"
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _add_shared_options(common)

    parser = argparse.ArgumentParser(
        prog="dupes", description="Find and merge duplicate CRM records."
    )
    _add_shared_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the HTTP service")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    serve.set_defaults(sync_func=cmd_serve)

    migrate = sub.add_parser("migrate", parents=[common], help="apply migrations")
    migrate.set_defaults(func=cmd_migrate)

    org = sub.add_parser("org", help="organizations").add_subparsers(
        dest="org_command", required=True
    )
    org_create = org.add_parser("create", parents=[common], help="create one")
    org_create.add_argument("name")
    org_create.add_argument(
        "--phone-region", default="US", help="ISO 3166 code for local phone numbers"
    )
    org_create.set_defaults(func=cmd_org_create)
    org.add_parser("list", parents=[common], help="list them").set_defaults(
        func=cmd_org_list
    )

    user = sub.add_parser("user", help="users").add_subparsers(
        dest="user_command", required=True
    )
    user_create = user.add_parser("create", parents=[common], help="create one")
    user_create.add_argument("--org", required=True)
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--role", choices=["admin", "member"], required=True)
    user_create.set_defaults(func=cmd_user_create)
    for name, active in (("activate", True), ("deactivate", False)):
        toggle = user.add_parser(name, parents=[common], help=f"{name} a user")
        toggle.add_argument("--email", required=True)
        toggle.set_defaults(func=cmd_user_active, active=active)

    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True
    )
    token_create = token.add_parser("create", parents=[common], help="issue one")
    token_create.add_argument("--user", required=True, help="the user's email")
    token_create.add_argument(
        "--expires-in", help="lifetime such as 30d, 12h, 15m (default: never)"
    )
    token_create.set_defaults(func=cmd_token_create)
    token_list = token.add_parser("list", parents=[common], help="list tokens")
    token_list.add_argument("--org", help="only this organization's")
    token_list.set_defaults(func=cmd_token_list)
    token_revoke = token.add_parser("revoke", parents=[common], help="revoke one")
    token_revoke.add_argument("id")
    token_revoke.set_defaults(func=cmd_token_revoke)

    _add_feature_commands(sub, common)
    return parser


def _add_feature_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Commands of the feature modules (import, demo), each registering itself."""
    from app import cli_import, commands, demo  # noqa: F401  (importing registers)

    for register in commands.REGISTRY:
        register(sub, common)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    args.data_dir = getattr(args, "data_dir", None)
    settings = settings_from(args)
    configure_logging(settings.log_level if args.command == "serve" else "WARNING")
    try:
        if hasattr(args, "sync_func"):
            code: int = args.sync_func(args, settings)
            return code
        func: Command = args.func
        # A command that had to start the embedded PostgreSQL stops it again when it
        # is done; one already running (a `dupes serve`, say) is left as it was.
        starts_embedded = settings.database_url is None and not embedded_running(
            settings.data_dir
        )
        if starts_embedded and not embedded_exists(settings.data_dir):
            # Most likely run from another folder than the server's: say so, since
            # the answers will come from a new, empty database.
            print(
                f"dupes: no database in {settings.data_dir.resolve()} yet; "
                "creating a new embedded PostgreSQL there (--data-dir or "
                "DATABASE_URL name another)",
                file=sys.stderr,
            )
        try:
            return asyncio.run(func(args, settings))
        finally:
            if starts_embedded and embedded_running(settings.data_dir):
                stop_embedded(settings.data_dir)
    except (AppError, NotFoundInCli, migrations.MigrationError) as exc:
        message = exc.message if isinstance(exc, AppError) else str(exc)
        if args.json:
            print(json.dumps({"error": message}), file=sys.stderr)
        else:
            print(f"dupes: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
