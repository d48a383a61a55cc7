"""Integrity checks: every indexed object against its bytes, and the bytes against the index."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.index import IndexStore, StoredInstance


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # "missing", "size", "sha256", "orphan"
    key: str
    detail: str


class IntegrityService:
    def __init__(self, index: IndexStore, blobs: BlobStore) -> None:
        self.index = index
        self.blobs = blobs

    def verify(self, instance: StoredInstance) -> Problem | None:
        """Re-read the object and compare size and SHA-256 with what ingest recorded."""
        key = instance.blob_key
        if not self.blobs.exists(key):
            return Problem("missing", key, "indexed but not in the blob store")
        digest = hashlib.sha256()
        size = 0
        for chunk in self.blobs.iter_bytes(key):
            digest.update(chunk)
            size += len(chunk)
        if size != instance.size:
            return Problem("size", key, f"{size} bytes stored, {instance.size} recorded")
        if digest.hexdigest() != instance.sha256:
            return Problem("sha256", key, "content differs from the recorded SHA-256")
        return None

    def instances(self) -> Iterator[StoredInstance]:
        return self.index.all_instances()

    def derived_keys(self) -> set[str]:
        """Blob keys of derived copies (HTJ2K): referenced by the index, not orphans."""
        return set(self.index.derived_blob_keys())

    def orphans(self, indexed_keys: set[str], is_staging: Callable[[str], bool]) -> list[Problem]:
        """Blobs that no index row references (left by a crash during delete)."""
        return [
            Problem("orphan", key, "in the blob store but not indexed")
            for key in self.blobs.keys()
            if key not in indexed_keys and not is_staging(key)
        ]
