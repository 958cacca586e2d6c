"""Record ids that sort in the order the service creates them."""

from __future__ import annotations

import os
import time
import uuid

_last_uuid = 0


def time_ordered_uuid() -> uuid.UUID:
    """A version 7 UUID: milliseconds since the epoch, then random bits.

    Ids of one import sort by creation, so a large load appends to the id indexes
    of the table and of the match keys instead of writing all over them. Within a
    process each id is greater than the one before (RFC 9562, monotonic random): the
    rows of one file share their transaction's ``created_at``, and their ids keep
    them in file order, the order detection lists them in.
    """
    global _last_uuid
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10))
    value = value & ~(0xF << 76) | (0x7 << 76)  # version 7
    value = value & ~(0x3 << 62) | (0x2 << 62)  # RFC 4122 variant
    if value <= _last_uuid:
        # Same millisecond (or a clock step back): count on from the last id. The
        # increment lands in the random bits below the variant, so the version and
        # variant stay; their 62 bits will not run out within one process.
        value = _last_uuid + 1
    _last_uuid = value
    return uuid.UUID(int=value)
