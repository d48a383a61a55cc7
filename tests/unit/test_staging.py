"""Staging: uploads written to local files while their SHA-256 is computed."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hounsfield.services.staging import StagedFile, StagingArea, fsync_directory

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture
def area(tmp_path: Path) -> StagingArea:
    return StagingArea(tmp_path / "staging" / "nested")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_root_is_created(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    StagingArea(root)
    assert root.is_dir()
    StagingArea(root)  # and an existing one is fine


def test_writer_hashes_and_counts_chunks(area: StagingArea) -> None:
    chunks: list[bytes | memoryview] = [b"DICM", b"", memoryview(b"\x00\x01\x02"), b"x" * 100_000]
    writer = area.writer()
    for chunk in chunks:
        writer.write(chunk)
    assert writer.size == 100_007
    staged = writer.finish()
    data = b"".join(bytes(c) for c in chunks)
    assert staged == StagedFile(staged.path, len(data), sha256(data))
    assert staged.path.read_bytes() == data
    assert staged.path.parent == area.root
    assert staged.path.suffix == ".part"


def test_empty_upload(area: StagingArea) -> None:
    staged = area.writer().finish()
    assert (staged.size, staged.sha256) == (0, EMPTY_SHA256)
    assert staged.path.read_bytes() == b""


def test_known_digest(area: StagingArea) -> None:
    staged = area.stage_bytes(b"abc")
    assert staged.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert staged.size == 3


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(max_size=300), max_size=10))
def test_any_chunking_gives_the_digest_of_the_whole(area: StagingArea, chunks: list[bytes]) -> None:
    writer = area.writer()
    for chunk in chunks:
        writer.write(chunk)
    staged = writer.finish()
    data = b"".join(chunks)
    assert (staged.size, staged.sha256) == (len(data), sha256(data))
    assert staged.path.read_bytes() == data
    StagingArea.discard(staged)


def test_every_writer_has_its_own_file(area: StagingArea) -> None:
    a, b = area.writer(), area.writer()
    a.write(b"a")
    b.write(b"b")
    first, second = a.finish(), b.finish()
    assert first.path != second.path
    assert (first.path.read_bytes(), second.path.read_bytes()) == (b"a", b"b")


def test_writer_discard_removes_the_file(area: StagingArea) -> None:
    writer = area.writer()
    writer.write(b"partial upload")
    assert writer.path.exists()
    writer.discard()
    assert not writer.path.exists()
    assert list(area.root.iterdir()) == []


def test_discard_of_a_staged_file(area: StagingArea) -> None:
    staged = area.stage_bytes(b"data")
    StagingArea.discard(staged)
    assert not staged.path.exists()
    StagingArea.discard(staged)  # already gone: not an error


def test_stage_copy(area: StagingArea, tmp_path: Path) -> None:
    source = tmp_path / "in.dcm"
    data = os.urandom(3 << 20)  # more than one read
    source.write_bytes(data)
    staged = area.stage_copy(source)
    assert (staged.size, staged.sha256) == (len(data), sha256(data))
    assert staged.path.read_bytes() == data
    assert source.read_bytes() == data  # the source is left alone


def test_stage_copy_of_a_missing_file_leaves_nothing(area: StagingArea, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        area.stage_copy(tmp_path / "missing.dcm")
    assert list(area.root.iterdir()) == []


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_sweep_removes_only_old_staged_files(area: StagingArea) -> None:
    old = area.stage_bytes(b"old")
    older = area.stage_bytes(b"older")
    fresh = area.stage_bytes(b"fresh")
    age(old.path, 7200)
    age(older.path, 86400)
    age(fresh.path, 60)
    other = area.root / "notes.txt"  # not a staged upload
    other.write_text("keep")
    age(other, 86400)
    assert area.sweep(3600) == 2
    assert not old.path.exists() and not older.path.exists()
    assert fresh.path.exists() and other.exists()
    assert area.sweep(3600) == 0


def test_sweep_keeps_an_upload_in_progress(area: StagingArea) -> None:
    writer = area.writer()
    writer.write(b"being written")
    assert area.sweep(10) == 0
    assert writer.path.exists()
    writer.discard()


def test_sweep_of_an_empty_area(area: StagingArea) -> None:
    assert area.sweep(0) == 0


def test_free_bytes(area: StagingArea) -> None:
    assert area.free_bytes() > 0


def test_fsync_directory(area: StagingArea, tmp_path: Path) -> None:
    fsync_directory(area.root)
    with pytest.raises(FileNotFoundError):
        fsync_directory(tmp_path / "missing")


def test_writeback_leaves_the_bytes_and_digest_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With writeback (durable archives) each WRITEBACK_CHUNK written is handed to the kernel
    for writing out, the tail at `finish`; the staged file is byte for byte the upload."""
    from hounsfield.services import staging

    real = staging._sync_file_range()
    if sys.platform.startswith("linux"):
        assert real is not None  # the C library's sync_file_range is found
    ranges: list[tuple[int, int]] = []

    def recording(fd: int, offset: int, length: int) -> None:
        ranges.append((offset, length))
        if real is not None:
            real(fd, offset, length)

    monkeypatch.setattr(staging, "_sync_file_range", lambda: recording)
    data = os.urandom(3 * staging.WRITEBACK_CHUNK + 1000)
    writer = StagingArea(tmp_path / "wb", writeback=True).writer()
    writer.write(data[:300])  # a small header first, buffered by the file object
    for start in range(300, len(data), 131066):
        writer.write(data[start : start + 131066])
    staged = writer.finish()
    assert staged.path.read_bytes() == data and staged.sha256 == sha256(data)
    assert ranges[0][0] == 0 and len(ranges) >= 3
    covered = 0
    for offset, length in ranges:  # contiguous, in order, the whole file
        assert offset == covered
        covered += length
    assert covered == len(data)


def test_no_writeback_unless_asked(area: StagingArea, monkeypatch: pytest.MonkeyPatch) -> None:
    from hounsfield.services import staging

    def fail(fd: int, offset: int, length: int) -> None:
        raise AssertionError("writeback started")

    monkeypatch.setattr(staging, "_sync_file_range", lambda: fail)
    writer = area.writer()
    writer.write(bytes(2 * staging.WRITEBACK_CHUNK))
    assert writer.finish().size == 2 * staging.WRITEBACK_CHUNK
