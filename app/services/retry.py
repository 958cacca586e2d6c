"""Writes that lose a lock race to another transaction run again.

PostgreSQL breaks a deadlock by aborting one of the transactions in it, and a
serializable or repeatable-read transaction can fail on a concurrent update. The
aborted transaction changed nothing, so the whole service call that ran it can simply
run again; after a few attempts the error goes up and is answered 409.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import asyncpg

log = logging.getLogger("dupes.records")

P = ParamSpec("P")
T = TypeVar("T")

ATTEMPTS = 4
# A deadlock takes PostgreSQL's deadlock_timeout (1 s by default) to be found, so a
# short random pause is enough for the winner to finish.
_PAUSE = 0.05


def retried_on_contention(
    func: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """Runs `func`, one whole transaction, again when it loses a deadlock or a
    serialization race."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, ATTEMPTS):
            try:
                return await func(*args, **kwargs)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
                log.info(
                    "%s lost a lock race (attempt %s), running it again: %s",
                    func.__name__,
                    attempt,
                    exc,
                )
            await asyncio.sleep(random.uniform(0, _PAUSE * attempt))
        return await func(*args, **kwargs)

    return wrapper
