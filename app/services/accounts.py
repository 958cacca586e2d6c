"""Organizations, users and tokens: the steps and transactions behind the CLI."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import phonenumbers

from app import migrations
from app.auth import Role, display_prefix, generate_token, hash_token
from app.db import Moment
from app.errors import Conflict, NotFoundInCli, ValidationFailed
from app.repository import core as repo
from app.sql import sql

DEFAULT_ORG = "default"
DEFAULT_ADMIN_EMAIL = "admin@example.com"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: UUID
    token: str
    prefix: str
    user_email: str
    org_name: str
    expires_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "token": self.token,
            "prefix": self.prefix,
            "user": self.user_email,
            "organization": self.org_name,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


_MAX_LIFETIME = timedelta(days=36_525)


def parse_duration(text: str) -> timedelta:
    """'90d', '12h', '30m', '2w' or '45s' as a timedelta."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValidationFailed(
            f"invalid duration {text!r}: use a positive number and one of s, m, h, d, w"
        )
    try:
        lifetime = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        lifetime = _MAX_LIFETIME + timedelta(1)
    if lifetime > _MAX_LIFETIME:
        raise ValidationFailed(
            f"invalid duration {text!r}: a token lives at most 100 years "
            "(leave --expires-in out for one that never expires)"
        )
    return lifetime


def schema_name_for(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40] or "org"
    return f"org_{slug}_{uuid.uuid4().hex[:8]}"


def check_region(region: str) -> str:
    region = region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed(f"unknown phone region {region!r}: use an ISO 3166 code")
    return region


async def create_organization(
    conn: asyncpg.Connection,
    name: str,
    phone_region: str = "US",
    migrations_root: Path = migrations.MIGRATIONS_DIR,
) -> asyncpg.Record:
    """Creates the organization and its schema at the latest version, all or nothing."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("an organization name is 1 to 200 characters")
    region = check_region(phone_region)
    org_migrations = migrations.load_set("org", migrations_root)
    # The migration lock keeps a concurrent `migrate` from seeing a half-made schema.
    await conn.execute(sql("lock_migrations"))
    try:
        async with conn.transaction():
            if await repo.get_organization_by_name(conn, name) is not None:
                raise Conflict(f"organization {name!r} already exists")
            org = await repo.insert_organization(
                conn, name, schema_name_for(name), region
            )
            await repo.create_org_schema(conn, org["schema_name"])
            for migration in org_migrations:
                await migrations.apply_org_migration(
                    conn, org["id"], org["schema_name"], migration
                )
            await conn.execute("RESET search_path")
        return org
    finally:
        await conn.execute(sql("unlock_migrations"))


async def create_user(
    conn: asyncpg.Connection, org_name: str, email: str, role: Role
) -> asyncpg.Record:
    email = email.strip()
    if email.count("@") != 1 or email.startswith("@") or email.endswith("@"):
        raise ValidationFailed(f"invalid email {email!r}")
    if role not in ("admin", "member"):
        raise ValidationFailed("role must be admin or member")
    org = await repo.get_organization_by_name(conn, org_name)
    if org is None:
        raise NotFoundInCli(f"no organization named {org_name!r}")
    try:
        return await repo.insert_user(conn, org["id"], email, role)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a user with email {email!r} already exists") from exc


async def create_token(
    conn: asyncpg.Connection, email: str, expires_in: timedelta | None = None
) -> IssuedToken:
    user = await repo.get_user_by_email(conn, email)
    if user is None:
        raise NotFoundInCli(f"no user with email {email!r}")
    token = generate_token()
    expires_at = datetime.now(UTC) + expires_in if expires_in else None
    row = await repo.insert_token(
        conn, user["id"], hash_token(token), display_prefix(token), expires_at
    )
    return IssuedToken(
        row["id"], token, row["prefix"], user["email"], user["org_name"], expires_at
    )


async def list_tokens(
    conn: asyncpg.Connection, org_name: str | None = None
) -> list[dict[str, Any]]:
    return [
        {
            "id": str(row["id"]),
            "prefix": row["prefix"],
            "user": row["email"],
            "role": row["role"],
            "organization": row["org_name"],
            "created_at": _moment(row["created_at"]),
            "expires_at": _moment(row["expires_at"]),
            "revoked_at": _moment(row["revoked_at"]),
        }
        for row in await repo.list_tokens(conn, org_name)
    ]


async def revoke_token(conn: asyncpg.Connection, token_id: str) -> dict[str, Any]:
    try:
        parsed = UUID(token_id)
    except ValueError as exc:
        raise ValidationFailed(f"invalid token id {token_id!r}") from exc
    row = await repo.revoke_token(conn, parsed)
    if row is None:
        raise NotFoundInCli(f"no token with id {token_id}")
    return {"id": str(row["id"]), "revoked_at": _moment(row["revoked_at"])}


async def set_user_active(
    conn: asyncpg.Connection, email: str, active: bool
) -> dict[str, Any]:
    user = await repo.get_user_by_email(conn, email)
    if user is None:
        raise NotFoundInCli(f"no user with email {email!r}")
    row = await repo.set_user_active(conn, user["id"], active)
    assert row is not None
    return {"id": str(row["id"]), "email": row["email"], "is_active": row["is_active"]}


async def bootstrap(conn: asyncpg.Connection) -> IssuedToken | None:
    """On an empty installation: a default organization, an admin and one token.

    Returns the token to print, or None when organizations already exist. Runs under
    the migration lock, so two processes starting at once bootstrap once.
    """
    await conn.execute(sql("lock_migrations"))
    try:
        if await repo.count_organizations(conn) > 0:
            return None
    finally:
        await conn.execute(sql("unlock_migrations"))
    # The lock is re-taken inside; a rival that won in between makes this a Conflict.
    try:
        await create_organization(conn, DEFAULT_ORG)
    except Conflict:
        return None
    await create_user(conn, DEFAULT_ORG, DEFAULT_ADMIN_EMAIL, "admin")
    return await create_token(conn, DEFAULT_ADMIN_EMAIL)


def _moment(value: Moment | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()
