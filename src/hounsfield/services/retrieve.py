"""Retrieve: stored objects, metadata documents, frames and bulk data, by ranged reads.

Nothing is parsed here: the byte ranges recorded at ingest (DESIGN.md key idea 1) make a frame
one ranged read and series metadata a concatenation of prebuilt documents, looked up in the
cache (`services.caching`) before the index when one is configured.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from hounsfield.domain.errors import NotFoundError
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.index import IndexStore, InstanceKey, StoredInstance
from hounsfield.services.caching import MetadataDocuments


class RetrieveService:
    def __init__(
        self, index: IndexStore, blobs: BlobStore, documents: MetadataDocuments | None = None
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.documents = documents
        #: Looking an instance up and reading a small range are cheap enough for the event
        #: loop: an embedded index and local files (a frame is one 31 µs pread, DESIGN.md §4;
        #: a hop to a worker thread costs more than that under load).
        self.inline_reads = index.capabilities.embedded and blobs.capabilities.local_paths

    def instances(
        self,
        partition: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
    ) -> list[StoredInstance]:
        found = self.index.instances(partition, study_uid, series_uid, sop_uid)
        if not found:
            raise NotFoundError(_what(study_uid, series_uid, sop_uid))
        return found

    def metadata(
        self,
        partition: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
    ) -> list[tuple[InstanceKey, bytes]]:
        documents = list(
            self.index.metadata(partition, study_uid, series_uid, sop_uid, cache=self.documents)
        )
        if not documents:
            raise NotFoundError(_what(study_uid, series_uid, sop_uid))
        return documents

    def object_bytes(self, instance: StoredInstance, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        return self.blobs.iter_bytes(instance.blob_key, chunk_size)

    @staticmethod
    def frames_size(instance: StoredInstance, numbers: Sequence[int]) -> int:
        """Bytes the stored frames `numbers` take (0 for numbers that do not exist)."""
        frames = instance.pixel.frames if instance.pixel is not None else []
        return sum(
            length
            for number in numbers
            if 1 <= number <= len(frames)
            for _, length in frames[number - 1]
        )

    def frame(self, instance: StoredInstance, number: int) -> list[bytes]:
        """The fragments of frame `number` (1-based, PS3.18 8.3.1.1.3); one for native data."""
        if instance.pixel is None:
            raise NotFoundError(f"instance {instance.sop_uid} has no pixel data")
        frames = instance.pixel.frames
        if not 1 <= number <= len(frames):
            raise NotFoundError(
                f"frame {number} does not exist (instance has {len(frames)} frames)"
            )
        return [self.blobs.get_range(instance.blob_key, off, n) for off, n in frames[number - 1]]

    def bulk(self, instance: StoredInstance, path: str) -> bytes:
        """A bulk data value by its path as published in the metadata ("GGGGEEEE[/i/GGGGEEEE]")."""
        location = instance.bulk_ranges.get(f"bulkdata/{path}")
        pixel = instance.pixel
        if location is None and path.upper() == "7FE00010" and pixel and not pixel.encapsulated:
            # Small native pixel data is inlined in the metadata, but stays retrievable here.
            location = (pixel.value_offset, pixel.value_length)
        if location is None:
            raise NotFoundError(f"no bulk data at {path} in instance {instance.sop_uid}")
        offset, length = location
        return self.blobs.get_range(instance.blob_key, offset, length)


def _what(study_uid: str, series_uid: str | None, sop_uid: str | None) -> str:
    if sop_uid is not None:
        return f"instance {sop_uid} not found in series {series_uid} of study {study_uid}"
    if series_uid is not None:
        return f"series {series_uid} not found in study {study_uid}"
    return f"study {study_uid} not found"
