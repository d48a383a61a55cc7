"""Staging: uploads are written to a local file while their SHA-256 is computed.

Memory stays bounded whatever the size of the upload: bytes go straight to disk in the order
they arrive, and the object is never rewritten afterwards (DESIGN.md key idea 1).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A complete upload on local disk."""

    path: Path
    size: int
    sha256: str


class StagingWriter:
    """Receives one object's bytes in chunks; `finish` returns the staged file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("xb")
        self._hash = hashlib.sha256()
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, chunk: bytes | memoryview) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self._size += len(chunk)

    def finish(self) -> StagedFile:
        self._file.close()
        return StagedFile(self.path, self._size, self._hash.hexdigest())

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class StagingArea:
    """A directory of in-flight uploads; leftovers from a crash are removed by `sweep`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def writer(self) -> StagingWriter:
        return StagingWriter(self.root / f"{uuid.uuid4().hex}.part")

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
