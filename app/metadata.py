"""The object model of an organization, read from the metadata tables.

Services ask this module which objects, fields and relations exist; none of them names
a table or a column of its own. Adding an object is adding its table and its metadata
rows in a per-organization migration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

import asyncpg

from app.errors import InvalidObject
from app.matching.normalize import MATCH_FIELDS, MatchField, ObjectKind
from app.sql import sql

FieldType = Literal[
    "text",
    "email",
    "email_list",
    "phone",
    "phone_list",
    "linkedin",
    "number",
    "date",
    "relation",
]
LIST_TYPES: frozenset[str] = frozenset({"email_list", "phone_list"})


@dataclass(frozen=True, slots=True)
class FieldMeta:
    name: str
    type: FieldType
    required: bool
    match_field: MatchField | None
    target_object: str | None

    @property
    def is_list(self) -> bool:
        return self.type in LIST_TYPES

    @property
    def is_relation(self) -> bool:
        return self.type == "relation"


@dataclass(frozen=True, slots=True)
class LinkMeta:
    """One direction of a MANY_TO_MANY relation through a junction table."""

    name: str
    target_object: str
    junction_table: str
    source_column: str
    target_column: str
    extra_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    name: str
    kind: ObjectKind
    table: str
    label: str
    fields: tuple[FieldMeta, ...]
    links: tuple[LinkMeta, ...] = ()
    _by_name: dict[str, FieldMeta] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.fields})

    def field(self, name: str) -> FieldMeta | None:
        return self._by_name.get(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def relations(self) -> tuple[FieldMeta, ...]:
        return tuple(f for f in self.fields if f.is_relation)

    def link(self, target_object: str) -> LinkMeta | None:
        for link in self.links:
            if link.name == target_object:
                return link
        return None

    def match_sources(self, match_field: MatchField) -> tuple[FieldMeta, ...]:
        """The fields that feed one match key, in declaration order."""
        return tuple(f for f in self.fields if f.match_field == match_field)

    @property
    def match_fields(self) -> tuple[MatchField, ...]:
        """The match fields this object can match on, in the canonical order."""
        present = {f.match_field for f in self.fields if f.match_field is not None}
        if self.kind == "person" and not {"first_name", "last_name"} <= set(
            f.name for f in self.fields if f.match_field == "name"
        ):
            present.discard("name")
        return tuple(m for m in MATCH_FIELDS if m in present)


@dataclass(frozen=True, slots=True)
class OrgModel:
    """Every object of one organization."""

    org_id: UUID
    objects: dict[str, ObjectMeta]

    def object(self, name: str) -> ObjectMeta:
        meta = self.objects.get(name)
        if meta is None:
            raise InvalidObject(
                f"unknown object {name!r}; known objects: {', '.join(self.objects)}"
            )
        return meta


async def load_model(conn: asyncpg.Connection, org_id: UUID) -> OrgModel:
    objects = await conn.fetch(sql("metadata_objects"), org_id)
    fields = await conn.fetch(sql("metadata_fields"), org_id)
    links = await conn.fetch(sql("metadata_links"), org_id)
    by_object: dict[str, ObjectMeta] = {}
    for obj in objects:
        by_object[obj["name"]] = ObjectMeta(
            name=obj["name"],
            kind=obj["kind"],
            table=obj["table_name"],
            label=obj["label"],
            fields=tuple(
                FieldMeta(
                    name=f["name"],
                    type=f["type"],
                    required=f["required"],
                    match_field=f["match_field"],
                    target_object=f["target_object"],
                )
                for f in fields
                if f["object_name"] == obj["name"]
            ),
            links=tuple(
                LinkMeta(
                    name=link["name"],
                    target_object=link["target_object"],
                    junction_table=link["junction_table"],
                    source_column=link["source_column"],
                    target_column=link["target_column"],
                    extra_columns=tuple(link["extra_columns"]),
                )
                for link in links
                if link["object_name"] == obj["name"]
            ),
        )
    return OrgModel(org_id, by_object)


class ModelCache:
    """Object models per organization, read once per process.

    Metadata changes only through migrations, which run before the service starts.
    """

    def __init__(self) -> None:
        self._models: dict[UUID, OrgModel] = {}

    async def get(self, conn: asyncpg.Connection, org_id: UUID) -> OrgModel:
        model = self._models.get(org_id)
        if model is None:
            model = await load_model(conn, org_id)
            self._models[org_id] = model
        return model
