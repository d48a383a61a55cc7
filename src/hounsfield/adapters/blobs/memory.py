"""Blobs in process memory: for tests and throw-away archives (`memory://`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from hounsfield.ports.blobs import BlobCapabilities, BlobStat


class MemoryBlobStore:
    capabilities = BlobCapabilities(local_paths=False)

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put_file(self, key: str, staged: Path, *, durable: bool = True) -> None:
        data = staged.read_bytes()
        staged.unlink(missing_ok=True)
        with self._lock:
            if key in self._blobs:
                raise FileExistsError(f"blob {key!r} already exists")
            self._blobs[key] = data

    def make_durable(self, keys: Sequence[str]) -> None:
        """Nothing to sync (memory is as durable as it gets), but a missing key is an error, as
        in every store: the caller believes it wrote it."""
        for key in keys:
            self._get(key)

    def _get(self, key: str) -> bytes:
        with self._lock:
            try:
                return self._blobs[key]
            except KeyError:
                raise FileNotFoundError(f"blob {key!r} does not exist") from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self._get(key)[offset : offset + length]

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        data = self._get(key)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(key, None)

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self._blobs

    def stat(self, key: str) -> BlobStat:
        return BlobStat(size=len(self._get(key)))

    def keys(self) -> Iterator[str]:
        with self._lock:
            snapshot = list(self._blobs)
        yield from snapshot
