"""Opening an archive: the adapters of the settings and the services built on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hounsfield.adapters.dimse_client import SocketNetwork
from hounsfield.adapters.worklist.sqlite import SqliteWorklistStore
from hounsfield.bootstrap.adapters import open_blobs, open_cache, open_index
from hounsfield.config import ConfigError, Settings
from hounsfield.config.tls import client_context
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.cache import Cache
from hounsfield.ports.index import IndexStore
from hounsfield.services.admin import AdminService
from hounsfield.services.audit import AuditService
from hounsfield.services.caching import MetadataDocuments, RenderedOutputs
from hounsfield.services.changefeed import ChangeFeedService
from hounsfield.services.commitment import CommitmentService
from hounsfield.services.container import Services
from hounsfield.services.deidentify import DeidentifyService
from hounsfield.services.derived import DerivedCopyService, parse_policy
from hounsfield.services.dicom_send import DicomSendService
from hounsfield.services.erasure import PatientDataService
from hounsfield.services.fetching import FetchService
from hounsfield.services.forwarding import ForwardingService
from hounsfield.services.grants import GrantService
from hounsfield.services.ingest import DuplicatePolicy, IngestService
from hounsfield.services.integrity import IntegrityService
from hounsfield.services.jobs import (
    JobService,
)
from hounsfield.services.lifecycle import LifecycleService
from hounsfield.services.mpps import MppsService
from hounsfield.services.pixels.service import PixelService
from hounsfield.services.qr import QueryRetrieveService
from hounsfield.services.query import QueryService
from hounsfield.services.retrieve import RetrieveService
from hounsfield.services.staging import StagingArea
from hounsfield.services.worklist import WorklistService


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
        transfer_window=float(settings.audit_transfer_window),
    )


def open_dicom_network(settings: Settings) -> SocketNetwork:
    """The DIMSE client (Storage, Verification, Query/Retrieve SCU) with the dimse_* timeouts."""
    return SocketNetwork(
        acse_timeout=float(settings.dimse_acse_timeout),
        dimse_timeout=float(settings.dimse_timeout),
        network_timeout=float(settings.dimse_idle_timeout),
        max_pdu=settings.dimse_max_pdu,
        tls_context=lambda: client_context(settings),
    )
