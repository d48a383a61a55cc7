"""Fetching a study from a remote PACS into this archive, as a durable job (issue 3 routing).

"Fetch study S from AE Y" is a C-MOVE on Y whose Move Destination is our own AE title (PS3.4
C.4.2): Y opens an association to our Storage SCP and C-STOREs the instances, which enter
through the ingest service like any other C-STORE, into the partition Y is registered in.
As a job it survives restarts and is retried with back-off while Y is unreachable or some
sub-operations fail; a refusal that retrying cannot fix (A801: Y does not know our AE title
as a destination; an unregistered source) goes to the dead-letter state at once.
"""

from __future__ import annotations

import logging

from hounsfield.domain.qrmodel import Model
from hounsfield.ports.dicom_network import DicomNetwork, DimseReply
from hounsfield.ports.index import IndexStore
from hounsfield.ports.jobs import Job, NewJob
from hounsfield.services.jobs import PermanentJobError

log = logging.getLogger(__name__)

FETCH_JOB = "fetch"
#: PS3.4 C.4.2.1.5: Refused: Move Destination unknown.
MOVE_DESTINATION_UNKNOWN = 0xA801
_PENDING = 0xFF00
_STUDY_INSTANCE_UID = "0020000D"
_QUERY_RETRIEVE_LEVEL = "00080052"


class FetchService:
    def __init__(self, index: IndexStore, network: DicomNetwork, *, ae_title: str) -> None:
        self.index = index
        self.network = network
        self.ae_title = ae_title

    def queue(self, partition: str, source: str, study_uid: str, *, priority: int = 0) -> int:
        """Queue the fetch of one study; returns the job id."""
        [enqueued] = self.index.jobs.enqueue(
            [
                NewJob(
                    kind=FETCH_JOB,
                    partition=partition,
                    payload={"source": source, "study": study_uid},
                    priority=priority,
                )
            ]
        )
        return enqueued.id

    def run_job(self, job: Job) -> None:
        """The `fetch` job handler: one Study Root C-MOVE of the study to ourselves."""
        source = str(job.payload["source"])
        remote = self.index.get_remote_ae(source)
        if remote is None or remote.partition != job.partition:
            raise PermanentJobError(
                f"source AE {source!r} is not registered in partition {job.partition!r}"
            )
        identifier = {
            _QUERY_RETRIEVE_LEVEL: {"vr": "CS", "Value": ["STUDY"]},
            _STUDY_INSTANCE_UID: {"vr": "UI", "Value": [str(job.payload["study"])]},
        }
        final: DimseReply | None = None
        for reply in self.network.move(
            remote,
            calling_ae=self.ae_title,
            sop_class_uid=Model.STUDY_ROOT.sop_class("move"),
            identifier=identifier,
            destination=self.ae_title,
        ):
            if reply.status != _PENDING:
                final = reply
        if final is None:
            raise RuntimeError(f"{source} ended the C-MOVE without a final response")
        counts = final.counts
        summary = (
            f"C-MOVE status {final.status:04X}: completed"
            f" {counts.get('NumberOfCompletedSuboperations', 0)}, failed"
            f" {counts.get('NumberOfFailedSuboperations', 0)}, warning"
            f" {counts.get('NumberOfWarningSuboperations', 0)}"
            + (f" ({final.error_comment})" if final.error_comment else "")
        )
        if final.status == MOVE_DESTINATION_UNKNOWN:
            raise PermanentJobError(
                f"{source} does not know {self.ae_title} as a move destination: {summary}"
            )
        if final.status != 0:
            raise RuntimeError(summary)
        moved = sum(
            counts.get(f"Number{kind}Suboperations", 0) for kind in ("OfCompleted", "OfWarning")
        )
        if not moved:
            raise PermanentJobError(f"{source} has no instance of this study: {summary}")
        log.info("job %d: fetched a study from %s (%s)", job.id, source, summary)
