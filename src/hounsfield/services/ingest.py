"""Ingest: one service for every way objects arrive (STOW-RS now, C-STORE and import too).

The sequence is DESIGN.md key idea 3: walk the staged bytes once (`prepare`), then record pending
index rows, move the bytes into the blob store, and commit the rows with their `InstanceStored`
events in one transaction (`store`). An instance is acknowledged only after `store` returns, and
`IndexStore.commit` is durable, so an acknowledged instance survives a crash
(docs/adr/0002-durability.md). Batches amortise the commit's fsync over many instances.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import orjson

from hounsfield.domain import events
from hounsfield.domain.dicomwalk import walk
from hounsfield.domain.errors import InvalidDicomError
from hounsfield.domain.identifiers import is_valid_uid
from hounsfield.domain.levels import split_by_level
from hounsfield.domain.model import ParsedInstance
from hounsfield.domain.status import FailureReason, WarningReason
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.index import BeginOutcome, Event, IndexStore, NewInstance
from hounsfield.services.staging import StagedFile, StagingArea

log = logging.getLogger(__name__)

DuplicatePolicy = Literal["keep-first", "reject"]


class Outcome(enum.Enum):
    STORED = "stored"
    WARNING = "warning"  # stored, or already stored, with a Warning Reason
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class InstanceResult:
    """The outcome for one object, as STOW-RS and C-STORE report it (PS3.18 I.2, PS3.4 B.2.3)."""

    outcome: Outcome
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    failure: FailureReason | None = None
    warning: WarningReason | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A staged object whose header has been walked, ready to be stored."""

    staged: StagedFile
    parsed: ParsedInstance
    instance: NewInstance


def blob_key(partition: str, study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Blob keys derive from partition and UIDs (DESIGN.md ports), so they are never reused
    across partitions and a file store's tree mirrors the information model."""
    return f"{partition}/{study_uid}/{series_uid}/{sop_uid}.dcm"


def _failed(
    reason: FailureReason, message: str, parsed: ParsedInstance | None = None
) -> InstanceResult:
    if parsed is None:
        return InstanceResult(Outcome.FAILED, failure=reason, message=message)
    return InstanceResult(
        Outcome.FAILED,
        sop_class_uid=parsed.sop_class_uid,
        sop_instance_uid=parsed.sop_instance_uid,
        study_uid=parsed.study_instance_uid,
        series_uid=parsed.series_instance_uid,
        failure=reason,
        message=message,
    )


class IngestService:
    def __init__(
        self,
        index: IndexStore,
        blobs: BlobStore,
        staging: StagingArea,
        *,
        bulk_data_threshold: int = 1024,
        duplicate_policy: DuplicatePolicy = "keep-first",
        durable: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.staging = staging
        self.bulk_data_threshold = bulk_data_threshold
        self.duplicate_policy = duplicate_policy
        self.durable = durable
        self.clock = clock

    def prepare(
        self, staged: StagedFile, partition: str, expected_study_uid: str | None = None
    ) -> Prepared | InstanceResult:
        """Walk the staged object once; on failure the staged file is discarded and the result
        carries the Failure Reason (PS3.18 Table I.2-2)."""
        try:
            with staged.path.open("rb") as fp:
                is_part10 = fp.read(132)[128:] == b"DICM"
                fp.seek(0)
                parsed = walk(fp, bulk_threshold=self.bulk_data_threshold, require_uids=False)
        except InvalidDicomError as exc:
            self.staging.discard(staged)
            return _failed(FailureReason.CANNOT_UNDERSTAND, f"not a readable DICOM object: {exc}")
        if not (is_part10 and parsed.has_file_meta):
            # application/dicom is the PS3.10 file format (PS3.18 8.7.3.1, PS3.10 7.1), and the
            # bytes are served as stored: without a preamble and File Meta Information they
            # would be served as something they are not, and their encoding would be a guess.
            self.staging.discard(staged)
            return _failed(
                FailureReason.CANNOT_UNDERSTAND,
                "not a PS3.10 file: no 128-byte preamble, 'DICM' prefix and File Meta Information",
            )
        for keyword, uid in (
            ("SOPClassUID", parsed.sop_class_uid),
            ("SOPInstanceUID", parsed.sop_instance_uid),
            ("SeriesInstanceUID", parsed.series_instance_uid),
            ("StudyInstanceUID", parsed.study_instance_uid),
        ):
            if not uid:
                self.staging.discard(staged)
                return _failed(
                    FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                    f"missing required attribute {keyword}",
                    parsed,
                )
            if not is_valid_uid(uid):
                self.staging.discard(staged)
                return _failed(
                    FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                    f"{keyword} is not a valid UID (PS3.5 9.1)",
                    parsed,
                )
        if expected_study_uid is not None and parsed.study_instance_uid != expected_study_uid:
            self.staging.discard(staged)
            return _failed(
                FailureReason.STUDY_UID_MISMATCH,
                "StudyInstanceUID of the instance differs from the study in the request URL",
                parsed,
            )
        return Prepared(staged, parsed, self._new_instance(staged, parsed, partition))

    def _new_instance(
        self, staged: StagedFile, parsed: ParsedInstance, partition: str
    ) -> NewInstance:
        patient, study, series, instance = split_by_level(parsed.dataset_json)
        return NewInstance(
            partition=partition,
            study_uid=parsed.study_instance_uid,
            series_uid=parsed.series_instance_uid,
            sop_uid=parsed.sop_instance_uid,
            sop_class_uid=parsed.sop_class_uid,
            transfer_syntax_uid=parsed.transfer_syntax_uid,
            blob_key=blob_key(
                partition,
                parsed.study_instance_uid,
                parsed.series_instance_uid,
                parsed.sop_instance_uid,
            ),
            size=staged.size,
            sha256=staged.sha256,
            patient_attrs=patient,
            study_attrs=study,
            series_attrs=series,
            instance_attrs=instance,
            metadata=orjson.dumps(parsed.dataset_json),
            pixel=parsed.pixel,
            bulk_ranges=parsed.bulk_ranges,
            received_at=self.clock(),
        )

    def store(self, batch: Sequence[Prepared]) -> list[InstanceResult]:
        """Two-phase store of a batch; results in the order of `batch`."""
        if not batch:
            return []
        outcomes = self.index.begin([p.instance for p in batch])
        results: dict[int, InstanceResult] = {}
        written: list[int] = []
        for i, (prepared, outcome) in enumerate(zip(batch, outcomes, strict=True)):
            if outcome is BeginOutcome.NEW:
                try:
                    self._put(prepared)
                except OSError as exc:
                    log.error("blob write failed for %s: %s", prepared.instance.blob_key, exc)
                    self.index.abort(prepared.instance.partition, [prepared.instance.sop_uid])
                    self.staging.discard(prepared.staged)
                    results[i] = _failed(
                        FailureReason.OUT_OF_RESOURCES,
                        "could not write the object",
                        prepared.parsed,
                    )
                    continue
                written.append(i)
            else:
                self.staging.discard(prepared.staged)
                results[i] = self._not_new(prepared.parsed, outcome)
        if written and self.durable:
            try:
                self.blobs.make_durable([batch[i].instance.blob_key for i in written])
            except OSError as exc:
                log.error("could not sync %d blobs: %s", len(written), exc)
                for i in written:
                    self.blobs.delete(batch[i].instance.blob_key)
                    results[i] = _failed(
                        FailureReason.OUT_OF_RESOURCES,
                        "could not write the object",
                        batch[i].parsed,
                    )
                self.index.abort(
                    batch[0].instance.partition, [batch[i].instance.sop_uid for i in written]
                )
                written = []
        if written:
            chosen = [batch[i].instance for i in written]
            stored_events = [
                Event(
                    type=events.INSTANCE_STORED,
                    partition=inst.partition,
                    data=events.instance_payload(
                        inst.study_uid, inst.series_uid, inst.sop_uid, inst.sop_class_uid
                    ),
                )
                for inst in chosen
            ]
            try:
                self.index.commit(chosen, stored_events)
            except Exception:
                log.exception("index commit failed for a batch of %d instances", len(chosen))
                for inst in chosen:
                    self.blobs.delete(inst.blob_key)
                self.index.abort(chosen[0].partition, [inst.sop_uid for inst in chosen])
                for i in written:
                    results[i] = _failed(
                        FailureReason.PROCESSING_FAILURE, "index commit failed", batch[i].parsed
                    )
            else:
                for i in written:
                    parsed = batch[i].parsed
                    results[i] = InstanceResult(
                        Outcome.STORED,
                        sop_class_uid=parsed.sop_class_uid,
                        sop_instance_uid=parsed.sop_instance_uid,
                        study_uid=parsed.study_instance_uid,
                        series_uid=parsed.series_instance_uid,
                    )
        return [results[i] for i in range(len(batch))]

    def _put(self, prepared: Prepared) -> None:
        key = prepared.instance.blob_key
        if self.blobs.exists(key):
            # A blob without a committed row, left by a crash before commit. The pending row we
            # hold makes us the only writer of this key, so the leftover can go.
            self.blobs.delete(key)
        # Not durable yet: `make_durable` syncs the files and directories of the whole batch at
        # once before the index commit. Syncing each file as it arrives, concurrently with the
        # writes of the next parts, measured 2x slower on ext4 (each fsync flushes the journal).
        self.blobs.put_file(key, prepared.staged.path, durable=False)

    def _not_new(self, parsed: ParsedInstance, outcome: BeginOutcome) -> InstanceResult:
        if outcome is BeginOutcome.DUPLICATE:
            if self.duplicate_policy == "keep-first":
                return InstanceResult(
                    Outcome.WARNING,
                    sop_class_uid=parsed.sop_class_uid,
                    sop_instance_uid=parsed.sop_instance_uid,
                    study_uid=parsed.study_instance_uid,
                    series_uid=parsed.series_instance_uid,
                    warning=WarningReason.DUPLICATE_KEPT,
                    message="already stored; the stored instance was kept",
                )
            return _failed(
                FailureReason.DUPLICATE_SOP_INSTANCE, "SOP Instance UID already stored", parsed
            )
        if outcome is BeginOutcome.CONFLICT:
            return _failed(
                FailureReason.UID_CONFLICT,
                "SOP Instance UID already stored under another study or series",
                parsed,
            )
        return _failed(
            FailureReason.PROCESSING_FAILURE,
            "another upload of this SOP Instance UID is in progress",
            parsed,
        )

    def ingest_files(
        self,
        staged: Sequence[StagedFile],
        partition: str,
        expected_study_uid: str | None = None,
    ) -> list[InstanceResult]:
        """Prepare and store staged files as one batch (import, tests, small uploads)."""
        results: list[InstanceResult | None] = []
        ready: list[Prepared] = []
        positions: list[int] = []
        for item in staged:
            prepared = self.prepare(item, partition, expected_study_uid)
            if isinstance(prepared, Prepared):
                positions.append(len(results))
                results.append(None)
                ready.append(prepared)
            else:
                results.append(prepared)
        for position, result in zip(positions, self.store(ready), strict=True):
            results[position] = result
        return [r for r in results if r is not None]

    def sweep(self, now: datetime, grace_seconds: float) -> int:
        """Remove abandoned pending rows and their blobs, and stale staged uploads."""
        keys = self.index.sweep_pending(now - timedelta(seconds=grace_seconds))
        for key in keys:
            self.blobs.delete(key)
        return len(keys) + self.staging.sweep(grace_seconds)
