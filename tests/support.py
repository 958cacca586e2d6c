"""Helpers shared by the tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def with_database(dsn: str, name: str) -> str:
    """The same server's DSN, naming another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(body: Any) -> str:
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str)
    assert error["message"]
    return str(error["code"])
