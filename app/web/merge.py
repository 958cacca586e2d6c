"""The merge action of `POST /api/v1/duplicates`."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from aiohttp import web
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.services import merge as service
from app.services.values import parse_uuid
from app.web.keys import DATABASE, MODELS, PRINCIPAL
from app.web.routing import validate


def _record_id(value: Any) -> Any:
    """Only the 36-character form that ids are shown in, as in paths and relation
    fields; braces, `urn:uuid:` and bare hex are refused, not read."""
    if isinstance(value, str) and parse_uuid(value) is None:
        raise PydanticCustomError(
            "uuid_form",
            "must be a UUID written like 550e8400-e29b-41d4-a716-446655440000",
        )
    return value


RecordId = Annotated[UUID, BeforeValidator(_record_id)]


class MergeRequest(BaseModel):
    """Merge duplicates into a master record and delete them."""

    # Unknown fields are refused, so that a typo such as `merge_stratgy` never falls
    # back to the default silently.
    model_config = ConfigDict(extra="forbid")

    action: Literal["merge"]
    object_name: str = Field(
        strict=True,
        max_length=100,
        description="The object holding the records, e.g. contacts.",
    )
    master_id: RecordId = Field(description="The record to keep.")
    duplicate_ids: list[RecordId] = Field(
        min_length=1,
        max_length=service.MAX_DUPLICATES,
        description="1 to 100 distinct records to merge into the master and delete.",
    )
    merge_strategy: Literal["keep_master", "fill_blanks"] = Field(
        default="keep_master",
        description=(
            "keep_master keeps every master value; fill_blanks fills the master's "
            "blank fields (null, empty or white-space text, empty list or object) "
            "with the first non-blank value in duplicate_ids order."
        ),
    )
    dry_run: StrictBool = Field(
        default=False,
        description="Run the whole merge, report it with the master as it would be, "
        "and roll everything back.",
    )

    @field_validator("duplicate_ids")
    @classmethod
    def _distinct(cls, ids: list[UUID]) -> list[UUID]:
        seen: set[UUID] = set()
        for item in ids:
            if item in seen:
                raise PydanticCustomError(
                    "repeated_id",
                    "duplicate_ids lists {id} more than once",
                    {"id": str(item)},
                )
            seen.add(item)
        return ids

    @model_validator(mode="after")
    def _master_not_duplicate(self) -> MergeRequest:
        if self.master_id in self.duplicate_ids:
            raise PydanticCustomError(
                "master_in_duplicates",
                "master_id {id} is also listed in duplicate_ids",
                {"id": str(self.master_id)},
            )
        return self


class MergeResponse(BaseModel):
    """The upstream fields, then what the merge moved, dropped and cleared."""

    master_id: UUID
    duplicates_deleted: int
    strategy: Literal["keep_master", "fill_blanks"]
    relinked: dict[str, int] = Field(
        description="Rows re-pointed to the master, per referencing table.column."
    )
    junction_rows_dropped: dict[str, int] = Field(
        description="Junction rows dropped as repeats or self-links, per table."
    )
    self_references_cleared: int = Field(
        description="Master references to a duplicate that were set to null."
    )
    dry_run: bool = Field(description="True when nothing was kept.")
    master: dict[str, Any] = Field(
        description="The master as the merge left it (or, in a dry run, would)."
    )
    audit_id: UUID | None = Field(
        description="The merge_audit entry of the merge; null for a dry run."
    )


async def handle_merge(request: web.Request, body: dict[str, Any]) -> web.Response:
    """Validates the body, merges, and answers the report."""
    parsed = validate(MergeRequest, body)
    command = service.MergeCommand(
        object_name=parsed.object_name,
        master_id=parsed.master_id,
        duplicate_ids=tuple(parsed.duplicate_ids),
        strategy=parsed.merge_strategy,
        dry_run=parsed.dry_run,
    )
    report = await service.merge(
        request.app[DATABASE], request.app[MODELS], request[PRINCIPAL], command
    )
    return web.json_response(report.as_json())
