"""`hounsfield serve`: the HTTP server (uvicorn with uvloop and httptools)."""

from __future__ import annotations

import logging

import uvicorn

from hounsfield.bootstrap import build_http_app, open_archive
from hounsfield.config import Settings

log = logging.getLogger(__name__)


def run(settings: Settings) -> None:
    common = {
        "host": settings.host,
        "port": settings.http_port,
        "log_level": settings.log_level.lower(),
        "access_log": settings.log_level == "DEBUG",
        "loop": "auto",
        "http": "auto",
        "lifespan": "on",
    }
    log.info(
        "Hounsfield on http://%s:%d (DICOMweb /dicom-web, admin /api); index %s; blobs %s",
        settings.host,
        settings.http_port,
        settings.index_url,
        settings.blob_url,
    )
    if settings.http_workers > 1:
        # Each worker process builds its own archive from the same settings (environment).
        open_archive(settings).close()  # migrate once before the workers start
        uvicorn.run(
            "hounsfield.bootstrap:create_app",
            factory=True,
            workers=settings.http_workers,
            **common,  # type: ignore[arg-type]
        )
        return
    app = build_http_app(open_archive(settings))
    uvicorn.run(app, **common)  # type: ignore[arg-type]
