"""The admin API's OpenAPI document describes exactly the /api routes that exist."""

from __future__ import annotations

from pathlib import Path

from hounsfield.bootstrap import build_http_app, open_archive
from hounsfield.config import load_settings
from hounsfield.frontends.admin.openapi import openapi_document


def test_openapi_paths_match_the_admin_routes(tmp_path: Path) -> None:
    archive = open_archive(load_settings(environ={"HOUNSFIELD_DATA_DIR": str(tmp_path)}))
    try:
        app = build_http_app(archive)
        routed = {
            (template, method.lower())
            for template, methods in app.router.templates().items()
            if template.startswith("/api/") and template != "/api/openapi.json"
            for method in methods
        }
    finally:
        archive.close()
    documented = {
        (path, method)
        for path, item in openapi_document("test")["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    assert routed == documented
