"""OpenAPI 3.1 description of the admin API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from hounsfield.frontends.admin.openapi_audit import audit_paths
from hounsfield.frontends.admin.openapi_jobs import job_paths, job_schemas
from hounsfield.frontends.admin.openapi_parts import ERROR as _ERROR
from hounsfield.frontends.admin.openapi_parts import json_body as _body
from hounsfield.frontends.admin.openapi_parts import json_content as _json


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR, description)


def openapi_document(version: str) -> dict[str, Any]:
    aet_param = {
        "name": "aet",
        "in": "path",
        "required": True,
        "description": "AE title (1-16 characters, PS3.5 6.2)",
        "schema": {"type": "string", "minLength": 1, "maxLength": 16},
    }
    remote_ae = {"$ref": "#/components/schemas/RemoteAE"}
    item_param = {
        "name": "item",
        "in": "path",
        "required": True,
        "description": "worklist item id (1-64 of A-Z a-z 0-9 . _ -)",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
    }
    partition_param = {
        "name": "partition",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "default": "default"},
    }
    dataset = {
        "type": "object",
        "description": "DICOM JSON (PS3.18 F.2) with ScheduledProcedureStepSequence",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hounsfield admin API",
            "version": version,
            "description": "Administration of a Hounsfield archive. DICOMweb lives under "
            "/dicom-web and is described by PS3.18 and docs/conformance.md.",
        },
        "paths": {
            "/api/health": {
                "get": {
                    "summary": "Readiness: 200 once the archive serves requests",
                    "security": [],  # the one route open without credentials
                    "responses": {
                        "200": _json({"type": "object"}, "ready"),
                        "503": _json({"type": "object"}, "starting"),
                    },
                }
            },
            "/api/remote-aes": {
                "get": {
                    "summary": "List remote application entities",
                    "responses": {"200": _json({"type": "array", "items": remote_ae}, "the list")},
                }
            },
            "/api/remote-aes/{aet}": {
                "parameters": [aet_param],
                "get": {
                    "summary": "One remote AE",
                    "responses": {"200": _json(remote_ae, "found"), "404": _error("unknown AE")},
                },
                "put": {
                    "summary": "Create or replace a remote AE",
                    "requestBody": _body({"$ref": "#/components/schemas/RemoteAEInput"}),
                    "responses": {
                        "200": _json(remote_ae, "replaced"),
                        "201": _json(remote_ae, "created"),
                        "400": _error("invalid AE title or body"),
                    },
                },
                "delete": {
                    "summary": "Remove a remote AE",
                    "responses": {"204": {"description": "removed"}, "404": _error("unknown AE")},
                },
            },
            "/api/worklist": {
                "parameters": [partition_param],
                "get": {
                    "summary": "List modality worklist items of a partition",
                    "responses": {
                        "200": _json(
                            {"type": "array", "items": {"type": "object"}},
                            "items as {id, dataset}",
                        ),
                        "400": _error("invalid partition"),
                    },
                },
            },
            "/api/worklist/{item}": {
                "parameters": [item_param, partition_param],
                "get": {
                    "summary": "One worklist item (DICOM JSON)",
                    "responses": {"200": _json(dataset, "found"), "404": _error("unknown item")},
                },
                "put": {
                    "summary": "Create or replace a worklist item (PS3.4 Table K.6-1 attributes)",
                    "requestBody": _body(dataset),
                    "responses": {
                        "200": _json(dataset, "replaced"),
                        "201": _json(dataset, "created"),
                        "400": _error("invalid item id, body or partition"),
                    },
                },
                "delete": {
                    "summary": "Remove a worklist item",
                    "responses": {"204": {"description": "removed"}, "404": _error("unknown item")},
                },
            },
            "/api/mpps": {
                "parameters": [partition_param],
                "get": {
                    "summary": "Performed procedure steps reported by modalities (N-CREATE/N-SET)",
                    "responses": {
                        "200": _json(
                            {"type": "array", "items": {"type": "object"}},
                            "steps as {id, dataset}",
                        ),
                        "400": _error("invalid partition"),
                    },
                },
            },
            "/api/mpps/{uid}": {
                "parameters": [
                    {
                        "name": "uid",
                        "in": "path",
                        "required": True,
                        "description": "SOP Instance UID of the performed procedure step",
                        "schema": {"type": "string"},
                    },
                    partition_param,
                ],
                "get": {
                    "summary": "One performed procedure step (DICOM JSON)",
                    "responses": {"200": _json(dataset, "found"), "404": _error("unknown step")},
                },
            },
            "/api/stats": {
                "get": {
                    "summary": "Counts and stored bytes per partition and in total",
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Stats"}, "statistics")
                    },
                }
            },
            **job_paths(),
            **audit_paths(),
        },
        # docs/security.md: OIDC bearer tokens or API keys (either header), when enabled.
        "security": [{"bearer": []}, {"apiKey": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "OIDC access token (JWT) or an API key hfk_...",
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                    "required": ["error", "status"],
                },
                "RemoteAEInput": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["host", "port"],
                    "properties": {
                        "host": {"type": "string", "minLength": 1},
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "tls": {"type": "boolean", "default": False},
                        "partition": {"type": "string", "default": "default"},
                        "description": {"type": "string", "default": ""},
                    },
                },
                "RemoteAE": {
                    "type": "object",
                    "properties": {
                        "aet": {"type": "string"},
                        "host": {"type": "string"},
                        "port": {"type": "integer"},
                        "tls": {"type": "boolean"},
                        "partition": {"type": "string"},
                        "description": {"type": "string"},
                    },
                },
                "Stats": {
                    "type": "object",
                    "properties": {
                        "partitions": {"type": "array", "items": {"type": "object"}},
                        "total": {"type": "object"},
                    },
                },
                **job_schemas(),
            },
        },
    }
