"""The composition root: the only module that knows concrete adapter classes.

Adapters are chosen by URL (DESIGN.md key idea 7). Nothing is created at import time; callers
ask for an `Archive` and close it when done.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from hounsfield.adapters import webhook_http
from hounsfield.adapters.auth.apikey import ApiKeyAuthenticator, ChainAuthenticator
from hounsfield.adapters.auth.jwt import JwtAuthenticator
from hounsfield.adapters.blobs.file import FileBlobStore
from hounsfield.adapters.blobs.memory import MemoryBlobStore
from hounsfield.adapters.dimse_client import PynetdicomNetwork
from hounsfield.adapters.index.sqlite.store import SqliteIndex
from hounsfield.adapters.worklist.sqlite import SqliteWorklistStore
from hounsfield.config import ConfigError, Settings, load_settings
from hounsfield.config.tls import client_context
from hounsfield.frontends.asgi import HttpApp, HttpOptions
from hounsfield.frontends.dicomweb.context import DicomWebOptions
from hounsfield.frontends.dimse.api import HandlerRegistry
from hounsfield.frontends.dimse.commitment import register_commitment
from hounsfield.frontends.dimse.mpps import register_mpps
from hounsfield.frontends.dimse.qr import register_query_retrieve
from hounsfield.frontends.dimse.server import DimseOptions, DimseServer, default_registry
from hounsfield.frontends.dimse.worklist import register_worklist
from hounsfield.ports.auth import Authenticator
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.bus import EventBus
from hounsfield.ports.cache import Cache
from hounsfield.ports.index import Event, IndexStore
from hounsfield.services.admin import AdminService
from hounsfield.services.apikeys import ApiKeyService
from hounsfield.services.audit import AuditService
from hounsfield.services.caching import MetadataDocuments, RenderedOutputs
from hounsfield.services.changefeed import ChangeFeedService
from hounsfield.services.cloudevents import default_source
from hounsfield.services.commitment import CommitmentService
from hounsfield.services.container import Services
from hounsfield.services.deidentify import DEIDENTIFY_JOB, DeidentifyService
from hounsfield.services.derived import DERIVE_JOB, DerivedCopyService, parse_policy
from hounsfield.services.dicom_send import DicomSendService
from hounsfield.services.erasure import PatientDataService, RetentionPolicy, RetentionService
from hounsfield.services.events import (
    IndexRelayPosition,
    RelayPosition,
    run_consumer,
    run_relay,
)
from hounsfield.services.fetching import FETCH_JOB, FetchService
from hounsfield.services.forwarding import FORWARD_JOB, ForwardingService
from hounsfield.services.grants import GrantService
from hounsfield.services.ingest import DuplicatePolicy, IngestService
from hounsfield.services.integrity import IntegrityService
from hounsfield.services.jobs import (
    JobHandler,
    JobService,
    JobWorker,
    RetryPolicy,
    worker_name,
)
from hounsfield.services.lifecycle import LifecycleService
from hounsfield.services.mpps import MppsService
from hounsfield.services.pixels.service import PixelService
from hounsfield.services.qr import QueryRetrieveService
from hounsfield.services.query import QueryService
from hounsfield.services.retrieve import RetrieveService
from hounsfield.services.stability import StabilityMonitor, StabilitySettings
from hounsfield.services.staging import StagingArea
from hounsfield.services.webhooks import WebhookSender
from hounsfield.services.worklist import WorklistService

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 300.0
RETENTION_INTERVAL_SECONDS = 3600.0
#: The consumer groups of the webhook sender and of the forwarding rules on the bus.
WEBHOOK_GROUP = "webhooks"
FORWARDING_GROUP = "forwarding"
DERIVED_GROUP = "htj2k-copies"


def _path_from_url(url: str, scheme: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme != scheme:
        raise ConfigError(f"expected a {scheme}:// URL, got {url!r}")
    return Path(unquote((parsed.netloc or "") + parsed.path))


def open_index(url: str, *, durable: bool = True, migrate: bool = True) -> IndexStore:
    if url.startswith("sqlite://"):
        path = _path_from_url(url, "sqlite")
        path.parent.mkdir(parents=True, exist_ok=True)
        index = SqliteIndex(path, durable=durable)
        index.migrate()
        return index
    if url.startswith(POSTGRES_SCHEMES):
        return _open_postgres(url, durable=durable, migrate=migrate)
    raise ConfigError(
        f"unsupported index URL {url!r} (supported: sqlite:///path, postgresql://host/db)"
    )


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _open_postgres(url: str, *, durable: bool, migrate: bool) -> IndexStore:
    """The PostgreSQL index, migrated (safe from every replica at start-up: an advisory lock
    serialises them) or, with `migrate=False`, checked to be up to date, for deployments that
    migrate in a separate step. psycopg is an optional dependency (DESIGN.md key idea 7):
    without it, say which extra to install."""
    try:
        from hounsfield.adapters.index.postgres import PostgresIndex
    except ImportError as exc:
        if exc.name not in ("psycopg", "psycopg_pool"):
            raise
        raise ConfigError(
            "a postgresql:// index URL needs the PostgreSQL driver (psycopg 3): "
            "pip install 'hounsfield[postgresql]'"
        ) from exc
    index = PostgresIndex.from_url(url, durable=durable)
    try:
        if migrate:
            index.migrate()
        elif (pending := index.pending_migrations()) > 0:
            raise ConfigError(
                f"the index schema lacks {pending} migration(s) and index_migrate is false:"
                " run `hounsfield migrate` first"
            )
    except BaseException:
        index.close()
        raise
    return index


OBJECT_STORE_SCHEMES = ("s3://", "gs://", "az://")


def open_blobs(url: str) -> BlobStore:
    if url.startswith("file://"):
        return FileBlobStore(_path_from_url(url, "file"))
    if url.startswith("memory://"):
        return MemoryBlobStore()
    if url.startswith(OBJECT_STORE_SCHEMES):
        return _open_object_blobs(url)
    raise ConfigError(
        f"unsupported blob URL {url!r} "
        "(supported: file:///path, memory://, s3://bucket/prefix, gs://bucket/prefix, "
        "az://container/prefix)"
    )


def _open_object_blobs(url: str) -> BlobStore:
    """Object storage is an optional dependency (obstore): imported only when a URL asks for it,
    and its absence is a configuration error that says what to install."""
    try:
        from hounsfield.adapters.blobs.objectstore import open_object_blobs
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("obstore"):
            raise
        raise ConfigError(
            f"blob URL {url!r} needs the optional object storage support: "
            "pip install 'hounsfield[s3]' (obstore; it serves s3://, gs:// and az://)"
        ) from None
    try:
        return open_object_blobs(url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


_BUS_ADAPTERS = {
    # scheme: (module, class, extra, the client's top-level module)
    "redis": ("hounsfield.adapters.bus.redis", "RedisStreamBus", "redis", "redis"),
    "rediss": ("hounsfield.adapters.bus.redis", "RedisStreamBus", "redis", "redis"),
    "amqp": ("hounsfield.adapters.bus.amqp", "AmqpBus", "amqp", "pika"),
    "amqps": ("hounsfield.adapters.bus.amqp", "AmqpBus", "amqp", "pika"),
    "nats": ("hounsfield.adapters.bus.nats", "NatsJetStreamBus", "nats", "nats"),
    "tls": ("hounsfield.adapters.bus.nats", "NatsJetStreamBus", "nats", "nats"),
}


def bus_opener(url: str, source: str) -> Callable[[], EventBus]:
    """A function that connects to the bus of `url`. The adapter module is imported now, so a
    missing optional client is a start-up error naming the extra (DESIGN.md key idea 7); the
    connection is made later, by the relay, so an unreachable broker only delays events."""
    scheme = urlparse(url).scheme
    if scheme == "inprocess":
        from hounsfield.adapters.bus.inprocess import InProcessBus

        shared = InProcessBus()  # the relay and the consumers of this process share it
        return lambda: shared
    if scheme not in _BUS_ADAPTERS:
        raise ConfigError(
            f"unsupported bus URL {url!r} (supported: inprocess://, redis://, amqp://, nats://)"
        )
    module_name, class_name, extra, client = _BUS_ADAPTERS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != client:
            raise
        raise ConfigError(
            f"bus URL {url!r} needs the optional {client} client: pip install 'hounsfield[{extra}]'"
        ) from None
    adapter = getattr(module, class_name)

    def open_bus() -> EventBus:
        try:
            bus: EventBus = adapter(url, source)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return bus

    return open_bus


def open_cache(url: str) -> Cache | None:
    """The cache of `cache_url`, or None for none://. redis-py is an optional dependency:
    without it, say which extra to install (DESIGN.md key idea 7)."""
    scheme = urlparse(url).scheme
    try:
        if scheme == "none":
            return None
        if scheme == "memory":
            from hounsfield.adapters.cache.memory import MemoryCache

            return MemoryCache.from_url(url)
        if scheme in ("redis", "rediss"):
            try:
                from hounsfield.adapters.cache.redis import RedisCache
            except ModuleNotFoundError as exc:
                if exc.name is None or exc.name.split(".")[0] != "redis":
                    raise
                raise ConfigError(
                    f"cache URL {url!r} needs the optional redis client: "
                    "pip install 'hounsfield[redis]'"
                ) from None
            return RedisCache(url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    raise ConfigError(f"unsupported cache URL {url!r} (supported: memory://, redis://, none://)")


@dataclass
class Archive:
    """An opened archive: settings, adapters and the services built on them."""

    settings: Settings
    index: IndexStore
    blobs: BlobStore
    services: Services
    cache: Cache | None = None

    def close(self) -> None:
        if self.services.audit is not None:
            self.services.audit.close()  # what is queued is written before the index closes
        self.index.close()
        if self.cache is not None:
            self.cache.close()
        if self.services.worklist is not None:
            self.services.worklist.store.close()
        if self.services.mpps is not None:
            self.services.mpps.store.close()

    def sweep(self) -> int:
        return self.services.ingest.sweep(
            datetime.now(UTC), float(self.settings.pending_grace_seconds)
        )


def open_archive(settings: Settings) -> Archive:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    index = open_index(settings.index_url, durable=settings.durable, migrate=settings.index_migrate)
    blobs = open_blobs(settings.blob_url)
    cache = open_cache(settings.cache_url)
    documents = MetadataDocuments(cache) if cache is not None else None
    rendered = RenderedOutputs(cache) if cache is not None else None
    # Durable archives start the writeback of uploads as they arrive (services/staging.py).
    staging = StagingArea(settings.staging_dir, writeback=settings.durable)
    duplicate_policy: DuplicatePolicy = (
        "reject" if settings.duplicate_policy == "reject" else "keep-first"
    )
    retrieve = RetrieveService(index, blobs, documents)
    derived = DerivedCopyService(
        index,
        blobs,
        staging,
        PixelService(retrieve),  # its own: copies are made from the originals
        parse_policy(
            settings.htj2k_copies, settings.htj2k_copy_partitions, settings.htj2k_copy_modalities
        ),
    )
    pixels = PixelService(
        retrieve,
        rendered,
        copies=derived.copy_for,
    )
    lifecycle = LifecycleService(index, blobs, documents)
    network = open_dicom_network(settings)
    dicom_send = DicomSendService(network, blobs, calling_ae=settings.ae_title, transcoder=pixels)
    ingest = IngestService(
        index,
        blobs,
        staging,
        bulk_data_threshold=settings.bulk_data_threshold,
        duplicate_policy=duplicate_policy,
        durable=settings.durable,
    )
    audit = open_audit(settings, index)
    services = Services(
        ingest=ingest,
        query=QueryService(index, max_limit=settings.qido_max_limit),
        retrieve=retrieve,
        pixels=pixels,
        lifecycle=lifecycle,
        admin=AdminService(index),
        integrity=IntegrityService(index, blobs),
        staging=staging,
        qr=QueryRetrieveService(index, ae_title=settings.ae_title),
        dicom_send=dicom_send,
        worklist=WorklistService(SqliteWorklistStore(settings.data_dir / "worklist.db")),
        commitment=CommitmentService(index, blobs),
        changefeed=ChangeFeedService(index),
        mpps=MppsService(SqliteWorklistStore(settings.data_dir / "worklist.db", table="mpps")),
        jobs=JobService(index.jobs),
        forwarding=ForwardingService(index, dicom_send),
        fetching=FetchService(index, network, ae_title=settings.ae_title),
        derived=derived,
        patients=PatientDataService(index, blobs, lifecycle, rendered),
        grants=GrantService(index.grants),
        audit=audit,
        deidentify=DeidentifyService(
            index,
            blobs,
            ingest,
            audit,
            salt=settings.deidentify_salt,
            source_id=settings.ae_title,
        ),
    )
    return Archive(settings, index, blobs, services, cache)


def open_audit(settings: Settings, index: IndexStore) -> AuditService | None:
    """The audit trail in the index, with a copy to syslog when `audit_syslog_url` is set."""
    if not settings.audit_enabled:
        return None
    sinks = []
    if settings.audit_syslog_url:
        from hounsfield.adapters.audit_syslog import SyslogSink

        try:
            sinks.append(
                SyslogSink(
                    settings.audit_syslog_url,
                    ca_file=settings.audit_syslog_ca_file,
                    cert_file=settings.audit_syslog_cert_file,
                    key_file=settings.audit_syslog_key_file,
                )
            )
        except (ValueError, OSError) as exc:
            raise ConfigError(f"setting 'audit_syslog_url': {exc}") from None
    return AuditService(
        index.audit,
        sinks,
        source_id=settings.ae_title,
        index=index,
        queue_size=settings.audit_queue_size,
    )


def open_dicom_network(settings: Settings) -> PynetdicomNetwork:
    """The DIMSE client (Storage, Verification, Query/Retrieve SCU) with the dimse_* timeouts."""
    return PynetdicomNetwork(
        acse_timeout=float(settings.dimse_acse_timeout),
        dimse_timeout=float(settings.dimse_timeout),
        network_timeout=float(settings.dimse_idle_timeout),
        max_pdu=settings.dimse_max_pdu,
        tls_context=lambda: client_context(settings),
    )


def job_handlers(archive: Archive) -> dict[str, JobHandler]:
    """The job kinds this archive runs, by kind (services/jobs.py)."""
    handlers: dict[str, JobHandler] = {}
    if archive.services.forwarding is not None:
        handlers[FORWARD_JOB] = archive.services.forwarding.run_job
    if archive.services.fetching is not None:
        handlers[FETCH_JOB] = archive.services.fetching.run_job
    if archive.services.derived is not None:
        handlers[DERIVE_JOB] = archive.services.derived.run_job
    if archive.services.deidentify is not None:
        handlers[DEIDENTIFY_JOB] = archive.services.deidentify.run_job
    return handlers


def build_job_worker(archive: Archive) -> JobWorker:
    settings = archive.settings
    return JobWorker(
        archive.index.jobs,
        job_handlers(archive),
        concurrency=max(settings.jobs_concurrency, 1),
        lease_seconds=float(settings.jobs_lease_seconds),
        retry=RetryPolicy(
            base_seconds=float(settings.jobs_retry_base_seconds),
            max_seconds=float(settings.jobs_retry_max_seconds),
        ),
    )


def build_stability_monitor(archive: Archive) -> StabilityMonitor | None:
    """None when detection is off (either quiet period set to 0)."""
    settings = archive.settings
    if not settings.series_stable_seconds or not settings.study_stable_seconds:
        return None
    return StabilityMonitor(
        archive.index,
        StabilitySettings(
            series_quiet_seconds=float(settings.series_stable_seconds),
            study_quiet_seconds=float(settings.study_stable_seconds),
        ),
    )


BackgroundTask = Callable[[], Coroutine[Any, Any, None]]


def background_tasks(archive: Archive, *, run_jobs: bool) -> list[BackgroundTask]:
    """What runs beside the servers in `hounsfield serve`, and alone in `hounsfield worker`:
    the sweeper, the outbox relay (one process per data_dir at a time), the event consumers
    (webhooks, forwarding rules), stable detection and, with `run_jobs`, a job worker. Every
    one of them is safe in any number of processes (DESIGN.md key idea 8)."""
    settings = archive.settings

    async def sweeper() -> None:
        while True:
            try:
                removed = await asyncio.to_thread(archive.sweep)
                if removed:
                    log.info("swept %d abandoned uploads", removed)
                if settings.jobs_retention_seconds and archive.services.jobs is not None:
                    await asyncio.to_thread(
                        archive.services.jobs.purge, float(settings.jobs_retention_seconds)
                    )
            except Exception:
                log.exception("sweep failed")
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)

    open_bus = bus_opener(settings.bus_url, default_source(settings.ae_title))
    position = IndexRelayPosition(
        archive.index,
        worker_name(),
        legacy=RelayPosition(
            settings.data_dir / "events" / "relay-position.json",
            settings.index_url,
            durable=settings.durable,
        ),
    )

    webhooks = WebhookSender(
        settings.webhook_urls,
        settings.webhook_secret,
        default_source(settings.ae_title),
        webhook_http.post,
        max_attempts=settings.webhook_max_attempts,
    )
    groups = [
        FORWARDING_GROUP,
        *([DERIVED_GROUP] if settings.htj2k_copies else []),
        *([WEBHOOK_GROUP] if settings.webhook_urls else []),
    ]

    def declare_groups() -> None:
        bus = open_bus()
        try:
            for group in groups:
                bus.declare(group)
        finally:
            bus.close()

    async def relay() -> None:
        # Before the first publish, so that a new consumer group misses nothing.
        try:
            await asyncio.to_thread(declare_groups)
        except Exception:
            log.exception("could not declare the consumer groups %s", groups)
        await run_relay(archive.index, open_bus, position)

    async def webhook_consumer() -> None:
        await run_consumer(open_bus, WEBHOOK_GROUP, webhooks, max_events=1)

    tasks: list[BackgroundTask] = [sweeper, relay]
    if settings.webhook_urls:
        tasks.append(webhook_consumer)
    if (forwarding := archive.services.forwarding) is not None:

        def forward(event: Event) -> None:
            forwarding.on_event(event)

        async def forwarding_consumer() -> None:
            await run_consumer(open_bus, FORWARDING_GROUP, forward)

        tasks.append(forwarding_consumer)
    if settings.htj2k_copies and (derived := archive.services.derived) is not None:

        async def derived_consumer() -> None:
            await run_consumer(open_bus, DERIVED_GROUP, derived.on_event)

        tasks.append(derived_consumer)
    if settings.retention_days:
        retention = RetentionService(
            archive.index,
            archive.services.lifecycle,
            RetentionPolicy.parse(settings.retention_days),
        )

        async def retention_task() -> None:
            while True:
                try:
                    while await asyncio.to_thread(retention.apply_once):
                        pass
                except Exception:
                    log.exception("retention failed; retrying")
                await asyncio.sleep(RETENTION_INTERVAL_SECONDS)

        tasks.append(retention_task)
    if (monitor := build_stability_monitor(archive)) is not None:
        tasks.append(monitor.run_async)
    if run_jobs:
        worker = build_job_worker(archive)

        async def job_worker() -> None:
            stop = threading.Event()
            try:
                await asyncio.to_thread(worker.run, stop)
            finally:
                stop.set()  # cancelled: the thread ends within one poll

        tasks.append(job_worker)
    return tasks


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


def build_http_app(archive: Archive) -> HttpApp:
    settings = archive.settings
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
        on_shutdown=archive.close,
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
