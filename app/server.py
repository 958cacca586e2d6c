"""Running the service: database, migrations, first-start bootstrap, then HTTP.

``serve`` prepares the database once, in the process the command started, and then
serves HTTP: in that same process with one worker, or in N worker processes that each
bind the same port with ``SO_REUSEPORT``, so the kernel spreads new connections over
them. Each worker has its own event loop and its own connection pool. The parent only
supervises: it forwards SIGTERM and SIGINT, waits for the workers to finish their
in-flight requests, restarts a worker that dies on its own, and stops the embedded
PostgreSQL if it started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

import asyncpg
from aiohttp import web

from app import migrations
from app.db import embedded_running, resolve_dsn, stop_embedded
from app.logs import configure as configure_logging
from app.services import accounts
from app.services.accounts import IssuedToken
from app.settings import Settings
from app.web.app import create_app
from app.web.protocol import AppRunner

log = logging.getLogger("dupes.server")

# Seconds a stopping worker gives its in-flight requests before cancelling them.
SHUTDOWN_TIMEOUT = 30.0
# A worker that dies sooner than this after its start is failing to start, not
# crashing at random; after a few of those in a row the supervisor gives up.
_EARLY_EXIT_SECONDS = 5.0
_EARLY_EXIT_LIMIT = 3
# Grace the parent adds to the workers' own shutdown timeout before it kills them.
_KILL_GRACE = 15.0

AppFactory = Callable[[Settings, str], web.Application]


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


def check_port_free(host: str, port: int) -> None:
    """Raises OSError when something already listens on host:port.

    Workers bind with SO_REUSEPORT, which would let them silently share the port with
    an older instance run by the same user; a probe without that option refuses to.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Connections of a previous run in TIME_WAIT do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


async def run_worker(
    settings: Settings,
    dsn: str,
    *,
    reuse_port: bool,
    on_ready: Callable[[], None] | None = None,
    factory: AppFactory = create_app,
    parent_pid: int | None = None,
) -> int:
    """Serves HTTP until SIGTERM or SIGINT, then finishes in-flight requests.

    With `parent_pid`, it also stops when that process is gone, so that workers never
    outlive a supervisor that was killed outright. Returns the process exit code: 0
    after a clean stop, 1 when it could not start.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watchdog = (
        asyncio.create_task(_watch_parent(parent_pid, stop))
        if parent_pid is not None
        else None
    )
    runner = AppRunner(
        factory(settings, dsn),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    try:
        try:
            # Runs the application's startup: the pool is created here.
            await runner.setup()
            site = web.TCPSite(
                runner, settings.host, settings.port, reuse_port=reuse_port
            )
            await site.start()
        except (OSError, asyncpg.PostgresError) as exc:
            log.error("worker cannot start: %s", exc)
            return 1
        log.info("worker ready", extra={"port": settings.port})
        if on_ready is not None:
            on_ready()
        await stop.wait()
        log.info("worker stopping")
    finally:
        if watchdog is not None:
            watchdog.cancel()
        # Stops accepting, lets in-flight requests finish (up to SHUTDOWN_TIMEOUT),
        # then runs the cleanup contexts, which close the pool.
        await runner.cleanup()
    log.info("worker stopped")
    return 0


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    # An orphan is re-parented, so a changed parent id means the supervisor is gone.
    while True:
        await asyncio.sleep(1.0)
        if os.getppid() != parent_pid:
            break
    log.warning("supervisor is gone; stopping")
    stop.set()


def worker_main(
    settings: Settings,
    dsn: str,
    ready: Connection,
    parent_pid: int,
    factory: AppFactory = create_app,
) -> None:
    """Entry point of one worker process."""
    configure_logging(settings.log_level)
    code = asyncio.run(
        run_worker(
            settings,
            dsn,
            reuse_port=True,
            on_ready=lambda: ready.send(os.getpid()),
            factory=factory,
            parent_pid=parent_pid,
        )
    )
    sys.exit(code)


class Supervisor:
    """Starts N worker processes on one port and keeps them until told to stop."""

    def __init__(
        self,
        settings: Settings,
        dsn: str,
        workers: int,
        factory: AppFactory = create_app,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.dsn = dsn
        self.count = workers
        self.factory = factory
        self.announce = announce
        # "spawn": every worker starts from a fresh interpreter, so nothing of the
        # parent's event loop, connections or threads leaks into it.
        self._context = multiprocessing.get_context("spawn")
        self._ready_reader, self._ready_writer = self._context.Pipe(duplex=False)
        self._workers: dict[int, tuple[BaseProcess, float]] = {}
        self._stopping = False
        self._early_exits = 0

    def _start_one(self, slot: int) -> None:
        process = self._context.Process(
            target=worker_main,
            args=(
                self.settings,
                self.dsn,
                self._ready_writer,
                os.getpid(),
                self.factory,
            ),
            name=f"dupes-worker-{slot}",
        )
        process.start()
        self._workers[slot] = (process, time.monotonic())

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        """Runs until SIGTERM or SIGINT, or until the workers cannot start."""
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for slot in range(self.count):
                self._start_one(slot)
            code = self._supervise()
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        failed = [p.exitcode for p, _ in self._workers.values() if p.exitcode != 0]
        return code if code else (1 if failed else 0)

    def _supervise(self) -> int:
        pending_ready = self.count
        while not self._stopping:
            sentinels = [process.sentinel for process, _ in self._workers.values()]
            # The timeout keeps the loop responsive to the stop flag set by a signal.
            for ready in wait([self._ready_reader, *sentinels], timeout=0.5):
                if ready is self._ready_reader:
                    self._ready_reader.recv()
                    pending_ready -= 1
                    if pending_ready == 0 and self.announce is not None:
                        self.announce(
                            f"dupes listening on http://{self.settings.host}:"
                            f"{self.settings.port} ({self.count} workers, "
                            f"parent pid {os.getpid()})"
                        )
            for slot, (process, started) in list(self._workers.items()):
                if process.is_alive() or self._stopping:
                    continue
                process.join()
                lived = time.monotonic() - started
                log.warning(
                    "worker exited",
                    extra={"worker_pid": process.pid, "exit_code": process.exitcode},
                )
                if lived < _EARLY_EXIT_SECONDS:
                    self._early_exits += 1
                    if self._early_exits >= _EARLY_EXIT_LIMIT or pending_ready > 0:
                        log.error("workers cannot start; stopping")
                        return 1
                else:
                    self._early_exits = 0
                self._start_one(slot)
        return 0

    def _stop_all(self) -> None:
        alive = [p for p, _ in self._workers.values() if p.is_alive()]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid or 0, signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT + _KILL_GRACE
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker did not stop in time; killing it")
                process.kill()
                process.join()


def serve(settings: Settings, workers: int = 1) -> int:
    """Prepares the database once, then serves HTTP with `workers` processes."""
    if workers < 1:
        print("dupes: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        check_port_free(settings.host, settings.port)
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else str(exc)
        print(
            f"dupes: cannot listen on {settings.host}:{settings.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    started_embedded = settings.database_url is None and not embedded_running(
        settings.data_dir
    )
    dsn = resolve_dsn(settings)
    try:
        issued = asyncio.run(prepare_database(dsn, settings))
        if issued is not None:
            print(first_start_banner(issued, settings), flush=True)
        if workers == 1:
            return asyncio.run(
                run_worker(
                    settings,
                    dsn,
                    reuse_port=False,
                    on_ready=lambda: print(
                        f"dupes listening on http://{settings.host}:{settings.port}",
                        flush=True,
                    ),
                )
            )
        supervisor = Supervisor(
            settings, dsn, workers, announce=lambda line: print(line, flush=True)
        )
        return supervisor.run()
    finally:
        if started_embedded:
            stop_embedded(settings.data_dir)
