"""HTJ2K copies (services/derived.py) in process, over the real SQLite index and file store:
which instances get one, that the copy decodes to exactly the original's pixels, that the
pixel service reads it instead of the original, and that it goes with its instance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hounsfield.adapters.blobs.file import FileBlobStore
from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.domain import events
from hounsfield.ports.index import Event, StoredInstance
from hounsfield.ports.jobs import JobFilter
from hounsfield.services.derived import DERIVE_JOB, CopyPolicy, DerivedCopyService
from hounsfield.services.ingest import IngestService, Outcome
from hounsfield.services.jobs import JobWorker
from hounsfield.services.pixels.service import PixelService
from hounsfield.services.retrieve import RetrieveService
from hounsfield.services.staging import StagingArea
from tests.pixelsupport import corpus_bytes

HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
SLOW = ("MR_small_jp2klossless.dcm", "JPEG2000.dcm", "MR_small_jpeg_ls_lossless.dcm")
FAST = ("CT_small.dcm", "MR_small_RLE.dcm")


@dataclass
class Archive:
    index: SqliteIndex
    blobs: FileBlobStore
    originals: PixelService
    pixels: PixelService
    derived: DerivedCopyService
    worker: JobWorker
    instances: dict[str, StoredInstance]


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    index = SqliteIndex(tmp_path / "index.db", durable=False)
    index.migrate()
    blobs = FileBlobStore(tmp_path / "blobs")
    staging = StagingArea(tmp_path / "staging")
    ingest = IngestService(index, blobs, staging, durable=False)
    retrieve = RetrieveService(index, blobs)
    originals = PixelService(retrieve)
    derived = DerivedCopyService(index, blobs, staging, PixelService(retrieve), CopyPolicy())
    instances = {}
    for number, name in enumerate(SLOW + FAST):
        (result,) = ingest.ingest_files([staging.stage_bytes(corpus_bytes(name))], f"p{number}")
        assert result.outcome is Outcome.STORED, (name, result)
        (instances[name],) = [i for i in index.all_instances() if i.partition == f"p{number}"]
    worker = JobWorker(index.jobs, {DERIVE_JOB: derived.run_job})
    yield Archive(
        index,
        blobs,
        originals,
        PixelService(retrieve, copies=derived.copy_for),
        derived,
        worker,
        instances,
    )
    index.close()


def frames(service: PixelService, instance: StoredInstance) -> list[np.ndarray]:  # type: ignore[type-arg]
    return [d.array for d in service.frames(service.source(instance))]


def test_slow_syntaxes_get_an_exact_htj2k_copy_that_the_pixel_service_reads(
    archive: Archive,
) -> None:
    for event in archive.index.events_since(0, 100):
        archive.derived.on_event(event)
        archive.derived.on_event(event)  # a redelivery queues nothing more
    queued = archive.index.jobs.find(JobFilter(kind=DERIVE_JOB))
    slow = {archive.instances[name].sop_uid for name in SLOW}
    assert {j.payload["sop"] for j in queued} == slow and len(queued) == len(SLOW)
    while archive.worker.run_once():
        pass
    for name in SLOW:
        original = archive.instances[name]
        copy = archive.index.derived(original.partition, original.sop_uid, "htj2k")
        assert copy is not None and copy.transfer_syntax_uid == HTJ2K_RPCL, name
        assert archive.blobs.exists(copy.blob_key)
        assert archive.pixels.source(original).info.transfer_syntax == HTJ2K_RPCL
        expected = frames(archive.originals, original)
        assert archive.originals.source(original).info.transfer_syntax != HTJ2K_RPCL
        got = frames(archive.pixels, original)
        assert len(got) == len(expected)
        assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True)), name
    for name in FAST:
        fast = archive.instances[name]
        assert archive.index.derived(fast.partition, fast.sop_uid, "htj2k") is None

    # The copy goes with its instance: the delete returns both keys.
    victim = archive.instances[SLOW[0]]
    copy = archive.index.derived(victim.partition, victim.sop_uid, "htj2k")
    assert copy is not None
    deleted = archive.index.delete(victim.partition, victim.study_uid)
    assert set(deleted.blob_keys) == {victim.blob_key, copy.blob_key}


def test_policy_limits_copies_to_modalities_and_partitions(archive: Archive) -> None:
    archive.derived.policy = CopyPolicy(modalities=("CT",))
    stored = [e for e in archive.index.events_since(0, 100) if e.type == events.INSTANCE_STORED]
    for event in stored:
        archive.derived.on_event(event)
    assert archive.index.jobs.find(JobFilter(kind=DERIVE_JOB)) == []  # the slow ones are MR
    archive.derived.policy = CopyPolicy(partitions=("p1",))
    for event in stored:
        archive.derived.on_event(event)
    [job] = archive.index.jobs.find(JobFilter(kind=DERIVE_JOB))
    assert job.partition == "p1"
    archive.derived.policy = CopyPolicy(enabled=False)
    archive.derived.on_event(Event(events.INSTANCE_STORED, "p0", stored[0].data, seq=999))
    assert len(archive.index.jobs.find(JobFilter(kind=DERIVE_JOB))) == 1


def test_a_job_for_a_deleted_instance_succeeds_without_a_copy(archive: Archive) -> None:
    for event in archive.index.events_since(0, 100):
        archive.derived.on_event(event)
    victim = archive.instances[SLOW[1]]
    archive.index.delete(victim.partition, victim.study_uid)
    while archive.worker.run_once():
        pass
    jobs = archive.index.jobs.find(JobFilter(kind=DERIVE_JOB))
    assert {j.state.value for j in jobs} == {"succeeded"}
    assert archive.index.derived(victim.partition, victim.sop_uid, "htj2k") is None
    assert not archive.blobs.exists(f"{victim.blob_key}.htj2k")
