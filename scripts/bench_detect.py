"""Detection benchmark: organizations of N contacts, timed in the service and over HTTP.

    .venv/bin/python scripts/bench_detect.py \\
        --server postgresql://postgres@127.0.0.1:5432/postgres \\
        --sizes 10000,100000,1000000

For each size the script builds (or reuses) a database `dupes_bench_detect_<N>` on the
given server, holding one organization with N contacts. Values come from Faker in ten
locales; about one record in eight is planted as a duplicate of an earlier one in one
of the variants that the match keys fold together (email case and white space, an
email moved to additional_emails, phone formats, `+1` and `00` prefixes, extensions,
local seven-digit numbers, LinkedIn URL forms and bare vanity names, names typed in
another case). Placeholders (`000-000-0000`, `N/A`, blank emails, other hosts) are
sprinkled in and must never group.

Loading is bulk: keys are computed in Python by the service's own `record_keys` in
two worker processes and written with COPY next to the rows, marked fresh, into a
match_keys whose indexes are created again once the rows are in; the shared keys are
then built in full, as detection builds them for a new object. Each planted
duplicate is checked to share a key with the record it copies, on the field it
varies. A built database is kept and reused while the generator version and the size
match; migrations added since are applied to it at every run.

It then prints, per size:
- the service function (`app.services.detect.detect`) called in-process, with the
  default window (5000 newest) and the window lifted (every record);
- the same requests over HTTP against `dupes serve` started as a child process;
- for the lifted window, a baseline query that normalizes the raw columns on the fly
  with lower() and regexp_replace() and groups them, as a naive implementation would.

Without --server the embedded PostgreSQL in .dupes-bench is used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from faker import Faker

from app import migrations
from app.auth import Principal
from app.db import Database, create_pool, start_embedded
from app.matching.normalize import MATCH_FIELDS
from app.metadata import ModelCache, ObjectMeta, load_model
from app.services import accounts
from app.services.detect import (
    LIFTED_WORK_MEM,
    RECORDS_PER_GROUP,
    DetectParams,
    detect,
    refresh_shared_keys,
)
from app.services.keys import record_keys
from app.settings import Settings
from app.sql import render, sql

ROOT = Path(__file__).resolve().parent.parent
GENERATOR_VERSION = 4
ORG_NAME = "bench"
ADMIN_EMAIL = "admin@bench.test"
CHUNK = 20_000
DEFAULT_WINDOW = 5000
DUPLICATE_SHARE = 0.12
LOCALES = (
    "en_US",
    "en_GB",
    "de_DE",
    "fr_FR",
    "es_ES",
    "it_IT",
    "nl_NL",
    "pt_BR",
    "pl_PL",
    "sv_SE",
)
# North American area codes have the shape NXX (N from 2 to 9, no X11 service codes).
AREA_CODES = tuple(
    f"{a}{b}{c}"
    for a in "23456789"
    for b in "012345678"
    for c in "0123456789"
    if (b, c) != ("1", "1")
)
PHONE_FORMATS = (
    "({a}) {e}-{l}",
    "{a}-{e}-{l}",
    "{a}.{e}.{l}",
    "+1 {a} {e} {l}",
    "{a}{e}{l}",
    "1-{a}-{e}-{l}",
    "+1 ({a}) {e}-{l}",
)
EXT_FORMATS = ("{p} x{x}", "{p} ext. {x}", "{p} ext {x}", "{p};ext={x}", "{p} #{x}")
PLACEHOLDER_PHONES = ("000-000-0000", "(999) 999-9999", "N/A", "none", "", "   ", "0")
PLACEHOLDER_EMAILS = ("", "  ", "n/a", "none@", "@", "unknown")
OTHER_LINKS = ("https://www.facebook.com/{v}", "n/a", "https://notlinkedin.com/in/{v}")
VARIANTS = (
    "email_case",
    "email_additional",
    "phone_format",
    "phone_prefix",
    "phone_ext",
    "phone_additional",
    "phone_local",
    "phone_international",
    "linkedin_form",
    "linkedin_bare",
    "name_case",
)
CONTACT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "additional_emails",
    "phone",
    "additional_phones",
    "linkedin_url",
    "job_title",
    "city",
    "created_at",
    "updated_at",
    "keys_stale",
)
START = datetime(2021, 1, 1, tzinfo=UTC)

# The naive implementation this service is compared with: every key is recomputed
# from the raw columns at query time with lower() and regexp_replace(), then grouped
# and collapsed exactly as detect_groups_all does with stored keys. It needs a full
# scan and a sort of every value on every request; no index can serve it.
BASELINE_SQL = """
WITH raw_keys AS (
    SELECT c.id AS record_id, 'email' AS field, lower(btrim(e.value)) AS key
    FROM {schema}.contacts AS c,
        unnest(array_prepend(c.email, coalesce(c.additional_emails, '{{}}')))
            AS e (value)
    UNION ALL
    SELECT c.id, 'phone', regexp_replace(
        regexp_replace(p.value, '^(\\+|00)1', ''), '[^0-9]', '', 'g'
    )
    FROM {schema}.contacts AS c,
        unnest(array_prepend(c.phone, coalesce(c.additional_phones, '{{}}')))
            AS p (value)
    UNION ALL
    SELECT c.id, 'linkedin', regexp_replace(
        lower(c.linkedin_url),
        '^(https?://)?([a-z]+\\.)?linkedin\\.com/(mwlite/)?(in/)?|[/?#].*$',
        '',
        'g'
    )
    FROM {schema}.contacts AS c
    UNION ALL
    SELECT c.id, 'name', lower(btrim(c.first_name)) || ' ' || lower(btrim(c.last_name))
    FROM {schema}.contacts AS c
),
holders AS (
    SELECT DISTINCT field, key, record_id
    FROM raw_keys
    WHERE key IS NOT NULL AND key <> '' AND key <> ' '
),
counted AS (
    SELECT field, key, record_id,
        count(*) OVER (PARTITION BY field, key) AS holder_count
    FROM holders
),
key_groups AS (
    SELECT h.field, h.key,
        array_agg(h.record_id ORDER BY t.created_at, h.record_id) AS members,
        min(t.created_at) AS oldest
    FROM counted AS h
    JOIN {schema}.contacts AS t ON t.id = h.record_id
    WHERE h.holder_count >= 2
    GROUP BY h.field, h.key
),
record_sets AS (
    SELECT members, min(oldest) AS oldest,
        array_agg(DISTINCT array_position($1::text[], field)) AS reason_ranks,
        min(key) AS match_value
    FROM key_groups
    GROUP BY members
)
SELECT count(*) OVER () AS total_groups, cardinality(members) AS record_count,
    reason_ranks, match_value, members[1:100] AS shown_ids
FROM record_sets
ORDER BY cardinality(members) DESC, oldest, reason_ranks[1], match_value
LIMIT 50
"""


# --- data ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pools:
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    mail_domains: tuple[str, ...]
    job_titles: tuple[str, ...]
    cities: tuple[str, ...]


def build_pools(seed: int) -> Pools:
    """Names, domains, jobs and cities drawn from Faker once, with its weights."""
    first: list[str] = []
    last: list[str] = []
    domains: list[str] = []
    cities: list[str] = []
    for index, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed + index)
        first += [fake.first_name() for _ in range(1500)]
        last += [fake.last_name() for _ in range(1500)]
        domains += [fake.free_email_domain() for _ in range(300)]
        domains += [fake.domain_name() for _ in range(700)]
        cities += [fake.city() for _ in range(200)]
    english = Faker("en_US")
    english.seed_instance(seed)
    jobs = [english.job() for _ in range(2000)]
    return Pools(tuple(first), tuple(last), tuple(domains), tuple(jobs), tuple(cities))


def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


@dataclass(slots=True)
class Person:
    """What a duplicate needs to know about the record it copies."""

    first: str
    last: str
    email: str | None
    digits: str | None
    extension: str | None
    local: bool
    international: bool
    vanity: str | None
    id: uuid.UUID | None = None


@dataclass(slots=True)
class Reservoir:
    """A uniform sample of earlier records, so duplicates reach far into the past."""

    size: int
    items: list[Person] = field(default_factory=list)
    seen: int = 0

    def add(self, rng: random.Random, person: Person) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(person)
            return
        slot = rng.randrange(self.seen)
        if slot < self.size:
            self.items[slot] = person

    def pick(self, rng: random.Random) -> Person | None:
        return rng.choice(self.items) if self.items else None


class Generator:
    """Contacts in creation order, with planted duplicates counted by variant."""

    def __init__(self, pools: Pools, seed: int) -> None:
        self.pools = pools
        self.rng = random.Random(seed)
        self.index = 0
        self.planted: dict[str, int] = dict.fromkeys(VARIANTS, 0)
        # (duplicate, the record it copies, variant) of every planted duplicate.
        self.pairs: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        self.placeholders = 0
        self.reservoirs = {
            kind: Reservoir(50_000)
            for kind in ("named", "email", "phone", "ext", "local", "intl", "linkedin")
        }
        self._variant = 0

    def phone(self, digits: str, fmt: str | None = None) -> str:
        pattern = fmt or self.rng.choice(PHONE_FORMATS)
        return pattern.format(a=digits[:3], e=digits[3:6], l=digits[6:])

    def local_phone(self, digits: str) -> str:
        return self.rng.choice((f"{digits[3:6]}-{digits[6:]}", digits[3:]))

    def intl_phone(self, digits: str, prefix: str = "+44") -> str:
        return f"{prefix} 20 {digits[2:6]} {digits[6:]}"

    def linkedin(self, vanity: str) -> str:
        return self.rng.choice(
            (
                f"https://www.linkedin.com/in/{vanity}/",
                f"https://linkedin.com/in/{vanity}",
                f"www.linkedin.com/in/{vanity}",
            )
        )

    def fresh_digits(self) -> str:
        exchange = self.rng.randrange(200, 1000)
        line = self.rng.randrange(10_000)
        return f"{self.rng.choice(AREA_CODES)}{exchange:03d}{line:04d}"

    def fresh_person(self) -> Person:
        rng = self.rng
        first = rng.choice(self.pools.first_names)
        last = rng.choice(self.pools.last_names)
        tag = format(self.index, "x")
        email = (
            f"{ascii_slug(first)}.{ascii_slug(last)}.{tag}@"
            f"{rng.choice(self.pools.mail_domains)}"
        )
        roll = rng.random()
        return Person(
            first=first,
            last=last,
            email=email,
            digits=self.fresh_digits(),
            extension=str(rng.randrange(10, 9999)) if roll < 0.04 else None,
            local=0.04 <= roll < 0.07,
            international=0.07 <= roll < 0.10,
            vanity=(
                f"{ascii_slug(first)}-{ascii_slug(last)}-{tag}"
                if rng.random() < 0.6
                else None
            ),
        )

    def render_phone(self, person: Person) -> str | None:
        if person.digits is None:
            return None
        if person.local:
            return self.local_phone(person.digits)
        if person.international:
            return self.intl_phone(person.digits)
        text = self.phone(person.digits)
        if person.extension:
            pattern = self.rng.choice(EXT_FORMATS)
            text = pattern.format(p=text, x=person.extension)
        return text

    def original(self, record_id: uuid.UUID) -> dict[str, Any]:
        person = self.fresh_person()
        person.id = record_id
        rng = self.rng
        values: dict[str, Any] = {
            "first_name": person.first,
            "last_name": person.last,
            "email": person.email,
            "phone": self.render_phone(person),
            "linkedin_url": self.linkedin(person.vanity) if person.vanity else None,
        }
        named = True
        noise = rng.random()
        if noise < 0.02:
            values["phone"] = rng.choice(PLACEHOLDER_PHONES)
            person.digits = None
            self.placeholders += 1
        elif noise < 0.03:
            values["email"] = rng.choice(PLACEHOLDER_EMAILS)
            person.email = None
            self.placeholders += 1
        elif noise < 0.04 and person.vanity:
            values["linkedin_url"] = rng.choice(OTHER_LINKS).format(v=person.vanity)
            person.vanity = None
            self.placeholders += 1
        elif noise < 0.05:
            values["first_name"] = rng.choice(("", " ", None))
            named = False
        if rng.random() < 0.08:
            values["additional_emails"] = [
                f"{ascii_slug(person.last)}.{self.index:x}@{rng.choice(self.pools.mail_domains)}"
            ]
        if rng.random() < 0.08:
            values["additional_phones"] = [self.phone(self.fresh_digits())]
        self._remember(person, named)
        return values

    def _remember(self, person: Person, named: bool) -> None:
        # Each variant copies a record that has the value it varies, in the form it
        # varies (a ten-digit number without extension for phone_format, ...).
        if named:
            self.reservoirs["named"].add(self.rng, person)
        if person.digits and not (
            person.extension or person.local or person.international
        ):
            self.reservoirs["phone"].add(self.rng, person)
        if person.email:
            self.reservoirs["email"].add(self.rng, person)
        if person.digits and person.extension:
            self.reservoirs["ext"].add(self.rng, person)
        if person.digits and person.local:
            self.reservoirs["local"].add(self.rng, person)
        if person.digits and person.international:
            self.reservoirs["intl"].add(self.rng, person)
        if person.vanity:
            self.reservoirs["linkedin"].add(self.rng, person)

    def _source(self, variant: str) -> Person | None:
        kind = {
            "email_case": "email",
            "email_additional": "email",
            "phone_format": "phone",
            "phone_prefix": "phone",
            "phone_additional": "phone",
            "phone_ext": "ext",
            "phone_local": "local",
            "phone_international": "intl",
            "linkedin_form": "linkedin",
            "linkedin_bare": "linkedin",
            "name_case": "named",
        }[variant]
        return self.reservoirs[kind].pick(self.rng)

    def duplicate(self, record_id: uuid.UUID) -> dict[str, Any] | None:
        variant = VARIANTS[self._variant % len(VARIANTS)]
        self._variant += 1
        source = self._source(variant)
        if source is None or (variant.startswith("phone") and source.digits is None):
            return None
        rng = self.rng
        fresh = self.fresh_person()
        keep_name = variant == "name_case" or rng.random() < 0.7
        values: dict[str, Any] = {
            "first_name": self.retype(source.first) if keep_name else fresh.first,
            "last_name": self.retype(source.last) if keep_name else fresh.last,
            "email": fresh.email,
            "phone": self.phone(fresh.digits or self.fresh_digits()),
            "linkedin_url": self.linkedin(fresh.vanity) if fresh.vanity else None,
        }
        if variant != "name_case":
            # A person entered twice often repeats more than the one varied value.
            if source.email and rng.random() < 0.3:
                values["email"] = source.email
            if source.vanity and rng.random() < 0.2:
                values["linkedin_url"] = self.linkedin(source.vanity)
        digits = source.digits or ""
        if variant == "email_case":
            values["email"] = f"  {self.retype(source.email or '')}\t"
        elif variant == "email_additional":
            values["additional_emails"] = [(source.email or "").upper()]
        elif variant == "phone_format":
            values["phone"] = self.phone(digits)
        elif variant == "phone_prefix":
            values["phone"] = rng.choice(
                (f"001 {digits[:3]} {digits[3:6]} {digits[6:]}", f"+1{digits}")
            )
        elif variant == "phone_ext":
            pattern = rng.choice(EXT_FORMATS)
            values["phone"] = pattern.format(
                p=self.phone(digits), x=source.extension or ""
            )
        elif variant == "phone_additional":
            values["additional_phones"] = [self.phone(digits)]
        elif variant == "phone_local":
            values["phone"] = rng.choice(
                (f"{digits[3:6]} {digits[6:]}", f"{digits[3:6]}.{digits[6:]}")
            )
        elif variant == "phone_international":
            values["phone"] = self.intl_phone(digits, rng.choice(("0044", "+44")))
        elif variant == "linkedin_form":
            vanity = source.vanity or ""
            values["linkedin_url"] = rng.choice(
                (
                    f"linkedin.com/in/{vanity.title()}?trk=public_profile",
                    f"https://uk.linkedin.com/in/{vanity}/details/experience/",
                    f"http://m.linkedin.com/mwlite/in/{vanity}",
                    f"https://www.linkedin.com/in/{vanity}#about",
                )
            )
        elif variant == "linkedin_bare":
            values["linkedin_url"] = source.vanity
        self.planted[variant] += 1
        assert source.id is not None
        self.pairs.append((record_id, source.id, variant))
        return values

    def retype(self, text: str) -> str:
        """The same text as someone else would type it: case and spacing."""
        style = self.rng.randrange(3)
        if style == 0:
            return text.upper()
        if style == 1:
            return f" {text.lower()}  "
        return text.swapcase()

    def next_chunk(self, count: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for _ in range(count):
            rng = self.rng
            record_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            values = None
            if self.index > 100 and rng.random() < DUPLICATE_SHARE:
                values = self.duplicate(record_id)
            if values is None:
                values = self.original(record_id)
            values["id"] = record_id
            values.setdefault("additional_emails", None)
            values.setdefault("additional_phones", None)
            values["job_title"] = rng.choice(self.pools.job_titles)
            values["city"] = rng.choice(self.pools.cities)
            moment = START + timedelta(seconds=30 * self.index)
            values["created_at"] = moment
            values["updated_at"] = moment
            values["keys_stale"] = False
            rows.append(values)
            self.index += 1
        return rows


_WORKER_OBJECT: ObjectMeta | None = None


def _init_worker(obj: ObjectMeta) -> None:
    global _WORKER_OBJECT
    _WORKER_OBJECT = obj


def _keys_of(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, uuid.UUID]]:
    assert _WORKER_OBJECT is not None
    obj = _WORKER_OBJECT
    return [
        (obj.name, field_name, key, row["id"])
        for row in rows
        for field_name, key in record_keys(obj, row, "US")
    ]


# --- databases --------------------------------------------------------------------


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@dataclass(frozen=True, slots=True)
class BenchDb:
    dsn: str
    principal: Principal
    token: str
    planted: dict[str, int]
    found: dict[str, int]
    placeholders: int


async def _built_info(dsn: str) -> dict[str, Any] | None:
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        raw = await conn.fetchval(
            "SELECT info FROM public.bench_info WHERE version = $1", GENERATOR_VERSION
        )
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return json.loads(raw) if raw else None


async def build(server_dsn: str, size: int, seed: int, rebuild: bool) -> BenchDb:
    """The database of `size` contacts: reused when built before, else built now.

    A reused database gets the migrations added since; one whose applied migrations
    no longer match the files is built again.
    """
    name = f"dupes_bench_detect_{size}"
    dsn = with_database(server_dsn, name)
    info = None if rebuild else await _built_info(dsn)
    if info is not None:
        conn = await asyncpg.connect(dsn)
        try:
            applied = await migrations.migrate(conn)
            if applied:
                print(f"  applied {applied} migration(s) to {name}")
        except migrations.MigrationError as exc:
            print(f"  {name}: {exc}; building it again")
            info = None
        finally:
            await conn.close()
    if info is None:
        info = await _build_fresh(server_dsn, dsn, name, size, seed)
    conn = await asyncpg.connect(dsn)
    try:
        org = await conn.fetchrow(
            "SELECT id, name, schema_name, phone_region FROM dupes_core.organizations"
            " WHERE name = $1",
            ORG_NAME,
        )
        assert org is not None
        obj = (await load_model(conn, org["id"])).object("contacts")
        started = time.perf_counter()
        outcome = await refresh_shared_keys(conn, org["schema_name"], obj)
        if outcome != "fresh":
            print(f"  shared keys {outcome} in {time.perf_counter() - started:.1f} s")
            await _vacuum(conn, org["schema_name"])
        issued = await accounts.create_token(conn, ADMIN_EMAIL)
        user = await conn.fetchrow(
            "SELECT id FROM dupes_core.users WHERE email = $1", ADMIN_EMAIL
        )
        assert user is not None
    finally:
        await conn.close()
    principal = Principal(
        token_id=issued.id,
        user_id=user["id"],
        email=ADMIN_EMAIL,
        role="admin",
        org_id=org["id"],
        org_name=org["name"],
        schema=org["schema_name"],
        phone_region=org["phone_region"],
    )
    return BenchDb(
        dsn,
        principal,
        issued.token,
        info["planted"],
        info["found"],
        info["placeholders"],
    )


async def _vacuum(conn: asyncpg.Connection, schema: str) -> None:
    for table in ("contacts", "match_keys", "shared_keys", "match_key_changes"):
        await conn.execute(f'VACUUM (ANALYZE) "{schema}"."{table}"')


async def _planted_found(conn: asyncpg.Connection, schema: str) -> dict[str, int]:
    """Per variant, the planted duplicates whose match keys share a key with the
    record they copy, on the variant's own field (email_case counts email keys)."""
    rows = await conn.fetch(
        f"""
        SELECT p.variant, count(*) AS found
        FROM public.bench_planted AS p
        WHERE EXISTS (
            SELECT 1
            FROM "{schema}".match_keys AS a
            JOIN "{schema}".match_keys AS b
                ON b.object_name = a.object_name
                AND b.field = a.field
                AND b.key = a.key
                AND b.record_id = p.source
            WHERE a.object_name = 'contacts'
                AND a.record_id = p.duplicate
                AND a.field = split_part(p.variant, '_', 1)
        )
        GROUP BY p.variant
        """
    )
    return {row["variant"]: row["found"] for row in rows}


@contextlib.asynccontextmanager
async def _bulk_load(conn: asyncpg.Connection, schema: str) -> AsyncIterator[None]:
    """match_keys without its indexes and change log while millions of rows arrive.

    Inserting keys one by one into a primary key far larger than shared_buffers is
    most of a build's time; the indexes are dropped and created again afterwards
    from their own definitions, which sorts once. The change log is left out: a new
    object's shared keys are built in full (build() does it).
    """
    table = f'"{schema}".match_keys'
    constraints = await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
        "WHERE conrelid = $1::regclass AND contype IN ('p', 'u')",
        table,
    )
    indexes = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name, "
        "pg_get_indexdef(indexrelid) AS definition FROM pg_index "
        "WHERE indrelid = $1::regclass AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint AS c WHERE c.conindid = indexrelid)",
        table,
    )
    for constraint in constraints:
        await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint[0]}"')
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER match_keys_log_insert")

    yield

    await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER match_keys_log_insert")
    await conn.execute("SET maintenance_work_mem = '512MB'")
    for constraint in constraints:
        await conn.execute(
            f'ALTER TABLE {table} ADD CONSTRAINT "{constraint[0]}" '
            f"{constraint['definition']}"
        )
    for index in indexes:
        await conn.execute(index["definition"])
    await conn.execute("RESET maintenance_work_mem")


async def _build_fresh(
    server_dsn: str, dsn: str, name: str, size: int, seed: int
) -> dict[str, Any]:
    started = time.perf_counter()
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        await migrations.migrate(conn)
        org = await accounts.create_organization(conn, ORG_NAME, "US")
        await accounts.create_user(conn, ORG_NAME, ADMIN_EMAIL, "admin")
        schema = org["schema_name"]
        obj = (await load_model(conn, org["id"])).object("contacts")
        # Keys are written here, next to the rows, so the rows are fresh.
        await conn.execute("SELECT set_config('dupes.keys_fresh', 'on', false)")
        generator = Generator(build_pools(seed), seed)
        loaded = 0
        workers = ProcessPoolExecutor(2, initializer=_init_worker, initargs=(obj,))
        with workers as pool:
            async with _bulk_load(conn, schema):
                while loaded < size:
                    rows = generator.next_chunk(min(CHUNK, size - loaded))
                    halves = [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
                    keys = [key for part in pool.map(_keys_of, halves) for key in part]
                    await conn.copy_records_to_table(
                        "contacts",
                        schema_name=schema,
                        columns=CONTACT_COLUMNS,
                        records=[tuple(r[c] for c in CONTACT_COLUMNS) for r in rows],
                    )
                    await conn.copy_records_to_table(
                        "match_keys",
                        schema_name=schema,
                        columns=("object_name", "field", "key", "record_id"),
                        records=keys,
                    )
                    loaded += len(rows)
                    print(
                        f"\r  {name}: {loaded:,} / {size:,} contacts "
                        f"({time.perf_counter() - started:.0f} s)",
                        end="",
                        flush=True,
                    )
        print()
        await conn.execute(
            "CREATE TABLE public.bench_planted "
            "(duplicate uuid, source uuid, variant text)"
        )
        await conn.copy_records_to_table(
            "bench_planted", schema_name="public", records=generator.pairs
        )
        await _vacuum(conn, schema)
        info = {
            "size": size,
            "seed": seed,
            "schema": schema,
            "planted": generator.planted,
            "found": await _planted_found(conn, schema),
            "placeholders": generator.placeholders,
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        await conn.execute(
            "CREATE TABLE public.bench_info (version integer, info text)"
        )
        await conn.execute(
            "INSERT INTO public.bench_info VALUES ($1, $2)",
            GENERATOR_VERSION,
            json.dumps(info),
        )
        keys = await conn.fetchval(f'SELECT count(*) FROM "{schema}".match_keys')
        print(
            f"  built {name} in {info['build_seconds']} s: {size:,} contacts, "
            f"{keys:,} match keys"
        )
        return info
    finally:
        await conn.close()


# --- measuring --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    label: str
    seconds: list[float]
    total_groups: int
    records_scanned: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000

    @property
    def min_ms(self) -> float:
        return min(self.seconds) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.seconds) * 1000


async def _repeat(
    label: str, runs: int, call: Callable[[], Awaitable[tuple[int, int]]]
) -> Timing:
    await call()  # warm-up: plans cached, pages read once
    seconds: list[float] = []
    groups = scanned = 0
    for _ in range(runs):
        started = time.perf_counter()
        groups, scanned = await call()
        seconds.append(time.perf_counter() - started)
    return Timing(label, seconds, groups, scanned)


async def measure_service(bench: BenchDb, window: int, runs: int) -> Timing:
    settings = Settings(database_url=bench.dsn, bootstrap=False)
    pool = await create_pool(bench.dsn, settings)
    try:
        database = Database(pool, settings.pool_acquire_timeout)
        models = ModelCache()
        params = DetectParams("contacts", None, 50)

        async def call() -> tuple[int, int]:
            found = await detect(database, models, bench.principal, params, window)
            return found.total_groups, found.records_scanned

        label = "service, window " + (f"{window}" if window else "lifted")
        return await _repeat(label, runs, call)
    finally:
        await pool.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_server(
    dsn: str, window: int
) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "DUPES_PORT": str(port),
        "DUPES_DETECT_WINDOW": str(window),
        "DUPES_BOOTSTRAP": "false",
        "DUPES_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "serve",
        "--port",
        str(port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("dupes serve did not start")
            yield session, base
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=60)


async def measure_http(bench: BenchDb, window: int, runs: int) -> Timing:
    body = {"action": "detect", "object_name": "contacts"}
    headers = {"Authorization": f"Bearer {bench.token}"}
    async with running_server(bench.dsn, window) as (session, base):

        async def call() -> tuple[int, int]:
            async with session.post(
                f"{base}/api/v1/duplicates", json=body, headers=headers
            ) as response:
                payload = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {payload}")
                return payload["total_groups"], payload["records_scanned"]

        label = "HTTP, window " + (f"{window}" if window else "lifted")
        return await _repeat(label, runs, call)


async def measure_baseline(bench: BenchDb, runs: int) -> Timing:
    # The same memory as the service's lifted window, so that only the method differs.
    conn = await asyncpg.connect(
        bench.dsn, server_settings={"jit": "off", "work_mem": LIFTED_WORK_MEM}
    )
    try:
        text = BASELINE_SQL.format(schema=f'"{bench.principal.schema}"')
        order = ["email", "phone", "linkedin", "name"]

        async def call() -> tuple[int, int]:
            rows = await conn.fetch(text, order)
            return (rows[0]["total_groups"] if rows else 0), 0

        seconds: list[float] = []
        groups = 0
        for _ in range(runs):
            started = time.perf_counter()
            groups, _ = await call()
            seconds.append(time.perf_counter() - started)
        return Timing("baseline SQL, window lifted", seconds, groups, 0)
    finally:
        await conn.close()


async def explain(bench: BenchDb) -> None:
    """Prints EXPLAIN (ANALYZE, BUFFERS) of both group queries, as the service runs
    them (after one warm-up run each)."""
    conn = await asyncpg.connect(bench.dsn, server_settings={"jit": "off"})
    schema = bench.principal.schema
    fields = list(MATCH_FIELDS)
    try:
        for name, extra in (
            ("detect_groups_window", [DEFAULT_WINDOW]),
            ("detect_groups_all", []),
        ):
            text = render(name, schema=schema, table="contacts")
            args = ["contacts", fields, fields, 50, RECORDS_PER_GROUP, *extra]
            async with conn.transaction():
                if not extra:
                    await conn.execute(sql("detect_work_mem"), LIFTED_WORK_MEM)
                await conn.fetch(text, *args)
                plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + text, *args)
            print(f"\n{name}:")
            print("\n".join("  " + row[0] for row in plan))
    finally:
        await conn.close()


# --- report -----------------------------------------------------------------------


def print_planted(size: int, bench: BenchDb) -> None:
    planted = sum(bench.planted.values())
    print(
        f"\n  {size:,} contacts: {planted:,} planted duplicates, "
        f"{bench.placeholders:,} placeholder values"
    )
    print(f"  {'variant':22} {'planted':>8} {'share a key':>12}")
    for variant, count in bench.planted.items():
        found = bench.found.get(variant, 0)
        print(f"  {variant:22} {count:8,d} {found:12,d}")


def print_timings(size: int, timings: Sequence[Timing]) -> None:
    print(f"\n{size:,} contacts")
    print(
        f"  {'':32} {'median ms':>10} {'min ms':>9} {'max ms':>9} {'runs':>5}"
        f" {'groups':>8} {'scanned':>9}"
    )
    for t in timings:
        print(
            f"  {t.label:32} {t.median_ms:10.1f} {t.min_ms:9.1f} {t.max_ms:9.1f} "
            f"{len(t.seconds):5d} {t.total_groups:8,d} {t.records_scanned:9,d}"
        )


def parse_sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def runs_for(size: int, lifted: bool) -> int:
    if not lifted:
        return 25
    return 15 if size <= 100_000 else 5


async def run(args: argparse.Namespace) -> int:
    server = args.server or start_embedded(ROOT / ".dupes-bench")
    print(f"PostgreSQL: {_describe(server)}")
    async with _server_version(server) as version:
        print(f"  {version}")
    results: dict[int, dict[str, Timing]] = {}
    for size in parse_sizes(args.sizes):
        bench = await build(server, size, args.seed, args.rebuild)
        print_planted(size, bench)
        timings = {
            "window": await measure_service(
                bench, DEFAULT_WINDOW, runs_for(size, False)
            ),
            "lifted": await measure_service(bench, 0, runs_for(size, True)),
        }
        if not args.skip_http:
            timings["http_window"] = await measure_http(
                bench, DEFAULT_WINDOW, runs_for(size, False)
            )
            timings["http_lifted"] = await measure_http(bench, 0, runs_for(size, True))
        if not args.skip_baseline:
            timings["baseline"] = await measure_baseline(
                bench, 1 if size >= 1_000_000 else 3
            )
        print_timings(size, list(timings.values()))
        results[size] = timings
        if args.explain:
            await explain(bench)
    print_growth(results)
    print_targets(results)
    return 0


def _describe(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{parts.hostname}:{parts.port}"


@contextlib.asynccontextmanager
async def _server_version(dsn: str) -> AsyncIterator[str]:
    conn = await asyncpg.connect(dsn)
    try:
        yield str(await conn.fetchval("SELECT version()"))
    finally:
        await conn.close()


def print_growth(results: dict[int, dict[str, Timing]]) -> None:
    print("\nGrowth (median ms)")
    labels = [
        ("window", "service, window 5000"),
        ("lifted", "service, lifted"),
        ("http_window", "HTTP, window 5000"),
        ("http_lifted", "HTTP, lifted"),
        ("baseline", "baseline, lifted"),
    ]
    print(f"  {'contacts':>10} " + " ".join(f"{title:>21}" for _, title in labels))
    for size, timings in results.items():
        cells = [
            f"{timings[key].median_ms:21.1f}" if key in timings else f"{'-':>21}"
            for key, _ in labels
        ]
        print(f"  {size:>10,} " + " ".join(cells))


def print_targets(results: dict[int, dict[str, Timing]]) -> None:
    largest = max(results)
    timings = results[largest]
    print(f"\nTargets at {largest:,} contacts")
    window = timings["window"].median_ms
    lifted = timings["lifted"].median_ms
    print(
        f"  default window, service median {window:.1f} ms (< 50 ms): "
        f"{'met' if window < 50 else 'MISSED'}"
    )
    print(
        f"  lifted window, service median {lifted:.0f} ms (< 3000 ms): "
        f"{'met' if lifted < 3000 else 'MISSED'}"
    )
    if "baseline" in timings:
        baseline = timings["baseline"].median_ms
        ratio = baseline / lifted
        print(
            f"  baseline {baseline:.0f} ms, {ratio:.1f}x slower (>= 10x): "
            f"{'met' if ratio >= 10 else 'MISSED'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="DSN of a PostgreSQL server to create the bench databases on "
        "(default: BENCH_DATABASE_URL, else the embedded server in .dupes-bench)",
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--rebuild", action="store_true", help="ignore cached data")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--explain", action="store_true", help="print the plans of both queries"
    )
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
