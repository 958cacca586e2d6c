"""The OpenAPI 3.1 document, generated from the endpoints and their pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from app.web.routing import Endpoint

_ERROR_CODES = {
    "400": "VALIDATION_ERROR or INVALID_OBJECT",
    "401": "UNAUTHORIZED: missing, malformed, unknown, revoked or expired token",
    "403": "PERMISSION_DENIED: the token's user is not an admin",
    "404": "RECORD_NOT_FOUND or NOT_FOUND",
    "409": "CONFLICT",
    "413": "PAYLOAD_TOO_LARGE",
    "503": "UNAVAILABLE: the database cannot be reached",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {}},
            },
        }
    },
}


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def build_document(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "operationId": endpoint.handler.__name__,
            "tags": [endpoint.tag],
            "responses": {},
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{(\w+)\}", endpoint.path)
        ]
        if endpoint.query is not None:
            parameters.extend(_query_parameters(endpoint.query))
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _schema_ref(endpoint.body, components)
                    }
                },
            }
        ok: dict[str, Any] = {"description": "success"}
        if endpoint.response is not None:
            ok["content"] = {
                "application/json": {
                    "schema": _schema_ref(endpoint.response, components)
                }
            }
        operation["responses"][str(endpoint.ok_status)] = ok
        codes = ["400", "404", "409", "413", "503"]
        if endpoint.access != "public":
            operation["security"] = [{"bearer": []}]
            codes += ["401"]
        if endpoint.access == "admin":
            codes += ["403"]
        for code in sorted(codes):
            operation["responses"][code] = {
                "description": _ERROR_CODES[code],
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}
                    }
                },
            }
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dupes",
            "version": version,
            "description": "Find duplicate CRM records and merge them into one master.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token: ksr_ followed by 40 letters/digits.",
                }
            },
        },
    }
