"""API tokens: how they look, how they are checked, and how checks are cached.

A token is ``ksr_`` and 40 characters of ``[A-Za-z0-9]``. Only its SHA-256 is stored.
Validated tokens are cached in the process for a short time so that a busy client does
not cost a database round trip per request. Any change to a token or a user (revoke,
deactivate) is announced by PostgreSQL ``NOTIFY`` and drops the cached entry in every
process at once; while the listening connection is down the cache is bypassed, so a
missed notification can never keep a revoked token alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import asyncpg

from app.db import CONNECTION_ERRORS, Database, Moment
from app.errors import PermissionDenied, Unauthorized
from app.sql import sql

log = logging.getLogger("dupes.auth")

TOKEN_PREFIX = "ksr_"  # noqa: S105 - a format marker, not a secret
TOKEN_BODY_LENGTH = 40
TOKEN_PATTERN = re.compile(r"^ksr_[A-Za-z0-9]{32,200}$")
AUTH_CHANNEL = "dupes_auth"
_ALPHABET = string.ascii_letters + string.digits
# Unknown tokens are remembered briefly, so a flood of bad ones cannot hammer the
# database either; a real token is random and never known before it is created.
_NEGATIVE_TTL = 2.0
_CACHE_LIMIT = 100_000

Role = Literal["admin", "member"]
_PING_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    asyncpg.PostgresError,
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's user, role and organization."""

    token_id: UUID
    user_id: UUID
    email: str
    role: Role
    org_id: UUID
    org_name: str
    schema: str
    phone_region: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def generate_token() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_BODY_LENGTH))
    return TOKEN_PREFIX + body


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def display_prefix(token: str) -> str:
    """The part of a token that may be shown in lists to recognise it."""
    return token[: len(TOKEN_PREFIX) + 6]


def parse_authorization(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or 401 with the reason."""
    if header is None or not header.strip():
        raise Unauthorized("missing Authorization header; use 'Bearer ksr_...'")
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("the Authorization scheme must be Bearer")
    token = credentials.strip()
    if not TOKEN_PATTERN.match(token):
        raise Unauthorized("malformed API token")
    return token


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDenied("this action requires an admin token")


def _expired(expires_at: Moment | None) -> bool:
    if expires_at is None:
        return False
    if isinstance(expires_at, str):
        # PostgreSQL's text for a moment Python cannot hold: 'infinity' and years
        # past 9999 lie ahead; '-infinity' and dates before Christ have passed.
        return expires_at.startswith("-") or expires_at.endswith("BC")
    return expires_at <= datetime.now(UTC)


@dataclass(slots=True)
class _Entry:
    principal: Principal | None
    expires_at: Moment | None
    cached_until: float


class TokenAuthenticator:
    """Checks tokens against the stored hashes, with a cache kept honest by NOTIFY."""

    def __init__(self, db: Database, dsn: str, ttl: float) -> None:
        self._db = db
        self._dsn = dsn
        self._ttl = ttl
        self._cache: dict[bytes, _Entry] = {}
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # Bumped by every notification: a lookup that raced with a change is not cached.
        self._generation = 0

    @property
    def listening(self) -> bool:
        return self._listening

    async def start(self) -> None:
        if self._ttl > 0:
            self._task = asyncio.create_task(self._listen_forever(), name="auth-listen")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def authenticate(self, header: str | None) -> Principal:
        token = parse_authorization(header)
        digest = hash_token(token)
        now = time.monotonic()
        entry = self._cache.get(digest) if self._listening else None
        if entry is None or entry.cached_until < now:
            entry = await self._load(digest, now)
        if entry.principal is None:
            raise Unauthorized("unknown, revoked or inactive API token")
        if _expired(entry.expires_at):
            raise Unauthorized("the API token has expired")
        return entry.principal

    async def _load(self, digest: bytes, now: float) -> _Entry:
        generation = self._generation
        async with self._db.connection() as conn:
            row = await conn.fetchrow(sql("find_principal"), digest)
        if row is None or row["revoked_at"] is not None or not row["is_active"]:
            entry = _Entry(None, None, now + _NEGATIVE_TTL)
        else:
            principal = Principal(
                token_id=row["token_id"],
                user_id=row["user_id"],
                email=row["email"],
                role=row["role"],
                org_id=row["org_id"],
                org_name=row["org_name"],
                schema=row["schema_name"],
                phone_region=row["phone_region"],
            )
            entry = _Entry(principal, row["expires_at"], now + self._ttl)
        if self._listening and self._ttl > 0 and generation == self._generation:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = entry
        return entry

    def _forget(self, payload: str) -> None:
        self._generation += 1
        # A reactivated user's tokens may sit in the cache as unknown: drop those too.
        for digest in [d for d, e in self._cache.items() if e.principal is None]:
            del self._cache[digest]
        kind, _, raw_id = payload.partition(":")
        try:
            changed = UUID(raw_id)
        except ValueError:
            self._cache.clear()
            return
        for digest, entry in list(self._cache.items()):
            principal = entry.principal
            if principal is None:
                continue
            if (kind == "api_tokens" and principal.token_id == changed) or (
                kind == "users" and principal.user_id == changed
            ):
                del self._cache[digest]

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self._forget(str(payload))

    async def _listen_forever(self) -> None:
        delay = 0.2
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn)
            except CONNECTION_ERRORS as exc:
                log.warning("auth listener cannot connect: %s", exc)
                self._ready.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(AUTH_CHANNEL, self._on_notify)
                # Anything cached before listening started may have missed a change.
                self._cache.clear()
                self._listening = True
                self._ready.set()
                delay = 0.2
                while not lost.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=5)
                    if not lost.is_set():
                        # A quiet socket may be dead; a ping finds out.
                        try:
                            await asyncio.wait_for(conn.fetchval("SELECT 1"), 2)
                        except _PING_ERRORS:
                            lost.set()
            finally:
                self._listening = False
                self._cache.clear()
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
            log.warning("auth listener lost its connection; reconnecting")
