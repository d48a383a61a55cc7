"""`hounsfield serve`: the HTTP server (uvicorn) and the DIMSE server, on one event loop.

With one HTTP worker (the embedded default) both servers share the archive and the event loop
(uvloop when available): `uvicorn.Server.serve()` runs next to the DIMSE server, and when
uvicorn exits (SIGINT/SIGTERM) the DIMSE server is closed first, then the archive. With
several HTTP workers uvicorn's supervisor owns the main thread, so the DIMSE server runs in the
main process on its own event loop in a thread; workers serve HTTP only.

With `dimse_workers` > 1 the DIMSE server runs in that many processes instead (cli/dimse_workers.py,
docs/adr/0017-dimse-workers.md), started after the index is migrated once and stopped before the
HTTP side closes its archive; the main process serves HTTP only.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable

import uvicorn

from hounsfield.bootstrap import (
    Archive,
    build_dimse_server,
    build_http_app,
    check_exposure,
    open_archive,
)
from hounsfield.cli.dimse_workers import DimseWorkers
from hounsfield.config import Settings
from hounsfield.config.tls import server_context
from hounsfield.frontends.dimse.server import DimseServer

log = logging.getLogger(__name__)


def _common(settings: Settings) -> dict[str, object]:
    common: dict[str, object] = {
        "host": settings.host,
        "port": settings.http_port,
        "log_level": settings.log_level.lower(),
        "access_log": settings.log_level == "DEBUG",
        "loop": "auto",
        "http": "auto",
        "lifespan": "on",
    }
    if settings.http_tls:
        server_context(settings)  # fails early, naming the setting, on unusable files
        common.update(
            ssl_certfile=settings.tls_cert_file,
            ssl_keyfile=settings.tls_key_file,
            ssl_version=ssl.PROTOCOL_TLS_SERVER,
        )
    return common


async def start_dimse(settings: Settings, dimse: DimseServer, *, reuse_port: bool = False) -> None:
    """The plain listener, and the DICOM TLS one when dimse_tls_port is set."""
    await dimse.start(settings.host, settings.dimse_port, reuse_port=reuse_port)
    if settings.dimse_tls_port:
        tls = server_context(settings, verify_client=settings.dimse_tls_verify_client)
        await dimse.start(settings.host, settings.dimse_tls_port, tls=tls, reuse_port=reuse_port)


def run(settings: Settings) -> None:
    check_exposure(settings)  # before anything is opened or listens
    common = _common(settings)
    log.info(
        "Hounsfield on http%s://%s:%d (DICOMweb /dicom-web, admin /api)%s; index %s; blobs %s",
        "s" if settings.http_tls else "",
        settings.host,
        settings.http_port,
        f", DIMSE AE {settings.ae_title} on port {settings.dimse_port}"
        + (f" and DICOM TLS port {settings.dimse_tls_port}" if settings.dimse_tls_port else "")
        + (f" in {settings.dimse_workers} processes" if settings.dimse_workers > 1 else "")
        if settings.dimse_enabled
        else "",
        settings.index_url,
        settings.blob_url,
    )
    workers: DimseWorkers | None = None
    if settings.dimse_enabled and settings.dimse_workers > 1:
        open_archive(settings).close()  # migrate once before the workers start
        if settings.dimse_tls_port:
            server_context(settings)  # fails here, naming the setting, not in every worker
        workers = DimseWorkers(settings)
        workers.start()
    try:
        _run_http(settings, common, workers)
    finally:
        if workers is not None:
            workers.stop()


def _run_http(settings: Settings, common: dict[str, object], workers: DimseWorkers | None) -> None:
    if settings.http_workers > 1:
        # Each worker process builds its own archive from the same settings (environment).
        open_archive(settings).close()  # migrate once before the workers start
        if settings.dimse_enabled and workers is None:
            _start_dimse_thread(settings)
        uvicorn.run(
            "hounsfield.bootstrap:create_app",
            factory=True,
            workers=settings.http_workers,
            **common,  # type: ignore[arg-type]
        )
        return
    archive = open_archive(settings)
    app = build_http_app(archive, before_close=workers.stop if workers is not None else None)
    config = uvicorn.Config(app, **common)  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(_serve_both(settings, archive, uvicorn.Server(config), workers))


async def _serve_both(
    settings: Settings, archive: Archive, http: uvicorn.Server, workers: DimseWorkers | None
) -> None:
    if workers is not None:
        # DIMSE in the worker processes: each closes its associations, then its archive.
        await _serve_closing_first(http, lambda: asyncio.to_thread(workers.stop))
        return
    if not settings.dimse_enabled:
        await http.serve()
        return
    dimse = build_dimse_server(archive)
    await start_dimse(settings, dimse)
    await _serve_closing_first(http, dimse.close)


async def _serve_closing_first(
    http: uvicorn.Server, close_dimse: Callable[[], Awaitable[None]]
) -> None:
    """Serve HTTP and close DIMSE as soon as uvicorn is told to exit (SIGTERM/SIGINT).

    uvicorn notices the signal within its 0.1 s tick, then drains HTTP connections before the
    lifespan shutdown closes the archive: DIMSE is closed first, while the archive is still
    open, so no association is cut in the middle of an ingest; and once more on the way out
    (closing twice is harmless) in case HTTP stopped for another reason.
    """

    async def close_on_exit() -> None:
        while not http.should_exit:
            await asyncio.sleep(0.05)
        await close_dimse()

    watcher = asyncio.create_task(close_on_exit())
    try:
        await http.serve()
    finally:
        if not watcher.done():
            watcher.cancel()
        await close_dimse()


def _start_dimse_thread(settings: Settings) -> None:
    archive = open_archive(settings)

    async def main() -> None:
        dimse = build_dimse_server(archive)
        await start_dimse(settings, dimse)
        await dimse.serve_forever()

    def target() -> None:
        config = uvicorn.Config(lambda: None, loop="auto")
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(main())

    threading.Thread(target=target, name="dimse", daemon=True).start()
