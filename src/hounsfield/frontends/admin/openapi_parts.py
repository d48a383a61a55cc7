"""Building blocks of the admin API's OpenAPI document (frontends/admin/openapi*.py)."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A response (or body) of JSON with this schema."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


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
