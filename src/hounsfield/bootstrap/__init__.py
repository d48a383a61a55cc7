"""The composition root: the only package that knows concrete adapter classes.

Adapters are chosen by URL (`adapters`, DESIGN.md key idea 7); `archive` opens them and builds
the services; `background` assembles the work that runs beside the servers; this module builds
the HTTP and DIMSE servers. Nothing is created at import time; callers ask for an `Archive` and
close it when done.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from hounsfield.adapters.auth.apikey import ApiKeyAuthenticator, ChainAuthenticator
from hounsfield.adapters.auth.jwt import JwtAuthenticator
from hounsfield.bootstrap.adapters import (
    OBJECT_STORE_SCHEMES,
    POSTGRES_SCHEMES,
    bus_opener,
    open_blobs,
    open_cache,
    open_index,
)
from hounsfield.bootstrap.archive import Archive, open_archive, open_audit, open_dicom_network
from hounsfield.bootstrap.background import (
    BackgroundTask,
    background_tasks,
    build_job_worker,
    build_stability_monitor,
    job_handlers,
)
from hounsfield.config import ConfigError, Settings, load_settings
from hounsfield.frontends.asgi import HttpApp, HttpOptions
from hounsfield.frontends.dicomweb.context import DicomWebOptions
from hounsfield.frontends.dimse.api import HandlerRegistry
from hounsfield.frontends.dimse.commitment import register_commitment
from hounsfield.frontends.dimse.mpps import register_mpps
from hounsfield.frontends.dimse.qr import register_query_retrieve
from hounsfield.frontends.dimse.server import DimseOptions, DimseServer, default_registry
from hounsfield.frontends.dimse.worklist import register_worklist
from hounsfield.ports.auth import Authenticator
from hounsfield.ports.index import IndexStore
from hounsfield.services.apikeys import ApiKeyService


def is_loopback(host: str) -> bool:
    """Whether `host` reaches this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to anything


def check_exposure(settings: Settings) -> None:
    """The safe default: an archive of health information does not listen beyond this
    machine without authentication, unless the operator says so explicitly."""
    if settings.authentication_enabled or settings.allow_unauthenticated:
        return
    if is_loopback(settings.host):
        return
    raise ConfigError(
        f"refusing to listen on {settings.host!r} without authentication: anyone who can "
        "reach it could read and delete every study. Configure auth_oidc_issuer and "
        "auth_oidc_audience (OIDC bearer tokens) and/or auth_api_keys = true (API keys from "
        "`hounsfield keys create`), or set allow_unauthenticated = true if a proxy in front "
        "authenticates (HOUNSFIELD_ALLOW_UNAUTHENTICATED=true); see docs/security.md"
    )


def build_authenticator(settings: Settings, index: IndexStore) -> Authenticator | None:
    """OIDC bearer tokens and/or API keys, as configured; None when neither is."""
    chain: list[Authenticator] = []
    if settings.auth_api_keys:
        chain.append(ApiKeyAuthenticator(ApiKeyService(index.api_keys, settings.default_partition)))
    if settings.auth_oidc_issuer:
        chain.append(
            JwtAuthenticator(
                issuer=settings.auth_oidc_issuer,
                audience=settings.auth_oidc_audience,
                jwks_url=settings.auth_oidc_jwks_url,
                algorithms=settings.auth_oidc_algorithms,
                leeway_seconds=float(settings.auth_clock_skew_seconds),
                roles_claim=settings.auth_roles_claim,
                partitions_claim=settings.auth_partitions_claim,
                default_partition=settings.default_partition,
                min_refresh_seconds=float(settings.auth_jwks_min_refresh_seconds),
            )
        )
    if not chain:
        return None
    return chain[0] if len(chain) == 1 else ChainAuthenticator(*chain)


def build_http_app(archive: Archive, before_close: Callable[[], None] | None = None) -> HttpApp:
    """The ASGI app; at lifespan shutdown `before_close` runs (serve stops its DIMSE worker
    processes there, so the process does not exit before they have), then the archive closes."""
    settings = archive.settings

    def shutdown() -> None:
        if before_close is not None:
            before_close()
        archive.close()

    check_exposure(settings)
    options = HttpOptions(
        dicomweb=DicomWebOptions(
            default_partition=settings.default_partition,
            max_request_bytes=settings.max_request_bytes,
        ),
        cors_origins=settings.cors_origins,
        https=settings.http_tls,
        rate_limit_per_minute=settings.rate_limit_per_minute,
    )
    return HttpApp(
        archive.services,
        options,
        background=background_tasks(archive, run_jobs=settings.jobs_concurrency > 0),
        on_shutdown=shutdown,
        authenticator=build_authenticator(settings, archive.index),
    )


def dimse_options(settings: Settings) -> DimseOptions:
    return DimseOptions(
        ae_title=settings.ae_title,
        max_pdu=settings.dimse_max_pdu,
        max_associations=settings.dimse_max_associations,
        acse_timeout=float(settings.dimse_acse_timeout),
        idle_timeout=float(settings.dimse_idle_timeout),
        dimse_timeout=float(settings.dimse_timeout),
        require_called_ae=settings.dimse_require_called_ae,
        allowed_calling_aes=settings.dimse_allowed_calling_aes,
        default_partition=settings.default_partition,
    )


def dimse_registry() -> HandlerRegistry:
    """Every DIMSE service handler: C-ECHO here; the query/retrieve, worklist and storage
    commitment handlers register themselves on this registry."""
    registry = default_registry()
    register_query_retrieve(registry)
    register_worklist(registry)
    register_commitment(registry)
    register_mpps(registry)
    return registry


def build_dimse_server(archive: Archive, registry: HandlerRegistry | None = None) -> DimseServer:
    """The DIMSE server for an opened archive (not yet listening: call `start`)."""
    return DimseServer(
        archive.services,
        dimse_options(archive.settings),
        registry if registry is not None else dimse_registry(),
    )


def create_app() -> HttpApp:
    """ASGI factory for `uvicorn --factory hounsfield.bootstrap:create_app` (used by workers)."""
    settings = load_settings()
    check_exposure(settings)
    return build_http_app(open_archive(settings))


__all__ = [
    "OBJECT_STORE_SCHEMES",
    "POSTGRES_SCHEMES",
    "Archive",
    "BackgroundTask",
    "background_tasks",
    "build_authenticator",
    "build_dimse_server",
    "build_http_app",
    "build_job_worker",
    "build_stability_monitor",
    "bus_opener",
    "check_exposure",
    "create_app",
    "dimse_options",
    "dimse_registry",
    "is_loopback",
    "job_handlers",
    "open_archive",
    "open_audit",
    "open_blobs",
    "open_cache",
    "open_dicom_network",
    "open_index",
]
