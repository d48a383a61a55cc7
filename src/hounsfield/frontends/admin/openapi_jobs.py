"""OpenAPI paths and schemas of the jobs and forwarding-rule routes (frontends/admin/jobs.py)."""

from __future__ import annotations

from typing import Any

from hounsfield.frontends.admin.openapi_parts import ERROR as _ERROR
from hounsfield.frontends.admin.openapi_parts import closed_object as _closed
from hounsfield.frontends.admin.openapi_parts import json_body as _body
from hounsfield.frontends.admin.openapi_parts import json_content as _json
from hounsfield.frontends.admin.openapi_parts import path_param as _path
from hounsfield.frontends.admin.openapi_parts import query_param as _query

_JOB = {"$ref": "#/components/schemas/Job"}
_RULE = {"$ref": "#/components/schemas/ForwardRule"}


JOB_STATES = ["queued", "running", "succeeded", "dead", "cancelled"]


def job_paths() -> dict[str, Any]:
    job_id = _path("id", {"type": "integer", "minimum": 1})
    name = _path("name", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"})
    transition = {
        "parameters": [job_id],
        "responses": {
            "200": _json(_JOB, "done"),
            "404": _json(_ERROR, "unknown job"),
            "409": _json(_ERROR, "not allowed in the job's state"),
        },
    }
    queued = {
        "202": _json({"type": "object"}, 'queued: {"job": id}'),
        "400": _json(_ERROR, "invalid request"),
    }
    return {
        "/api/jobs": {
            "get": {
                "summary": "Jobs, newest first (keyset paging with `before`)",
                "parameters": [
                    _query("state", {"enum": JOB_STATES}, "only jobs in this state"),
                    _query("kind", {"type": "string"}, "only jobs of this kind (forward...)"),
                    _query("partition", {"type": "string"}, "only jobs of this partition"),
                    _query("before", {"type": "integer"}, "id of the previous page's last job"),
                    _query("limit", {"type": "integer", "maximum": 1000}, "page size (100)"),
                ],
                "responses": {"200": _json({"type": "array", "items": _JOB}, "jobs")},
            }
        },
        "/api/jobs/counts": {
            "get": {
                "summary": "Number of jobs per kind and state",
                "responses": {"200": _json({"type": "object"}, "counts")},
            }
        },
        "/api/jobs/{id}": {
            "get": {
                "summary": "One job",
                "parameters": [job_id],
                "responses": {"200": _json(_JOB, "found"), "404": _json(_ERROR, "unknown")},
            }
        },
        "/api/jobs/{id}/retry": {
            "post": {"summary": "Queue a dead or cancelled job again", **transition}
        },
        "/api/jobs/{id}/cancel": {"post": {"summary": "Cancel a queued job", **transition}},
        "/api/forward": {
            "post": {
                "summary": "Queue a one-off forward of a study, series or instance",
                "requestBody": _body(
                    _closed(
                        ["destination", "study"],
                        {
                            "destination": {"type": "string"},
                            "study": {"type": "string"},
                            "series": {"type": "string"},
                            "sop": {"type": "string"},
                            "partition": {"type": "string", "default": "default"},
                        },
                    )
                ),
                "responses": queued,
            }
        },
        "/api/fetch": {
            "post": {
                "summary": "Queue the fetch of a study from a remote AE (C-MOVE to this archive)",
                "requestBody": _body(
                    _closed(
                        ["source", "study"],
                        {
                            "source": {"type": "string"},
                            "study": {"type": "string"},
                            "partition": {"type": "string", "default": "default"},
                            "priority": {"type": "integer", "default": 0},
                        },
                    )
                ),
                "responses": queued,
            }
        },
        "/api/patients/erase": {
            "post": {
                "summary": "Erase every study of one patient in a partition (GDPR Art. 17)",
                "requestBody": _body(
                    _closed(
                        ["patientId"],
                        {
                            "patientId": {"type": "string"},
                            "issuerOfPatientId": {"type": "string"},
                            "partition": {"type": "string", "default": "default"},
                        },
                    )
                ),
                "responses": {
                    "200": _json({"type": "object"}, "erased: studies and counts"),
                    "404": _json(_ERROR, "no study of this patient"),
                    "503": _json(_ERROR, "cache unreachable; nothing erased"),
                },
            }
        },
        "/api/grants": {
            "post": {
                "summary": "Share one study for reading with one principal (a study grant)",
                "requestBody": _body(
                    _closed(
                        ["study", "subject"],
                        {
                            "study": {"type": "string"},
                            "subject": {"type": "string"},
                            "expiresInSeconds": {"type": "integer", "minimum": 1},
                            "partition": {"type": "string"},
                        },
                    )
                ),
                "responses": {
                    "201": _json({"type": "object"}, "the grant"),
                    "400": _json(_ERROR, "invalid request"),
                },
            },
            "get": {
                "summary": "Grants of a partition, newest first",
                "parameters": [
                    _query("partition", {"type": "string"}, "the partition (default: yours)"),
                    _query("subject", {"type": "string"}, "only this principal's"),
                    _query("study", {"type": "string"}, "only this study's"),
                ],
                "responses": {"200": _json({"type": "array"}, "grants")},
            },
        },
        "/api/grants/{id}": {
            "delete": {
                "summary": "Revoke a grant",
                "parameters": [_path("id", {"type": "integer"})],
                "responses": {
                    "204": {"description": "revoked"},
                    "404": _json(_ERROR, "no such grant in the partition"),
                },
            }
        },
        "/api/forward-rules": {
            "get": {
                "summary": "Forwarding rules, by name",
                "responses": {"200": _json({"type": "array", "items": _RULE}, "rules")},
            }
        },
        "/api/forward-rules/{name}": {
            "get": {
                "summary": "One forwarding rule",
                "parameters": [name],
                "responses": {"200": _json(_RULE, "found"), "404": _json(_ERROR, "unknown")},
            },
            "put": {
                "summary": "Create or replace a forwarding rule",
                "parameters": [name],
                "requestBody": _body(_RULE),
                "responses": {
                    "200": _json(_RULE, "replaced"),
                    "201": _json(_RULE, "created"),
                    "400": _json(_ERROR, "invalid rule"),
                },
            },
            "delete": {
                "summary": "Delete a forwarding rule",
                "parameters": [name],
                "responses": {"204": {"description": "deleted"}, "404": _json(_ERROR, "unknown")},
            },
        },
    }


def job_schemas() -> dict[str, Any]:
    return {
        "Job": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "kind": {"type": "string"},
                "partition": {"type": "string"},
                "state": {"enum": JOB_STATES},
                "priority": {"type": "integer"},
                "attempts": {"type": "integer"},
                "maxAttempts": {"type": "integer"},
                "runAt": {"type": "string", "format": "date-time"},
                "createdAt": {"type": "string", "format": "date-time"},
                "updatedAt": {"type": "string", "format": "date-time"},
                "idempotencyKey": {"type": ["string", "null"]},
                "leaseOwner": {"type": ["string", "null"]},
                "leaseUntil": {"type": ["string", "null"], "format": "date-time"},
                "lastError": {"type": ["string", "null"]},
                "payload": {"type": "object"},
            },
        },
        "ForwardRule": {
            "type": "object",
            "required": ["destination"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "destination": {"type": "string", "description": "a registered remote AE"},
                "partition": {"type": "string", "default": "default"},
                "trigger": {
                    "enum": ["instance", "series-stable", "study-stable"],
                    "default": "instance",
                },
                "filters": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "attribute keyword or tag -> C-FIND/QIDO matching value",
                },
                "priority": {"type": "integer", "default": 0},
                "maxAttempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                "enabled": {"type": "boolean", "default": True},
            },
        },
    }
