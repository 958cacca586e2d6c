"""Named SQL queries, loaded once from the `sql/` folder.

Each file holds the queries of one area. A query starts with a header::

    -- name: find_token
    -- Finds a live token by the hash of its secret.
    SELECT ...

Queries that must name an organization's schema or an object's table hold
placeholders such as ``{{schema}}`` and ``{{table}}``. They are filled only by
:func:`render`, only with identifiers from the service's own metadata, each quoted by
:func:`quote_ident`. Request text never reaches SQL except as a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
_IDENT_SAFE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    area: str
    purpose: str
    text: str

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(_PLACEHOLDER.findall(self.text))


def quote_ident(name: str) -> str:
    """Quote one SQL identifier. The only way an identifier is put into SQL text."""
    if not name or "\x00" in name:
        raise ValueError("an SQL identifier must be non-empty text without NUL")
    return '"' + name.replace('"', '""') + '"'


def _parse(area: str, text: str) -> list[Query]:
    matches = list(_HEADER.finditer(text))
    queries: list[Query] = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip("\n")
        lines = body.splitlines()
        purpose_lines: list[str] = []
        while lines and lines[0].startswith("--"):
            purpose_lines.append(lines.pop(0).lstrip("-").strip())
        sql = "\n".join(lines).strip().rstrip(";").strip()
        if not purpose_lines or not sql:
            raise ValueError(f"query {match.group(1)} in {area}.sql needs a purpose")
        queries.append(Query(match.group(1), area, " ".join(purpose_lines), sql))
    return queries


def load(directory: Path = SQL_DIR) -> dict[str, Query]:
    """Read every `*.sql` file of the folder; query names are unique across files."""
    queries: dict[str, Query] = {}
    for path in sorted(directory.glob("*.sql")):
        for query in _parse(path.stem, path.read_text(encoding="utf-8")):
            if query.name in queries:
                raise ValueError(f"query {query.name} is defined twice")
            queries[query.name] = query
    return queries


QUERIES = load()


def sql(name: str) -> str:
    """The text of a query without placeholders."""
    query = QUERIES[name]
    if query.placeholders:
        raise ValueError(f"query {name} names identifiers; use render()")
    return query.text


def render(name: str, **identifiers: str | Sequence[str]) -> str:
    """The text of a query with its identifier placeholders filled and quoted.

    A placeholder given a sequence becomes a comma-separated list of quoted
    identifiers, for column lists that come from the metadata.
    """
    query = QUERIES[name]
    missing = query.placeholders - identifiers.keys()
    if missing:
        raise ValueError(f"query {name} needs {sorted(missing)}")

    def fill(match: re.Match[str]) -> str:
        value = identifiers[match.group(1)]
        if isinstance(value, str):
            return quote_ident(value)
        if not value:
            raise ValueError(f"query {name}: {match.group(1)} is an empty list")
        return ", ".join(quote_ident(item) for item in value)

    return _PLACEHOLDER.sub(fill, query.text)


def is_plain_identifier(name: str) -> bool:
    """True for the lower-case identifiers the service itself creates."""
    return bool(_IDENT_SAFE.match(name)) and len(name) <= 63
