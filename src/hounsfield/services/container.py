"""The set of services a front end is handed by the composition root (bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass

from hounsfield.services.admin import AdminService
from hounsfield.services.audit import AuditService
from hounsfield.services.changefeed import ChangeFeedService
from hounsfield.services.commitment import CommitmentService
from hounsfield.services.deidentify import DeidentifyService
from hounsfield.services.derived import DerivedCopyService
from hounsfield.services.dicom_send import DicomSendService
from hounsfield.services.erasure import PatientDataService
from hounsfield.services.fetching import FetchService
from hounsfield.services.forwarding import ForwardingService
from hounsfield.services.grants import GrantService
from hounsfield.services.ingest import IngestService
from hounsfield.services.integrity import IntegrityService
from hounsfield.services.jobs import JobService
from hounsfield.services.lifecycle import LifecycleService
from hounsfield.services.mpps import MppsService
from hounsfield.services.pixels.service import PixelService
from hounsfield.services.qr import QueryRetrieveService
from hounsfield.services.query import QueryService
from hounsfield.services.retrieve import RetrieveService
from hounsfield.services.staging import StagingArea
from hounsfield.services.worklist import WorklistService


@dataclass(frozen=True, slots=True)
class Services:
    ingest: IngestService
    query: QueryService
    retrieve: RetrieveService
    lifecycle: LifecycleService
    admin: AdminService
    integrity: IntegrityService
    staging: StagingArea
    #: DIMSE Query/Retrieve (C-FIND answers, C-MOVE/C-GET plans) and the Storage SCU.
    qr: QueryRetrieveService | None = None
    dicom_send: DicomSendService | None = None
    #: Modality worklist items (admin API) for the Modality Worklist C-FIND SCP.
    worklist: WorklistService | None = None
    #: Storage Commitment Push Model decisions (PS3.4 Annex J).
    commitment: CommitmentService | None = None
    #: Modality Performed Procedure Steps recorded from N-CREATE/N-SET (PS3.4 Annex F).
    mpps: MppsService | None = None
    #: The change feed read from the outbox (DICOMweb /changefeed, docs/events.md).
    changefeed: ChangeFeedService | None = None
    #: Decoding, transcoding and rendering of frames (WADO-RS transcoding, rendered, WADO-URI).
    pixels: PixelService | None = None
    #: Durable jobs as the admin API and CLI see them (services/jobs.py).
    jobs: JobService | None = None
    #: Forwarding rules, their event consumer and the `forward` job (services/forwarding.py).
    forwarding: ForwardingService | None = None
    #: "Fetch study S from AE Y into this archive" as a job (services/fetching.py).
    fetching: FetchService | None = None
    #: HTJ2K copies of slow-to-decode instances (services/derived.py).
    derived: DerivedCopyService | None = None
    #: Erasure and export of one patient's data; retention (services/erasure.py).
    patients: PatientDataService | None = None
    #: The audit trail (PS3.15 A.5 messages, services/audit.py); None when it is off.
    audit: AuditService | None = None
    #: De-identified exports and copies (PS3.15 Annex E, services/deidentify.py).
    deidentify: DeidentifyService | None = None
    #: Study-level read grants (services/grants.py).
    grants: GrantService | None = None
