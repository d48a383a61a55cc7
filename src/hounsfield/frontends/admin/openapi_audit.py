"""OpenAPI paths of the audit trail and de-identification routes (frontends/admin/audit.py,
frontends/admin/deidentify.py)."""

from __future__ import annotations

from typing import Any

from hounsfield.domain.audit import EventKind
from hounsfield.domain.deidentify import OPTIONS
from hounsfield.frontends.admin.openapi_parts import json_body as _body
from hounsfield.frontends.admin.openapi_parts import query_param as _query


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
        "/api/deidentify": {
            "post": {
                "summary": "Copy a study de-identified (PS3.15 Annex E) into another partition"
                " (a `deidentify` job)",
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["study", "targetPartition"],
                        "properties": {
                            "study": {"type": "string"},
                            "partition": {"type": "string"},
                            "targetPartition": {"type": "string"},
                            "options": {"type": "array", "items": {"enum": list(OPTIONS)}},
                            "allowBurnedIn": {"type": "boolean"},
                        },
                    }
                ),
                "responses": {
                    "202": {"description": 'queued: `{"job": id}`'},
                    "400": {"description": "invalid request"},
                    "404": {"description": "no such study"},
                },
            }
        },
    }
