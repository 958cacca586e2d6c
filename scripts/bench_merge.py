"""Merge benchmark: latency of single merges and throughput of concurrent ones (HTTP).

    .venv/bin/python scripts/bench_merge.py \\
        --server postgresql://postgres@127.0.0.1:5432/postgres

The script (re)creates a dedicated database `dupes_bench_merge` on the given server,
migrates it, creates one organization with an admin token, and starts `dupes serve`
on it as a child process. Then:

- small: a master and 1 duplicate holding 20 related rows (10 notes, 4 opportunity
  links of which 2 repeat the master's, 3 opportunities naming it primary contact, 3
  contacts it referred), merged `--small-runs` times;
- large: a master and 100 duplicates holding 10,000 related rows (100 each, in the same
  proportions), merged `--large-runs` times;
- throughput: `--clients` concurrent clients merge `--groups` small groups as fast as
  they can; one request in ten merges across groups, so merges overlap and some find
  a record already merged away (404).

Each timed merge is checked afterwards (every related row moved or counted as a dropped
repeat, the duplicates gone, nothing left pointing at them); after the throughput run
every note, link and reference is checked against the merges that succeeded. Latency
is the HTTP round trip seen by the client. Without --server the embedded PostgreSQL in
.dupes-bench is used.
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
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import aiohttp
import asyncpg

from app import migrations
from app.db import start_embedded
from app.services import accounts
from app.sql import quote_ident

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "dupes_bench_merge"
RELATED_COLUMNS = (
    ("notes", "contact_id"),
    ("opportunity_contacts", "contact_id"),
    ("opportunities", "primary_contact_id"),
    ("contacts", "referred_by_id"),
)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@dataclass(frozen=True, slots=True)
class Group:
    master: UUID
    duplicates: list[UUID]
    related: int
    repeats: int


@dataclass(frozen=True, slots=True)
class Timing:
    samples: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.samples)
        index = max(0, min(len(ordered) - 1, round(0.99 * len(ordered)) - 1))
        return ordered[index] * 1000


class Seeder:
    """Writes groups of duplicates and their related rows with a few bulk statements."""

    def __init__(self, conn: asyncpg.Connection, schema: str, seed: int) -> None:
        self.conn = conn
        self.schema = schema
        self.rng = random.Random(seed)

    def t(self, table: str) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(table)}"

    async def _contacts(
        self, names: Sequence[str], referred_by: Any = None
    ) -> list[UUID]:
        rows = await self.conn.fetch(
            f"INSERT INTO {self.t('contacts')} (first_name, referred_by_id) "
            "SELECT name, ref FROM unnest($1::text[], $2::uuid[]) AS r (name, ref) "
            "RETURNING id",
            list(names),
            referred_by if referred_by is not None else [None] * len(names),
        )
        return [r["id"] for r in rows]

    async def group(self, duplicates: int, per_duplicate: int) -> Group:
        """A master and its duplicates; each duplicate holds `per_duplicate` rows."""
        notes = per_duplicate // 2
        links = per_duplicate // 5
        primaries = (per_duplicate - notes - links) // 2
        referred = per_duplicate - notes - links - primaries
        [master] = await self._contacts(["master"])
        dups = await self._contacts([f"dup {i}" for i in range(duplicates)])
        owners = [d for d in dups for _ in range(notes)]
        await self.conn.execute(
            f"INSERT INTO {self.t('notes')} (body, contact_id) "
            "SELECT 'note', owner FROM unnest($1::uuid[]) AS o (owner)",
            owners,
        )
        owners = [d for d in dups for _ in range(primaries)]
        await self.conn.execute(
            f"INSERT INTO {self.t('opportunities')} (name, primary_contact_id) "
            "SELECT 'deal', owner FROM unnest($1::uuid[]) AS o (owner)",
            owners,
        )
        owners = [d for d in dups for _ in range(referred)]
        await self._contacts(["referred"] * len(owners), owners)
        # Deals the group shares: the master is on the first half of them, so about
        # half of each duplicate's links repeat one of the master's.
        pool = await self.conn.fetch(
            f"INSERT INTO {self.t('opportunities')} (name) "
            "SELECT 'shared deal' FROM generate_series(1, $1::int) RETURNING id",
            max(2 * links, 2),
        )
        deals = [r["id"] for r in pool]
        master_deals = deals[: len(deals) // 2]
        pairs: list[tuple[UUID, UUID]] = [(deal, master) for deal in master_deals]
        repeats = 0
        seen: set[UUID] = set(master_deals)
        for dup in dups:
            mine = self.rng.sample(master_deals, links // 2) + self.rng.sample(
                deals[len(deals) // 2 :], links - links // 2
            )
            for deal in mine:
                # A repeat of the master's link, or of an earlier duplicate's.
                repeats += deal in seen
                seen.add(deal)
                pairs.append((deal, dup))
        await self.conn.execute(
            f"INSERT INTO {self.t('opportunity_contacts')} "
            "(opportunity_id, contact_id) SELECT * FROM unnest($1::uuid[], $2::uuid[])",
            [p[0] for p in pairs],
            [p[1] for p in pairs],
        )
        return Group(master, dups, per_duplicate * duplicates, repeats)


async def prepare(server_dsn: str) -> tuple[str, str, str]:
    """A fresh bench database with one organization; returns DSN, schema, token."""
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()
    dsn = with_database(server_dsn, DATABASE)
    conn = await asyncpg.connect(dsn)
    try:
        await migrations.migrate(conn)
        org = await accounts.create_organization(conn, "bench")
        await accounts.create_user(conn, "bench", "admin@bench.test", "admin")
        issued = await accounts.create_token(conn, "admin@bench.test")
    finally:
        await conn.close()
    return dsn, org["schema_name"], issued.token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_server(
    dsn: str, workers: int, pool_size: int
) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "DUPES_BOOTSTRAP": "false",
        "DUPES_LOG_LEVEL": "WARNING",
        "DUPES_POOL_MAX_SIZE": str(pool_size),
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before timing
        [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
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
        process.wait(timeout=60)


async def post_merge(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    master: UUID,
    duplicates: Sequence[UUID],
) -> tuple[int, dict[str, Any], float]:
    body = {
        "action": "merge",
        "object_name": "contacts",
        "master_id": str(master),
        "duplicate_ids": [str(d) for d in duplicates],
    }
    started = time.perf_counter()
    async with session.post(
        f"{base}/api/v1/duplicates",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        payload = await response.json()
        elapsed = time.perf_counter() - started
        return response.status, payload, elapsed


async def check_group(
    conn: asyncpg.Connection, schema: str, group: Group, report: dict[str, Any]
) -> None:
    """The merge of one group moved every related row or counted it as dropped."""
    moved = sum(report["relinked"].values())
    dropped = sum(report["junction_rows_dropped"].values())
    if report["duplicates_deleted"] != len(group.duplicates):
        raise AssertionError(f"deleted {report['duplicates_deleted']}")
    if moved + dropped != group.related or dropped != group.repeats:
        raise AssertionError(
            f"moved {moved} + dropped {dropped} != {group.related} related rows "
            f"({group.repeats} repeats)"
        )
    left = await conn.fetchval(
        f"SELECT count(*) FROM {quote_ident(schema)}.contacts WHERE id = ANY($1)",
        group.duplicates,
    )
    if left:
        raise AssertionError(f"{left} duplicates survived")
    for table, column in RELATED_COLUMNS:
        pointing = await conn.fetchval(
            f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(table)} "
            f"WHERE {quote_ident(column)} = ANY($1)",
            group.duplicates,
        )
        if pointing:
            raise AssertionError(f"{pointing} rows of {table} point at a duplicate")


async def latency(
    conn: asyncpg.Connection,
    seeder: Seeder,
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    duplicates: int,
    per_duplicate: int,
    runs: int,
) -> Timing:
    samples: list[float] = []
    for _ in range(runs):
        group = await seeder.group(duplicates, per_duplicate)
        status, payload, elapsed = await post_merge(
            session, base, token, group.master, group.duplicates
        )
        if status != 200:
            raise AssertionError(f"merge answered {status}: {payload}")
        await check_group(conn, seeder.schema, group, payload)
        samples.append(elapsed)
    return Timing(samples)


@dataclass
class Throughput:
    seconds: float
    statuses: Counter[int]
    merges_per_second: float
    latency: Timing


async def throughput(
    conn: asyncpg.Connection,
    seeder: Seeder,
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    clients: int,
    groups_count: int,
) -> Throughput:
    groups = [await seeder.group(1, 20) for _ in range(groups_count)]
    s = quote_ident(seeder.schema)
    notes_before = dict(
        tuple(r) for r in await conn.fetch(f"SELECT id, contact_id FROM {s}.notes")
    )
    links_before = [
        tuple(r)
        for r in await conn.fetch(
            f"SELECT opportunity_id, contact_id FROM {s}.opportunity_contacts"
        )
    ]
    refs_before = dict(
        tuple(r)
        for r in await conn.fetch(f"SELECT id, referred_by_id FROM {s}.contacts")
    )
    audits_before = await conn.fetchval(f"SELECT count(*) FROM {s}.merge_audit")
    queue = list(range(groups_count))
    rng = random.Random(7)
    rng.shuffle(queue)
    results: list[tuple[UUID, list[UUID], int, dict[str, Any]]] = []
    samples: list[float] = []

    async def client() -> None:
        while queue:
            group = groups[queue.pop()]
            duplicates = group.duplicates
            if rng.random() < 0.1:
                # Across groups: overlaps with whichever merge handles the other one.
                duplicates = rng.choice(groups).duplicates
                if group.master in duplicates:
                    continue
            status, payload, elapsed = await post_merge(
                session, base, token, group.master, duplicates
            )
            results.append((group.master, duplicates, status, payload))
            samples.append(elapsed)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    statuses = Counter(status for _, _, status, _ in results)
    bad = {s: n for s, n in statuses.items() if s not in (200, 404, 409)}
    if bad:
        raise AssertionError(f"unexpected statuses {bad}")

    deleted_by: dict[UUID, UUID] = {}
    dropped = 0
    for master, duplicates, status, payload in results:
        if status != 200:
            continue
        dropped += payload["junction_rows_dropped"]["opportunity_contacts"]
        for duplicate in duplicates:
            if duplicate in deleted_by:
                raise AssertionError(f"{duplicate} deleted by two merges")
            deleted_by[duplicate] = master

    def rep(contact: UUID) -> UUID:
        while contact in deleted_by:
            contact = deleted_by[contact]
        return contact

    surviving = {r["id"] for r in await conn.fetch(f"SELECT id FROM {s}.contacts")}
    if surviving != set(refs_before) - set(deleted_by):
        raise AssertionError("contacts deleted that no successful merge named")
    notes_after = dict(
        tuple(r) for r in await conn.fetch(f"SELECT id, contact_id FROM {s}.notes")
    )
    if set(notes_after) != set(notes_before):
        raise AssertionError("a note was lost")
    if any(notes_after[n] != rep(c) for n, c in notes_before.items()):
        raise AssertionError("a note does not point at its contact's survivor")
    links_after = [
        tuple(r)
        for r in await conn.fetch(
            f"SELECT opportunity_id, contact_id FROM {s}.opportunity_contacts"
        )
    ]
    if set(links_after) != {(o, rep(c)) for o, c in links_before}:
        raise AssertionError("opportunity links differ from the merged identities")
    if len(links_after) != len(links_before) - dropped:
        raise AssertionError("dropped link count differs from the responses")
    refs_after = dict(
        tuple(r)
        for r in await conn.fetch(f"SELECT id, referred_by_id FROM {s}.contacts")
    )
    for contact in surviving:
        original = refs_before[contact]
        expected = rep(original) if original is not None else None
        if refs_after[contact] != (None if expected == contact else expected):
            raise AssertionError(f"referred_by_id of {contact} is wrong")
    audits = await conn.fetchval(f"SELECT count(*) FROM {s}.merge_audit")
    if audits - audits_before != statuses[200]:
        raise AssertionError("audit entries differ from successful merges")
    return Throughput(seconds, statuses, statuses[200] / seconds, Timing(samples))


async def main(args: argparse.Namespace) -> int:
    server = args.server or start_embedded(ROOT / ".dupes-bench")
    probe = await asyncpg.connect(server)
    try:
        version = await probe.fetchval("SHOW server_version")
    finally:
        await probe.close()
    parts = urlsplit(server)
    print(f"PostgreSQL {version} at {parts.hostname}:{parts.port}, database {DATABASE}")
    dsn, schema, token = await prepare(server)
    conn = await asyncpg.connect(dsn)
    seeder = Seeder(conn, schema, args.seed)
    summary: dict[str, Any] = {"postgresql": version}
    try:
        async with running_server(dsn, args.workers, args.pool_size) as (session, base):
            print(
                f"dupes serve: {args.workers} worker(s), pool of {args.pool_size} "
                "connections each"
            )
            for name, duplicates, per_duplicate, runs in (
                ("small", 1, 20, args.small_runs),
                ("large", 100, 100, args.large_runs),
            ):
                timing = await latency(
                    conn, seeder, session, base, token, duplicates, per_duplicate, runs
                )
                related = duplicates * per_duplicate
                print(
                    f"{name}: {duplicates} duplicate(s), {related} related rows, "
                    f"{runs} merges: median {timing.median_ms:.1f} ms, "
                    f"p99 {timing.p99_ms:.1f} ms (checked)"
                )
                summary[name] = {
                    "duplicates": duplicates,
                    "related_rows": related,
                    "runs": runs,
                    "median_ms": round(timing.median_ms, 1),
                    "p99_ms": round(timing.p99_ms, 1),
                }
            result = await throughput(
                conn, seeder, session, base, token, args.clients, args.groups
            )
            print(
                f"throughput: {args.clients} clients, {sum(result.statuses.values())} "
                f"requests in {result.seconds:.1f} s: "
                f"{result.merges_per_second:.1f} merges/s "
                f"(statuses {dict(sorted(result.statuses.items()))}; "
                f"latency median {result.latency.median_ms:.1f} ms, "
                f"p99 {result.latency.p99_ms:.1f} ms); every invariant checked"
            )
            summary["throughput"] = {
                "clients": args.clients,
                "seconds": round(result.seconds, 2),
                "statuses": dict(result.statuses),
                "merges_per_second": round(result.merges_per_second, 1),
                "median_ms": round(result.latency.median_ms, 1),
                "p99_ms": round(result.latency.p99_ms, 1),
            }
    finally:
        await conn.close()
    print(json.dumps(summary))
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="DSN of a PostgreSQL server to create the bench database on "
        "(default: BENCH_DATABASE_URL, else the embedded server in .dupes-bench)",
    )
    parser.add_argument("--small-runs", type=int, default=200)
    parser.add_argument("--large-runs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
