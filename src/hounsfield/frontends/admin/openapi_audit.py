"""OpenAPI paths of the audit trail route (frontends/admin/audit.py)."""

from __future__ import annotations

from typing import Any

from hounsfield.domain.audit import EventKind


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def audit_paths() -> dict[str, Any]:
    record = {
        "type": "object",
        "properties": {
            "seq": {"type": "integer"},
            "time": {"type": "string", "format": "date-time"},
            "type": {"enum": [k.slug for k in EventKind]},
            "action": {"enum": ["C", "R", "U", "D", "E"]},
            "outcome": {"enum": [0, 4, 8, 12]},
            "user": {"type": "string"},
            "address": {"type": "string"},
            "partition": {"type": "string"},
            "patients": {"type": "array", "items": {"type": "string"}},
            "studies": {"type": "array", "items": {"type": "string"}},
            "xml": {"type": "string", "description": "the PS3.15 A.5 audit message"},
            "prevHash": {"type": "string"},
            "hash": {"type": "string"},
        },
    }
    return {
        "/api/audit": {
            "get": {
                "summary": "The audit trail, newest first (keyset paging with `before`)",
                "parameters": [
                    _query("since", {"type": "string", "format": "date-time"}, "from (UTC)"),
                    _query("until", {"type": "string", "format": "date-time"}, "before (UTC)"),
                    _query("type", {"enum": [k.slug for k in EventKind]}, "event type"),
                    _query("user", {"type": "string"}, "user id, AE title or address"),
                    _query("patient", {"type": "string"}, "Patient ID"),
                    _query("study", {"type": "string"}, "Study Instance UID"),
                    _query("partition", {"type": "string"}, "partition"),
                    _query("before", {"type": "integer"}, "seq of the previous page's last"),
                    _query("limit", {"type": "integer", "maximum": 1000}, "page size (100)"),
                ],
                "responses": {
                    "200": {
                        "description": "records",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": record}}
                        },
                    }
                },
            }
        },
    }
