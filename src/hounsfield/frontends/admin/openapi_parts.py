"""Building blocks of the admin API's OpenAPI document (frontends/admin/openapi*.py)."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A response (or body) of JSON with this schema."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required request body of JSON with this schema."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def closed_object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON object with these properties and no others: the routes refuse unknown keys."""
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}
