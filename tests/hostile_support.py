"""Helpers of the hostile-input tests: raw requests, and the checks every answer to
bad input must pass (a 4xx in the error shape, never a 5xx)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support import bearer, error_code

Client = TestClient[Any, Any]


async def send(
    client: Client,
    method: str,
    path: str,
    token: str | None,
    data: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One raw request; returns the status and the JSON body (None when empty)."""
    sent: dict[str, str] = {"Content-Type": "application/json"}
    if token is not None:
        sent.update(bearer(token))
    sent.update(headers or {})
    async with client.request(method, path, data=data, headers=sent) as response:
        raw = await response.read()
        if not raw:
            return response.status, None
        return response.status, json.loads(raw, parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    # Python writes and reads NaN and Infinity; JSON has neither, so clients choke.
    raise AssertionError(f"the response holds {constant}, which is not JSON")


def refused(status: int, body: Any, expected: int | None = None) -> str:
    """Checks a refusal: a 4xx in the error shape; returns its code."""
    assert 400 <= status < 500, (status, body)
    if expected is not None:
        assert status == expected, (status, body)
    return error_code(body)


def not_a_server_error(status: int, body: Any) -> None:
    """Any answer but a 5xx; a non-2xx answer has the error shape."""
    assert status < 500, (status, body)
    if status >= 400:
        error_code(body)
