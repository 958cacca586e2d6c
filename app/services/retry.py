"""Transactions that lose a lock race to another transaction run again.

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

log = logging.getLogger("dupes.retry")

P = ParamSpec("P")
T = TypeVar("T")

ATTEMPTS = 4
# A deadlock takes PostgreSQL's deadlock_timeout (1 s by default) to be found, so a
# short random pause is enough for the winner to finish.
_PAUSE = 0.05

CONTENTION_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    name: str,
    errors: tuple[type[Exception], ...] = CONTENTION_ERRORS,
) -> tuple[T, int]:
    """Runs `call`, one whole transaction, until it does not raise one of `errors`,
    at most `ATTEMPTS` times; returns its result and the attempts it took."""
    for attempt in range(1, ATTEMPTS):
        try:
            return await call(), attempt
        except errors as exc:
            log.info(
                "%s lost a lock race (attempt %s), running it again: %s",
                name,
                attempt,
                exc,
            )
        await asyncio.sleep(random.uniform(0, _PAUSE * attempt))
    try:
        return await call(), ATTEMPTS
    except errors:
        log.warning("%s gave up after %s attempts", name, ATTEMPTS)
        raise


def retried_on_contention(
    func: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """`func` run again when it loses a deadlock or a serialization race."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        result, _ = await with_retries(lambda: func(*args, **kwargs), func.__name__)
        return result

    return wrapper
