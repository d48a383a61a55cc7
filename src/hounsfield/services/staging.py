"""Staging: uploads are written to a local file while their SHA-256 is computed.

Memory stays bounded whatever the size of the upload: bytes go straight to disk in the order
they arrive, and the object is never rewritten afterwards (DESIGN.md key idea 1).

With `writeback` (durable archives), the kernel is asked to start writing each part of the file
to disk as soon as it is written (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does
not wait and guarantees nothing), so the disk works while the rest of the upload arrives and
the fsync that makes the stored blob durable (`BlobStore.make_durable`, docs/adr/0002) finds
little data left to write. The staged file becomes the blob by a hard link, so the pages
written back are the blob's. Durability itself still comes only from that fsync.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: Bytes written before their writeback is started: a few PDUs, so one call covers several.
WRITEBACK_CHUNK = 256 * 1024
_SYNC_FILE_RANGE_WRITE = 2


@cache
def _sync_file_range() -> Callable[[int, int, int], None] | None:
    """`sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE)` from the C library on
    Linux (the os module does not expose it), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int

    def start_writeback(fd: int, offset: int, length: int) -> None:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # a failure only loses the hint

    return start_writeback


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A complete upload on local disk."""

    path: Path
    size: int
    sha256: str


class StagingWriter:
    """Receives one object's bytes in chunks; `finish` returns the staged file."""

    def __init__(self, path: Path, *, writeback: bool = False) -> None:
        self.path = path
        self._file = path.open("xb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._writeback = _sync_file_range() if writeback else None
        self._written_back = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, chunk: bytes | memoryview) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self._size += len(chunk)
        if self._writeback is not None and self._size - self._written_back >= WRITEBACK_CHUNK:
            self._start_writeback()

    def _start_writeback(self) -> None:
        """Start writing what is written so far to disk (see the module docstring)."""
        assert self._writeback is not None
        self._file.flush()
        self._writeback(self._file.fileno(), self._written_back, self._size - self._written_back)
        self._written_back = self._size

    def finish(self) -> StagedFile:
        if self._writeback is not None and self._size > self._written_back:
            self._start_writeback()
        self._file.close()
        return StagedFile(self.path, self._size, self._hash.hexdigest())

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class StagingArea:
    """A directory of in-flight uploads; leftovers from a crash are removed by `sweep`."""

    def __init__(self, root: Path, *, writeback: bool = False) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.writeback = writeback

    def writer(self) -> StagingWriter:
        return StagingWriter(self.root / f"{uuid.uuid4().hex}.part", writeback=self.writeback)

    def stage_copy(self, source: Path) -> StagedFile:
        """Copy a local file into staging (the import command's path); hashing as it copies."""
        writer = self.writer()
        try:
            with source.open("rb") as f:
                while chunk := f.read(1 << 20):
                    writer.write(chunk)
        except BaseException:
            writer.discard()
            raise
        return writer.finish()

    def stage_bytes(self, data: bytes) -> StagedFile:
        writer = self.writer()
        writer.write(data)
        return writer.finish()

    def sweep(self, older_than_seconds: float) -> int:
        """Delete staged files older than the cut-off; return how many were removed."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self.root.glob("*.part"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    @staticmethod
    def discard(staged: StagedFile) -> None:
        staged.path.unlink(missing_ok=True)


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
