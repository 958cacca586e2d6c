"""Field values: checked by type, the one set of rules for the API and every import.

A record arrives as JSON values (the API, a JSONL file) or as text cells (a CSV file,
turned into JSON values by `from_text` first). `clean_record` checks it against the
object's metadata and returns the values PostgreSQL stores, as Python objects that
asyncpg writes directly (`str`, `Decimal`, `date`, `UUID`, `list[str]`).

Values are stored as given: matching works on keys and never rewrites data. Text that
PostgreSQL cannot hold (a NUL character, a lone surrogate that JSON allows) is refused
here, so that no input reaches the database only to fail there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from app.errors import ValidationFailed
from app.matching.normalize import email_key
from app.metadata import FieldMeta, ObjectMeta

# Lengths in characters. Phone and LinkedIn limits come from the API contract; the
# others are generous bounds on what a person types into one CRM field.
TEXT_MAX = 10_000
EMAIL_MAX = 512
PHONE_MAX = 64
LINKEDIN_MAX = 2048
LIST_MAX_ITEMS = 50
# PostgreSQL's numeric holds far more; these bounds keep a number a number a CRM
# would show, and keep a pathological value from costing the server anything.
NUMBER_MAX_ABS = Decimal(10) ** 18
NUMBER_MAX_DIGITS = 38
NUMBER_MAX_PLACES = 20
# Fields the service writes itself; a body may not set them.
READ_ONLY = frozenset({"id", "created_at", "updated_at"})

# Matched with fullmatch: `$` would also accept a trailing line break, and `\d` any
# Unicode digit, neither of which the parsers behind these patterns take.
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LIST_SEPARATOR = re.compile(r"[;\n]")
_ITEM_TYPE = {"email_list": "email", "phone_list": "phone"}
_NULL_WHEN_BLANK = frozenset({"number", "date", "relation"})


class FieldProblem(Exception):
    """One field's value is refused; the message says why, without echoing it."""


def _distinct_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: with a key given twice, which one
    counts is a guess (a repeated `dry_run` must never decide a merge)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key {key!r} appears more than once in an object")
            seen.add(key)
    return result


def load_json(text: str | bytes) -> Any:
    """Parses request and file JSON; raises ValueError for invalid JSON or a key
    repeated in one object, RecursionError for nesting deeper than the parser goes."""
    return json.loads(text, object_pairs_hook=_distinct_keys)


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str

    def as_detail(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def is_blank(value: Any) -> bool:
    """Null, or a string of white space only: both mean "no value"."""
    return value is None or (isinstance(value, str) and not value.strip())


def parse_uuid(text: str) -> UUID | None:
    """A UUID in its usual 36-character form, or None."""
    if not isinstance(text, str) or not _UUID.fullmatch(text):
        return None
    return UUID(text)


def _storable_text(value: str, limit: int) -> str:
    if len(value) > limit:
        raise FieldProblem(f"is longer than {limit} characters")
    if "\x00" in value:
        raise FieldProblem("holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FieldProblem("holds text that is not valid Unicode") from exc
    return value


def _string(value: Any, kind: str) -> str:
    if not isinstance(value, str):
        raise FieldProblem(f"must be a string ({kind})")
    return value


def _text_of_type(value: Any, type_: str) -> str:
    """A text-like value (text, email, phone, linkedin), checked; stored as given."""
    if type_ == "text":
        return _storable_text(_string(value, "text"), TEXT_MAX)
    if type_ == "phone":
        return _storable_text(_string(value, "phone"), PHONE_MAX)
    if type_ == "linkedin":
        return _storable_text(_string(value, "LinkedIn URL or name"), LINKEDIN_MAX)
    text = _storable_text(_string(value, "email address"), EMAIL_MAX)
    if text.strip() and email_key(text) is None:
        raise FieldProblem("must be an email address: one @ with text on both sides")
    return text


def _number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise FieldProblem("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldProblem("must be a finite number")
    # repr of a float is its shortest exact spelling: 0.1 stays 0.1.
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise FieldProblem("must be a finite number")
    # copy_abs, not abs(): abs() rounds to the context and overflows (an exception)
    # on an exponent such as 1e999999999.
    if number.copy_abs() >= NUMBER_MAX_ABS:
        raise FieldProblem("must be smaller than 10^18 in magnitude")
    digits = number.as_tuple()
    if len(digits.digits) > NUMBER_MAX_DIGITS:
        raise FieldProblem(f"must have at most {NUMBER_MAX_DIGITS} digits")
    if isinstance(digits.exponent, int) and -digits.exponent > NUMBER_MAX_PLACES:
        raise FieldProblem(f"must have at most {NUMBER_MAX_PLACES} decimal places")
    return number


def _date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise FieldProblem("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise FieldProblem("must be a real calendar date (YYYY-MM-DD)") from exc


def _relation(value: Any, target: str) -> UUID:
    parsed = parse_uuid(value) if isinstance(value, str) else None
    if parsed is None:
        raise FieldProblem(f"must be the id (a UUID) of a record of {target}")
    return parsed


def _list(value: Any, item_type: str) -> list[str]:
    if not isinstance(value, list):
        raise FieldProblem("must be a JSON array")
    if len(value) > LIST_MAX_ITEMS:
        raise FieldProblem(f"must hold at most {LIST_MAX_ITEMS} items")
    items: list[str] = []
    for position, item in enumerate(value):
        try:
            items.append(_text_of_type(item, item_type))
        except FieldProblem as exc:
            raise FieldProblem(f"item {position} {exc}") from exc
    return items


def clean_value(field: FieldMeta, value: Any) -> Any:
    """The value to store for one field, or `FieldProblem` saying why not.

    Blank means null for types that cannot hold a blank string (number, date,
    relation, lists); text types keep a blank string as given. Required fields
    refuse both.
    """
    if is_blank(value):
        if field.required:
            raise FieldProblem("is required")
        if value is None or field.is_list or field.type in _NULL_WHEN_BLANK:
            return None
    if field.type in ("text", "email", "phone", "linkedin"):
        return _text_of_type(value, field.type)
    if field.type in _ITEM_TYPE:
        return _list(value, _ITEM_TYPE[field.type])
    if field.type == "number":
        return _number(value)
    if field.type == "date":
        return _date(value)
    return _relation(value, field.target_object or "the target object")


def clean_record(
    obj: ObjectMeta, data: Mapping[str, Any], *, partial: bool = False
) -> dict[str, Any]:
    """A record's values checked against its object; raises one ValidationFailed.

    Without `partial` (create, PUT) every field is in the result, absent ones as null,
    and required fields must be given. With `partial` (PATCH) only the given fields
    are. Every problem is listed in the error's details, one per field.
    """
    problems: list[Problem] = []
    for name in data:
        if name in READ_ONLY:
            problems.append(Problem(name, "is read-only: the service sets it"))
        elif obj.field(name) is None:
            problems.append(
                Problem(name, f"is not a field of {obj.name}; see /api/v1/schema")
            )
    cleaned: dict[str, Any] = {}
    for field in obj.fields:
        if field.name not in data:
            if partial:
                continue
            if field.required:
                problems.append(Problem(field.name, "is required"))
                continue
        try:
            cleaned[field.name] = clean_value(field, data.get(field.name))
        except FieldProblem as exc:
            problems.append(Problem(field.name, str(exc)))
    if problems:
        raise ValidationFailed(
            "; ".join(f"{p.field} {p.message}" for p in problems),
            [p.as_detail() for p in problems],
        )
    return cleaned


def from_text(field: FieldMeta, text: str | None) -> Any:
    """A text cell (CSV, a query parameter) as the JSON value `clean_value` expects.

    An empty cell is null. A number is parsed, a list is a JSON array or items split
    on `;` or line breaks. Text that does not parse is passed on unchanged, so that
    `clean_value` refuses it with its usual message.
    """
    if text is None or text == "":
        return None
    if field.type == "number":
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            return text
        return number if number.is_finite() else text
    if field.is_list:
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                parsed = load_json(stripped)
            except (ValueError, RecursionError):
                # RecursionError: brackets nested deeper than the parser goes.
                return text
            return parsed
        return [item for item in _LIST_SEPARATOR.split(text) if item.strip()]
    return text


def to_json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Cleaned values as JSON for PostgreSQL's `jsonb_populate_record`.

    Numbers travel as strings so that their digits reach `numeric` exactly.
    """
    return {name: _json_scalar(value) for name, value in values.items()}


def _json_scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | UUID):
        return str(value)
    return value


def dump_json(values: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> str:
    """One JSON text of cleaned values (a record, or a list of records)."""
    if isinstance(values, Mapping):
        return json.dumps(to_json_values(values), ensure_ascii=False)
    return json.dumps([to_json_values(v) for v in values], ensure_ascii=False)


def filter_value(field: FieldMeta, text: str) -> Any:
    """A list filter's query value for one field, typed like the column.

    Text-like fields take any text: a filter looks for what is stored, and rows
    loaded by other systems may hold values the API would refuse. Numbers, dates and
    relations must parse, since the comparison is typed.
    """
    if is_blank(text):
        raise FieldProblem("needs a value to compare with")
    if field.type in ("text", "email", "phone", "linkedin"):
        return _storable_text(text, max(TEXT_MAX, LINKEDIN_MAX))
    value = from_text(field, text)
    if field.is_list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FieldProblem("must be a JSON array of strings or items split by ;")
        return [_storable_text(item, TEXT_MAX) for item in value]
    return clean_value(field, value)


def clean_link_value(value: Any) -> str | None:
    """An extra field of a MANY_TO_MANY link (such as `role`): text or null."""
    if value is None:
        return None
    return _storable_text(_string(value, "text"), TEXT_MAX)
