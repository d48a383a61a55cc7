"""Erasing a patient everywhere, exporting a patient's data, and retention by partition.

GDPR Art. 17 (erasure) and 20 (portability), and HIPAA's right of access, are asked of the
archive for one patient at a time: find every study of the patient in a partition (by
Patient ID and, when given, Issuer of Patient ID: PS3.3 C.7.1.1, a Patient ID alone is only
unique within its issuer), then

- erase: delete each study through the lifecycle service (index rows, blobs, derived HTJ2K
  copies, cached metadata documents), drop the cached rendered images of those studies,
  cancel the queued jobs that would still read them (forwarding, copies), and write one
  `hounsfield.patient.erased` event holding only the studies' UIDs (never the Patient ID: the
  event log is not a place for PHI);
- export: copy each stored object, untouched, under `<dir>/<study>/<series>/<sop>.dcm`, with a
  manifest listing them.

Retention deletes, per partition, the studies that have received nothing for longer than the
partition's retention period (`retention_days`), in small batches, from every replica safely
(deleting a study twice finds nothing the second time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from hounsfield.domain import events
from hounsfield.domain.errors import NotFoundError
from hounsfield.domain.levels import PATIENT_ID, STUDY_INSTANCE_UID
from hounsfield.domain.model import Level
from hounsfield.domain.query import MatchKey, Query, SingleValue
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.cache import CacheUnavailable
from hounsfield.ports.index import Event, IndexStore, StoredInstance
from hounsfield.ports.jobs import JobFilter, JobState
from hounsfield.services.caching import RenderedOutputs
from hounsfield.services.lifecycle import LifecycleService

log = logging.getLogger(__name__)

ISSUER_OF_PATIENT_ID = "00100021"
#: Studies matched per query page when listing a patient's studies.
_PAGE = 500


@dataclass(frozen=True, slots=True)
class ErasureReport:
    studies: list[str] = field(default_factory=list)
    instances: int = 0
    cancelled_jobs: int = 0
    cached_images: int = 0


@dataclass(frozen=True, slots=True)
class ExportReport:
    studies: int
    instances: int
    bytes: int
    manifest: Path


class PatientDataService:
    def __init__(
        self,
        index: IndexStore,
        blobs: BlobStore,
        lifecycle: LifecycleService,
        rendered: RenderedOutputs | None = None,
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.lifecycle = lifecycle
        self.rendered = rendered

    def studies_of(self, partition: str, patient_id: str, issuer: str | None = None) -> list[str]:
        """Study Instance UIDs of the patient in the partition (exact Patient ID match)."""
        if not patient_id or "*" in patient_id or "?" in patient_id or "\\" in patient_id:
            raise ValueError("a patient is named by one exact Patient ID (no wildcards)")
        keys = [MatchKey(PATIENT_ID, "LO", SingleValue(patient_id))]
        if issuer:
            keys.append(MatchKey(ISSUER_OF_PATIENT_ID, "LO", SingleValue(issuer)))
        found: list[str] = []
        offset = 0
        while True:
            page = self.index.query(
                Query(
                    Level.STUDY,
                    keys=tuple(keys),
                    include=(STUDY_INSTANCE_UID,),
                    partition=partition,
                    limit=_PAGE,
                    offset=offset,
                )
            )
            found += [str(row[STUDY_INSTANCE_UID]["Value"][0]) for row in page.rows]
            if not page.more:
                return found
            offset += _PAGE

    def erase(self, partition: str, patient_id: str, issuer: str | None = None) -> ErasureReport:
        """Erase the patient's studies. Cached images are dropped before the studies (so that
        an unreachable cache fails the erasure while it can still be retried: raises
        CacheUnavailable) and again after them (an image rendered in between)."""
        studies = self.studies_of(partition, patient_id, issuer)
        if not studies:
            raise NotFoundError("no study of this patient in the partition")
        cached = self._forget_images(partition, studies)
        instances = 0
        for study in studies:
            try:
                instances += self.lifecycle.delete(partition, study)
            except NotFoundError:
                continue  # deleted meanwhile
        try:
            cached += self._forget_images(partition, studies)
        except CacheUnavailable:
            log.error("the cache became unreachable during an erasure; its images expire")
        cancelled = self._cancel_jobs(partition, set(studies))
        self.index.commit(
            [],
            [
                Event(
                    type=events.PATIENT_ERASED,
                    partition=partition,
                    data={"studyInstanceUIDs": studies, "instances": instances},
                )
            ],
        )
        log.info(
            "erased a patient: %d studies, %d instances, %d jobs cancelled",
            len(studies),
            instances,
            cancelled,
        )
        return ErasureReport(studies, instances, cancelled, cached)

    def _forget_images(self, partition: str, studies: list[str]) -> int:
        if self.rendered is None:
            return 0
        return sum(self.rendered.forget_study(partition, study) for study in studies)

    def _cancel_jobs(self, partition: str, studies: set[str]) -> int:
        cancelled = 0
        before: int | None = None
        while True:
            page = self.index.jobs.find(
                JobFilter(state=JobState.QUEUED, partition=partition, before_id=before, limit=500)
            )
            for job in page:
                if job.payload.get("study") in studies and self.index.jobs.cancel(job.id):
                    cancelled += 1
            if len(page) < 500:
                return cancelled
            before = page[-1].id

    def export(
        self,
        partition: str,
        patient_id: str,
        target: Path,
        issuer: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ExportReport:
        """Copy every stored object of the patient into `target` as PS3.10 files."""
        studies = self.studies_of(partition, patient_id, issuer)
        if not studies:
            raise NotFoundError("no study of this patient in the partition")
        target.mkdir(parents=True, exist_ok=True)
        files: list[dict[str, object]] = []
        total = 0
        for instance in self._instances(partition, studies):
            relative = Path(instance.study_uid) / instance.series_uid / f"{instance.sop_uid}.dcm"
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fp:
                for chunk in self.blobs.iter_bytes(instance.blob_key):
                    fp.write(chunk)
            total += instance.size
            files.append({"path": str(relative), "sha256": instance.sha256, "size": instance.size})
            if progress is not None:
                progress(1)
        manifest = target / "manifest.json"
        manifest.write_bytes(
            orjson.dumps(
                {"exportedAt": datetime.now(UTC).isoformat(), "studies": studies, "files": files},
                option=orjson.OPT_INDENT_2,
            )
        )
        return ExportReport(len(studies), len(files), total, manifest)

    def _instances(self, partition: str, studies: list[str]) -> Iterator[StoredInstance]:
        for study in studies:
            yield from self.index.instances(partition, study)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days a study is kept after its last change, per partition (absent: kept forever)."""

    days: dict[str, int]

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> RetentionPolicy:
        days: dict[str, int] = {}
        for entry in entries:
            partition, sep, value = entry.partition("=")
            if not sep or not partition.strip() or not value.strip().isdigit():
                raise ValueError(f"retention entry {entry!r} is not <partition>=<days>")
            if int(value) < 1:
                raise ValueError(f"retention entry {entry!r}: at least 1 day")
            days[partition.strip()] = int(value)
        return cls(days)


class RetentionService:
    def __init__(
        self, index: IndexStore, lifecycle: LifecycleService, policy: RetentionPolicy
    ) -> None:
        self.index = index
        self.lifecycle = lifecycle
        self.policy = policy

    def apply_once(self, now: datetime | None = None, limit: int = 100) -> int:
        """Delete up to `limit` expired studies per partition; returns how many."""
        now = now or datetime.now(UTC)
        deleted = 0
        for partition, days in sorted(self.policy.days.items()):
            cutoff = now - timedelta(days=days)
            for study in self.index.studies_unchanged_since(partition, cutoff, limit):
                try:
                    self.lifecycle.delete(partition, study)
                    deleted += 1
                except NotFoundError:
                    continue
        if deleted:
            log.info("retention deleted %d studies", deleted)
        return deleted
