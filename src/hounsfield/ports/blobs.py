"""The blob store port: the untouched bytes of every stored object.

Narrow on purpose (like Orthanc's IStorageArea): whole-object put from a local staging file,
ranged reads for frames and bulk data, delete, exists and stat. Keys are opaque strings built
by the services from partition and UIDs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BlobStat:
    size: int


@dataclass(frozen=True, slots=True)
class BlobCapabilities:
    """`local_paths`: blobs are files that can be read by path (zero-copy sendfile, mmap)."""

    local_paths: bool = False


class BlobStore(Protocol):
    capabilities: BlobCapabilities

    def put_file(self, key: str, staged: Path, *, durable: bool = True) -> None:
        """Move a fully written local file into the store under `key`, replacing nothing: an
        existing key is an error. With `durable`, the bytes are on stable storage on return.
        The staged file is consumed (moved or deleted)."""

    def make_durable(self, keys: Sequence[str]) -> None:
        """Put objects written with `durable=False` on stable storage, all at once: a batch
        shares the cost of syncing the directories it wrote to (docs/adr/0002-durability.md)."""

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Read `length` bytes from `offset` (short only at end of object)."""

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream the whole object in chunks; memory stays bounded by `chunk_size`."""

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error (deletes are retried)."""

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> BlobStat: ...

    def keys(self) -> Iterator[str]:
        """Every key in the store (for orphan sweeps and checks)."""
