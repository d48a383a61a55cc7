"""The ingest service over the real SQLite index and file blob store: two-phase writes,
crash leftovers, duplicate policies and failure paths (DESIGN.md key idea 3, ADR 0002)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hounsfield.adapters.blobs.file import FileBlobStore
from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.domain.model import Level
from hounsfield.domain.query import MatchKey, Query, SingleValue
from hounsfield.domain.status import FailureReason, WarningReason
from hounsfield.services.ingest import IngestService, Outcome, Prepared
from hounsfield.services.staging import StagingArea
from tests.builders import make_instance, uid


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[SqliteIndex, FileBlobStore, StagingArea]]:
    index = SqliteIndex(tmp_path / "index.db", durable=False)
    index.migrate()
    try:
        yield index, FileBlobStore(tmp_path / "blobs"), StagingArea(tmp_path / "staging")
    finally:
        index.close()


def service(
    parts: tuple[SqliteIndex, FileBlobStore, StagingArea], **options: object
) -> IngestService:
    index, blobs, staging = parts
    return IngestService(index, blobs, staging, durable=False, **options)  # type: ignore[arg-type]


def sop_query(sop: str) -> Query:
    return Query(Level.IMAGE, keys=(MatchKey("00080018", "UI", SingleValue(sop)),))


def test_stored_instances_are_visible_with_blob_and_event(
    parts: tuple[SqliteIndex, FileBlobStore, StagingArea],
) -> None:
    index, blobs, staging = parts
    ingest = service(parts)
    sop = uid()
    (result,) = ingest.ingest_files([staging.stage_bytes(make_instance(sop_uid=sop))], "default")
    assert result.outcome is Outcome.STORED
    (stored,) = [i for i in index.all_instances() if i.sop_uid == sop]
    assert blobs.exists(stored.blob_key)
    assert index.query(sop_query(sop)).rows
    events = index.events_since(0, 10)
    assert [e.data["sopInstanceUID"] for e in events] == [sop]
    assert not list(staging.root.glob("*.part"))


def test_crash_before_commit_leaves_nothing_visible_and_is_swept(
    parts: tuple[SqliteIndex, FileBlobStore, StagingArea],
) -> None:
    index, blobs, staging = parts
    ingest = service(parts)
    sop = uid()
    prepared = ingest.prepare(staging.stage_bytes(make_instance(sop_uid=sop)), "default")
    assert isinstance(prepared, Prepared)
    # Phase 1 and the blob write happen, then the process "dies" before the commit.
    index.begin([prepared.instance])
    blobs.put_file(prepared.instance.blob_key, prepared.staged.path, durable=False)
    assert not index.query(sop_query(sop)).rows
    assert blobs.exists(prepared.instance.blob_key)

    assert ingest.sweep(datetime.now(UTC) - timedelta(hours=1), grace_seconds=0) == 0
    removed = ingest.sweep(datetime.now(UTC) + timedelta(seconds=5), grace_seconds=0)
    assert removed >= 1
    assert not blobs.exists(prepared.instance.blob_key)
    # The same instance can then be stored normally.
    (again,) = ingest.ingest_files([staging.stage_bytes(make_instance(sop_uid=sop))], "default")
    assert again.outcome is Outcome.STORED


def test_leftover_blob_without_row_is_replaced(
    parts: tuple[SqliteIndex, FileBlobStore, StagingArea],
) -> None:
    _, blobs, staging = parts
    ingest = service(parts)
    data = make_instance()
    prepared = ingest.prepare(staging.stage_bytes(data), "default")
    assert isinstance(prepared, Prepared)
    leftover = staging.stage_bytes(b"half-written garbage from a crash")
    blobs.put_file(prepared.instance.blob_key, leftover.path, durable=False)
    (result,) = ingest.store([prepared])
    assert result.outcome is Outcome.STORED
    assert b"".join(blobs.iter_bytes(prepared.instance.blob_key)) == data


def test_duplicate_policies(parts: tuple[SqliteIndex, FileBlobStore, StagingArea]) -> None:
    _, _, staging = parts
    data = make_instance()
    keep = service(parts)
    assert keep.ingest_files([staging.stage_bytes(data)], "default")[0].outcome is Outcome.STORED
    (kept,) = keep.ingest_files([staging.stage_bytes(data)], "default")
    assert kept.outcome is Outcome.WARNING
    assert kept.warning is WarningReason.DUPLICATE_KEPT
    reject = service(parts, duplicate_policy="reject")
    (rejected,) = reject.ingest_files([staging.stage_bytes(data)], "default")
    assert rejected.failure is FailureReason.DUPLICATE_SOP_INSTANCE
    assert not list(staging.root.glob("*.part"))


def test_same_uids_in_two_partitions_are_independent(
    parts: tuple[SqliteIndex, FileBlobStore, StagingArea],
) -> None:
    index, _, staging = parts
    ingest = service(parts)
    data = make_instance()
    assert ingest.ingest_files([staging.stage_bytes(data)], "a")[0].outcome is Outcome.STORED
    assert ingest.ingest_files([staging.stage_bytes(data)], "b")[0].outcome is Outcome.STORED
    keys = {i.blob_key for i in index.all_instances()}
    assert len(keys) == 2


def test_uid_conflict_across_studies(parts: tuple[SqliteIndex, FileBlobStore, StagingArea]) -> None:
    _, _, staging = parts
    ingest = service(parts)
    sop = uid()
    ingest.ingest_files([staging.stage_bytes(make_instance(sop_uid=sop))], "default")
    (conflict,) = ingest.ingest_files([staging.stage_bytes(make_instance(sop_uid=sop))], "default")
    assert conflict.failure is FailureReason.UID_CONFLICT


def test_blob_write_failure_is_out_of_resources_and_leaves_no_row(
    parts: tuple[SqliteIndex, FileBlobStore, StagingArea], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, blobs, staging = parts
    ingest = service(parts)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blobs, "put_file", disk_full)
    sop = uid()
    (result,) = ingest.ingest_files([staging.stage_bytes(make_instance(sop_uid=sop))], "default")
    assert result.failure is FailureReason.OUT_OF_RESOURCES
    assert not index.query(sop_query(sop)).rows
    assert index.sweep_pending(datetime.now(UTC) + timedelta(days=1)) == []


def test_commit_failure_removes_blobs(
    parts: tuple[SqliteIndex, FileBlobStore, StagingArea], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, blobs, staging = parts
    ingest = service(parts)

    def broken_commit(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(index, "commit", broken_commit)
    (result,) = ingest.ingest_files([staging.stage_bytes(make_instance())], "default")
    assert result.failure is FailureReason.PROCESSING_FAILURE
    assert list(blobs.keys()) == []


def test_missing_uid_and_bare_data_set_are_rejected(
    parts: tuple[SqliteIndex, FileBlobStore, StagingArea],
) -> None:
    from tests.builders import make_dataset, to_bytes

    _, _, staging = parts
    ingest = service(parts)
    ds = make_dataset()
    del ds.SeriesInstanceUID
    (missing,) = ingest.ingest_files([staging.stage_bytes(to_bytes(ds))], "default")
    assert missing.failure is FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert "SeriesInstanceUID" in missing.message
    bare = make_instance()[132:]  # no preamble, no DICM, but the meta group is still there
    (result,) = ingest.ingest_files([staging.stage_bytes(bare)], "default")
    assert result.failure is FailureReason.CANNOT_UNDERSTAND
