"""De-identified copies of a study: to a folder (`hounsfield export --deidentify`) or into
another partition as a durable job (`POST /api/deidentify`, job kind `deidentify`).

Each stored object is read, de-identified by `domain.deidentify` (PS3.15 Annex E) and written
out; the original is never touched (DESIGN.md key idea 1). One `Deidentifier` serves a whole
study, so UIDs are remapped consistently across its series and references. The salt of the
remapping is the `deidentify_salt` setting when set (the same source UID then maps to the same
new UID in every export: longitudinal research sets stay linked), else a random one per
export. A job keeps its salt in its payload, so a retried job writes the same UIDs again and
the copy converges instead of doubling.

Every export is audited (PS3.15 A.5.3.6 Export), with its outcome.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread

from hounsfield.domain import audit as a
from hounsfield.domain.deidentify import (
    BurnedInAnnotationError,
    DeidentificationError,
    Deidentifier,
    Options,
)
from hounsfield.domain.errors import NotFoundError
from hounsfield.domain.identifiers import is_valid_partition
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.index import IndexStore, StoredInstance
from hounsfield.ports.jobs import Job, NewJob
from hounsfield.services.audit import Actor, AuditService
from hounsfield.services.ingest import IngestService, InstanceResult, Outcome, Prepared
from hounsfield.services.jobs import PermanentJobError

log = logging.getLogger(__name__)

DEIDENTIFY_JOB = "deidentify"


@dataclass(frozen=True, slots=True)
class ExportReport:
    instances: int
    refused: int
    study_uid: str  # the new Study Instance UID (the original with Retain UIDs)
    target: str


@dataclass
class DeidentifyService:
    index: IndexStore
    blobs: BlobStore
    ingest: IngestService
    audit: AuditService | None = None
    salt: str = ""
    source_id: str = "HOUNSFIELD"

    def _salt(self, given: str | None = None) -> bytes:
        return (given or self.salt or secrets.token_hex(32)).encode()

    def _instances(self, partition: str, study_uid: str) -> list[StoredInstance]:
        found = self.index.instances(partition, study_uid)
        if not found:
            raise NotFoundError(f"no study {study_uid} in partition {partition!r}")
        return found

    def _deidentified(self, engine: Deidentifier, instance: StoredInstance) -> bytes:
        data = b"".join(self.blobs.iter_bytes(instance.blob_key, 1 << 20))
        ds = dcmread(io.BytesIO(data), force=True)
        engine.apply(ds)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        return out.getvalue()

    def count(self, partition: str, study_uid: str) -> int:
        return len(self._instances(partition, study_uid))

    def export(
        self,
        partition: str,
        study_uid: str,
        target: Path,
        options: Options,
        *,
        actor: Actor | None = None,
        progress: Callable[[int], None] = lambda n: None,
    ) -> ExportReport:
        """Write the study de-identified under `target/<study>/<series>/<sop>.dcm`; objects
        refused for burned-in annotation are counted, not written."""
        instances = self._instances(partition, study_uid)
        engine = Deidentifier(options, self._salt())
        written = refused = 0
        try:
            for instance in instances:
                try:
                    data = self._deidentified(engine, instance)
                except BurnedInAnnotationError:
                    refused += 1
                    progress(1)
                    continue
                folder = target / engine.uid(instance.study_uid) / engine.uid(instance.series_uid)
                if "retain-uids" in options.options:
                    folder = target / instance.study_uid / instance.series_uid
                folder.mkdir(parents=True, exist_ok=True)
                sop = (
                    instance.sop_uid
                    if "retain-uids" in options.options
                    else engine.uid(instance.sop_uid)
                )
                (folder / f"{sop}.dcm").write_bytes(data)
                written += 1
                progress(1)
        except Exception:
            self._audit(actor, partition, study_uid, str(target), a.Outcome.SERIOUS_FAILURE, "")
            raise
        new_study = study_uid if "retain-uids" in options.options else engine.uid(study_uid)
        outcome = a.Outcome.SUCCESS if not refused else a.Outcome.MINOR_FAILURE
        self._audit(
            actor,
            partition,
            study_uid,
            str(target),
            outcome,
            f"{written} de-identified, {refused} refused (burned-in annotation)",
        )
        return ExportReport(written, refused, new_study, str(target))

    def _audit(
        self,
        actor: Actor | None,
        partition: str,
        study_uid: str,
        destination: str,
        outcome: a.Outcome,
        description: str,
    ) -> None:
        if self.audit is None:
            return
        self.audit.record(
            self.audit.exported(
                actor or Actor(self.source_id),
                partition,
                [study_uid],
                destination,
                outcome,
                description=description,
            )
        )

    # -- the job: a de-identified copy into another partition ---------------------------

    def queue(
        self,
        partition: str,
        study_uid: str,
        target_partition: str,
        options: Options,
        *,
        requested_by: str = "",
    ) -> int:
        if not is_valid_partition(target_partition):
            raise DeidentificationError(f"invalid partition name {target_partition!r}")
        if target_partition == partition:
            raise DeidentificationError("the de-identified copy must go to another partition")
        [enqueued] = self.index.jobs.enqueue(
            [
                NewJob(
                    kind=DEIDENTIFY_JOB,
                    partition=partition,
                    payload={
                        "study": study_uid,
                        "target": target_partition,
                        "options": sorted(options.options),
                        "allowBurnedIn": options.allow_burned_in,
                        "salt": "" if self.salt else secrets.token_hex(32),
                        "requestedBy": requested_by,
                    },
                )
            ]
        )
        return enqueued.id

    def run_job(self, job: Job) -> None:
        """The `deidentify` job handler: de-identify every instance of the study and store it
        in the target partition through the ingest service (idempotent: a retry stores the
        same UIDs, which the duplicate policy keeps once)."""
        payload = job.payload
        study_uid, target = str(payload["study"]), str(payload["target"])
        try:
            options = Options.of(
                [str(o) for o in payload.get("options", [])],
                allow_burned_in=bool(payload.get("allowBurnedIn", False)),
            )
            instances = self._instances(job.partition, study_uid)
        except (DeidentificationError, NotFoundError) as exc:
            raise PermanentJobError(str(exc)) from exc
        engine = Deidentifier(options, self._salt(str(payload.get("salt") or "")))
        actor = Actor(str(payload.get("requestedBy") or self.source_id))
        stored = refused = failed = 0
        for instance in instances:
            try:
                data = self._deidentified(engine, instance)
            except BurnedInAnnotationError:
                refused += 1
                continue
            results = self._store(data, target)
            if all(r.outcome is not Outcome.FAILED for r in results):
                stored += 1
            else:
                failed += 1
        description = f"{stored} copied to partition {target}, {refused} refused, {failed} failed"
        outcome = a.Outcome.SUCCESS if not (refused or failed) else a.Outcome.MINOR_FAILURE
        self._audit(actor, job.partition, study_uid, f"partition:{target}", outcome, description)
        if failed:
            raise RuntimeError(description)
        log.info("job %d: %s", job.id, description)

    def _store(self, data: bytes, partition: str) -> list[InstanceResult]:
        staged = self.ingest.staging.stage_bytes(data)
        prepared = self.ingest.prepare(staged, partition)
        if not isinstance(prepared, Prepared):
            return [prepared]
        return self.ingest.store([prepared])
