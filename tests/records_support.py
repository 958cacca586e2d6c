"""Helpers of the records, import and keys tests: calls to the API as one token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support import bearer

_NO_BODY = object()


@dataclass
class Api:
    """The service as one token sees it; each call returns (status, JSON or None)."""

    client: TestClient[Any, Any]
    token: str

    async def call(
        self, method: str, path: str, body: Any = _NO_BODY
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"headers": bearer(self.token)}
        if body is not _NO_BODY:
            kwargs["json"] = body
        async with self.client.request(method, path, **kwargs) as response:
            if response.status == 204:
                return 204, None
            return response.status, await response.json()

    async def create(self, object_name: str, **fields: Any) -> dict[str, Any]:
        status, body = await self.call("POST", f"/api/v1/records/{object_name}", fields)
        assert status == 201, body
        assert isinstance(body, dict)
        return body

    async def get(self, object_name: str, record_id: str) -> tuple[int, Any]:
        return await self.call("GET", f"/api/v1/records/{object_name}/{record_id}")

    async def list_all(self, object_name: str, query: str = "") -> list[dict[str, Any]]:
        """Every record, page by page, following nextCursor."""
        seen: list[dict[str, Any]] = []
        path = f"/api/v1/records/{object_name}?limit=100{query}"
        cursor: str | None = None
        while True:
            status, body = await self.call(
                "GET", path + (f"&cursor={cursor}" if cursor else "")
            )
            assert status == 200, body
            seen.extend(body["data"])
            cursor = body["nextCursor"]
            if cursor is None:
                return seen
