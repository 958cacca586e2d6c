"""A TCP proxy in front of PostgreSQL that a test can cut and restore, to play an
outage of the database without stopping the server other tests share."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit, urlunsplit


class PgProxy:
    def __init__(self, upstream_dsn: str) -> None:
        parts = urlsplit(upstream_dsn)
        query = parse_qs(parts.query)
        self._socket_dir = query.get("host", [None])[0]
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 5432
        self._upstream = parts
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def dsn(self) -> str:
        """The upstream DSN, pointed at the proxy."""
        user = self._upstream.username or "postgres"
        return urlunsplit(
            ("postgresql", f"{user}@127.0.0.1:{self.port}", self._upstream.path, "", "")
        )

    async def _open_upstream(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._socket_dir and self._socket_dir.startswith("/"):
            path = f"{self._socket_dir}/.s.PGSQL.{self._port}"
            return await asyncio.open_unix_connection(path)
        return await asyncio.open_connection(self._host, self._port)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await self._open_upstream()
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer)
        )

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port or 0, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuses new connections and drops every open one."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def close(self) -> None:
        await self.cut()
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)
