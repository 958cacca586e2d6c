"""Records as the API shows them: `id`, every field, and UTC timestamps with `Z`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from app.metadata import ObjectMeta

# Integers up to this many digits are shown exactly; larger ones as a double.
_INTEGER_DIGITS = 300


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with `Z`; microseconds only when there are any."""
    moment = moment.astimezone(UTC)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def json_value(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


def _number(value: Decimal) -> int | float | None:
    """A numeric as a JSON number, or null for one JSON cannot carry.

    The API stores finite numbers below 10^18 only, but rows written by other systems
    may hold NaN, an infinity or a magnitude beyond a double; shown as they are they
    would break the response (or its JSON), so they are shown as null.
    """
    if not value.is_finite():
        return None
    if value.adjusted() < _INTEGER_DIGITS and value == value.to_integral_value():
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def record_columns(obj: ObjectMeta) -> tuple[str, ...]:
    """The columns a record is read with, in the order the API shows them."""
    return ("id", *obj.field_names, "created_at", "updated_at")


def to_api(obj: ObjectMeta, row: Mapping[str, Any]) -> dict[str, Any]:
    """One stored row as the records API returns it."""
    return {column: json_value(row[column]) for column in record_columns(obj)}
