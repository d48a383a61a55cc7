"""HTJ2K copies: a fast-to-decode re-encoding kept next to each slow-to-decode original.

JPEG 2000 decodes in 33-44 ms per 512² frame, HTJ2K (PS3.5 A.4.11, lossless RPCL) in about
2 ms (DESIGN.md §4), so a viewer scrolling a J2K series is bound by decoding. After ingest, a
job re-encodes such an instance to HTJ2K Lossless and stores the copy under
`<original blob key>.htj2k`, recorded in the index (`derived_copies`) with its frame offsets.
The pixel service then decodes frames from the copy (rendered images, transcoded frames);
WADO-RS still returns the original bytes by default, and the original is never touched
(DESIGN.md key idea 1). The copy's pixel values are those of the original decoded: HTJ2K
lossless is exact, also when the original was lossy.

The copies are made by a consumer of `InstanceStored` events that queues a `derive-htj2k` job
per instance whose transfer syntax is slow to decode, in the configured partitions and
modalities. Copies go when their instance is deleted (the index delete returns their keys).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from hounsfield.domain import events
from hounsfield.domain.dicomwalk import walk
from hounsfield.domain.errors import HounsfieldError
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.index import DerivedCopy, Event, IndexStore, StoredInstance
from hounsfield.ports.jobs import Job, NewJob
from hounsfield.services.cloudevents import event_id
from hounsfield.services.jobs import PermanentJobError
from hounsfield.services.pixels.codec import CodecError
from hounsfield.services.pixels.service import NoPixelDataError, PixelService
from hounsfield.services.pixels.syntaxes import (
    HTJ2K_LOSSLESS_RPCL,
    J2K,
    J2K_LOSSLESS,
    JPEG_LOSSLESS,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR,
)
from hounsfield.services.staging import StagingArea

log = logging.getLogger(__name__)

DERIVE_JOB = "derive-htj2k"
KIND = "htj2k"
#: Stored syntaxes worth a copy: their decoders are several times slower than HTJ2K's.
SLOW_SYNTAXES = frozenset(
    {J2K_LOSSLESS, J2K, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, JPEG_LS_NEAR}
)
_MODALITY = "00080060"
#: Seconds a "no copy" answer is trusted before the index is asked again.
_MISS_SECONDS = 5.0
_KEPT = 4096


@dataclass(frozen=True, slots=True)
class CopyPolicy:
    """Which instances get a copy: empty tuples mean every partition / modality."""

    enabled: bool = True
    partitions: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()


class DerivedCopyService:
    def __init__(
        self,
        index: IndexStore,
        blobs: BlobStore,
        staging: StagingArea,
        pixels: PixelService,
        policy: CopyPolicy,
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.staging = staging
        self.pixels = pixels
        self.policy = policy
        self._known: OrderedDict[str, tuple[float, StoredInstance | None]] = OrderedDict()
        self._lock = threading.Lock()

    # -- the event consumer ------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if not self.policy.enabled or event.type != events.INSTANCE_STORED:
            return
        if self.policy.partitions and event.partition not in self.policy.partitions:
            return
        data = event.data
        found = self.index.instances(
            event.partition,
            str(data["studyInstanceUID"]),
            str(data["seriesInstanceUID"]),
            str(data["sopInstanceUID"]),
        )
        if not found or found[0].transfer_syntax_uid not in SLOW_SYNTAXES:
            return
        if self.policy.modalities and self._modality(found[0]) not in self.policy.modalities:
            return
        self.index.jobs.enqueue(
            [
                NewJob(
                    kind=DERIVE_JOB,
                    partition=event.partition,
                    payload={
                        "study": found[0].study_uid,
                        "series": found[0].series_uid,
                        "sop": found[0].sop_uid,
                    },
                    priority=-1,  # after forwarding: a copy only makes reading faster
                    idempotency_key=f"{DERIVE_JOB}:{event_id(event)}",
                    max_attempts=3,
                )
            ]
        )

    def _modality(self, instance: StoredInstance) -> str | None:
        for _, doc in self.index.metadata(
            instance.partition, instance.study_uid, instance.series_uid, instance.sop_uid
        ):
            values = orjson.loads(doc).get(_MODALITY, {}).get("Value", [])
            return str(values[0]) if values else None
        return None

    # -- the job -----------------------------------------------------------------------------

    def run_job(self, job: Job) -> None:
        """Make the copy of one instance (the `derive-htj2k` job handler); idempotent."""
        payload = job.payload
        found = self.index.instances(
            job.partition, str(payload["study"]), str(payload["series"]), str(payload["sop"])
        )
        if not found:
            return  # deleted meanwhile: nothing to do
        instance = found[0]
        existing = self.index.derived(job.partition, instance.sop_uid, KIND)
        if existing is not None and existing.sha256 and self.blobs.exists(existing.blob_key):
            return
        writer = self.staging.writer()
        try:
            for chunk in self.pixels.transcode(instance, HTJ2K_LOSSLESS_RPCL):
                writer.write(chunk)
        except (CodecError, NoPixelDataError) as exc:
            writer.discard()
            raise PermanentJobError(f"no HTJ2K copy possible: {exc}") from exc
        except BaseException:
            writer.discard()
            raise
        staged = writer.finish()
        try:
            with staged.path.open("rb") as fp:
                parsed = walk(fp, require_uids=False)
        except HounsfieldError as exc:
            self.staging.discard(staged)
            raise RuntimeError(f"the HTJ2K copy cannot be read back: {exc}") from exc
        key = f"{instance.blob_key}.{KIND}"
        self.blobs.delete(key)  # a copy left by an attempt that died after writing it
        self.blobs.put_file(key, staged.path, durable=True)
        copy = DerivedCopy(KIND, HTJ2K_LOSSLESS_RPCL, key, staged.size, staged.sha256, parsed.pixel)
        if not self.index.put_derived(job.partition, instance.sop_uid, copy):
            self.blobs.delete(key)  # the instance was deleted while the copy was made
            return
        self._forget(instance)
        log.info(
            "job %d: HTJ2K copy of an instance, %d -> %d bytes", job.id, instance.size, staged.size
        )

    # -- reading -----------------------------------------------------------------------------

    def copy_for(self, instance: StoredInstance) -> StoredInstance | None:
        """The copy as a `StoredInstance` the pixel service decodes instead of the original,
        or None. Answers are cached: a copy by the original's content, an absence briefly;
        instances in a syntax that never gets a copy cost nothing."""
        if instance.transfer_syntax_uid not in SLOW_SYNTAXES:
            return None
        cache_key = f"{instance.partition}/{instance.sop_uid}/{instance.sha256}"
        now = time.monotonic()
        with self._lock:
            cached = self._known.get(cache_key)
        if cached is not None and (cached[1] is not None or now - cached[0] < _MISS_SECONDS):
            return cached[1]
        found = self.index.derived(instance.partition, instance.sop_uid, KIND)
        copy = (
            None
            if found is None
            else dataclasses.replace(
                instance,
                blob_key=found.blob_key,
                transfer_syntax_uid=found.transfer_syntax_uid,
                size=found.size,
                sha256=found.sha256,
                pixel=found.pixel,
            )
        )
        with self._lock:
            self._known[cache_key] = (now, copy)
            self._known.move_to_end(cache_key)
            while len(self._known) > _KEPT:
                self._known.popitem(last=False)
        return copy

    def _forget(self, instance: StoredInstance) -> None:
        with self._lock:
            self._known.pop(f"{instance.partition}/{instance.sop_uid}/{instance.sha256}", None)


def parse_policy(enabled: bool, partitions: Sequence[str], modalities: Sequence[str]) -> CopyPolicy:
    return CopyPolicy(enabled, tuple(partitions), tuple(m.upper() for m in modalities))
