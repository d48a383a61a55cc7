"""OpenAPI 3.1 description of the admin API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


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
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/RemoteAEInput"}
                            }
                        },
                    },
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
            "/api/stats": {
                "get": {
                    "summary": "Counts and stored bytes per partition and in total",
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Stats"}, "statistics")
                    },
                }
            },
        },
        "components": {
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
            }
        },
    }
