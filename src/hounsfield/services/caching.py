"""What the archive keeps in the `Cache` port, and under which keys.

Metadata documents (WADO-RS metadata, PS3.18 10.4.1.1.2): the prebuilt per-instance DICOM JSON
(DESIGN.md key idea 1) is read by the index's `metadata` iterator, which asks this cache first.
An entry is keyed by partition and SOP Instance UID; its value starts with the version of the
instance's content the document was built from (`ports.index.DocumentCache`: the SHA-256 of
its bytes and the creation time of its index row), and a lookup whose listed version differs
is a miss. So an instance deleted and stored again with other content (or with the same bytes
under another `bulk_data_threshold`) is never answered with the earlier document, even by a
process that missed the delete; and DELETE, which knows the UIDs but not the versions, can
still remove the entries (`LifecycleService`).

Rendered outputs (the hook for rendered frames, thumbnails and other derived pixels):
`RenderedOutputs` keys an entry by partition, SOP Instance UID, the SHA-256 of the stored
object and a `variant` naming everything else the output depends on (frame, window, size,
media type, renderer version). Renderings depend only on the stored bytes, so the hash is an
exact identity; their many variants cannot be listed at DELETE, so they are left to expire
(the cache's TTL and size bound) and can never be served for other content.

A cache is never authoritative and never required: when it cannot be reached, lookups are
misses and writes are dropped, and it is left alone for `retry_after` seconds so a dead cache
costs a request at most one timeout per period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from hounsfield.ports.cache import Cache, CacheUnavailable
from hounsfield.ports.index import InstanceKey, StoredInstance

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds to leave an unreachable cache alone before trying it again.
RETRY_AFTER = 5.0


class _Guarded:
    """Calls to a cache that turn its unavailability into a miss, logged once per period."""

    def __init__(
        self,
        cache: Cache,
        *,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _call(self, action: Callable[[], T], fallback: T) -> T:
        if self._clock() < self._down_until:
            return fallback
        try:
            return action()
        except CacheUnavailable as exc:
            with self._lock:
                if self._clock() >= self._down_until:
                    log.warning(
                        "cache unavailable, going without it for %.0f s: %s", self.retry_after, exc
                    )
                    self._down_until = self._clock() + self.retry_after
            return fallback


def document_key(partition: str, sop_uid: str) -> str:
    """The cache key of an instance's metadata document. Partition names and UIDs never hold
    ':' (`domain.identifiers`), so keys of different partitions cannot collide."""
    return f"md:{partition}:{sop_uid}"


class MetadataDocuments(_Guarded):
    """Per-instance metadata documents, for `IndexStore.metadata(..., cache=...)`; it
    implements `ports.index.DocumentCache`."""

    def __init__(
        self,
        cache: Cache,
        *,
        ttl: float | None = None,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(cache, retry_after=retry_after, clock=clock)
        self.ttl = ttl

    def get_many(self, entries: Sequence[tuple[InstanceKey, str]]) -> list[bytes | None]:
        keys = [document_key(key.partition, key.sop_uid) for key, _ in entries]
        misses: list[bytes | None] = [None] * len(keys)
        values = self._call(lambda: self.cache.get_many(keys), misses)
        return [
            _unwrap(value, version) for value, (_, version) in zip(values, entries, strict=True)
        ]

    def set_many(self, entries: Sequence[tuple[InstanceKey, str, bytes]]) -> None:
        items = [
            (document_key(key.partition, key.sop_uid), _wrap(version, document))
            for key, version, document in entries
        ]
        self._call(lambda: self.cache.set_many(items, ttl=self.ttl), None)

    def forget(self, partition: str, sop_uids: Sequence[str]) -> None:
        """Remove the documents of deleted instances (PS3.18 DELETE, `LifecycleService`)."""
        keys = [document_key(partition, uid) for uid in sop_uids]
        if keys:
            self._call(lambda: self.cache.delete(keys), None)


def _wrap(version: str, document: bytes) -> bytes:
    return version.encode() + b"\n" + document


def _unwrap(value: bytes | None, version: str) -> bytes | None:
    """The document of `value` when it was built from `version`, else None (a miss)."""
    if value is None:
        return None
    tag = version.encode() + b"\n"
    return value[len(tag) :] if value.startswith(tag) else None


class RenderedOutputs(_Guarded):
    """The hook for rendered outputs: a renderer looks an output up with `get` before
    computing it and keeps it with `put` (see the module docstring for the keys)."""

    def __init__(
        self,
        cache: Cache,
        *,
        ttl: float | None = None,
        max_value_bytes: int = 4 << 20,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(cache, retry_after=retry_after, clock=clock)
        self.ttl = ttl
        #: Larger outputs are not kept: they would evict many small, frequently used ones.
        self.max_value_bytes = max_value_bytes

    @staticmethod
    def key(instance: StoredInstance, variant: str) -> str:
        """Keyed under the study, so that erasing a patient drops a study's outputs with one
        prefix deletion (`forget_study`) whatever rendering parameters were asked for."""
        return (
            f"r:{instance.partition}:{instance.study_uid}:{instance.sop_uid}"
            f":{instance.sha256}:{variant}"
        )

    def forget_study(self, partition: str, study_uid: str) -> int:
        """Drop every cached output of a study; returns how many. Raises CacheUnavailable
        when the cache cannot be reached: an erasure must not pass over it silently."""
        return self.cache.delete_prefix(f"r:{partition}:{study_uid}:")

    def get(self, instance: StoredInstance, variant: str) -> bytes | None:
        return self._call(lambda: self.cache.get(self.key(instance, variant)), None)

    def put(self, instance: StoredInstance, variant: str, output: bytes) -> None:
        if len(output) <= self.max_value_bytes:
            key = self.key(instance, variant)
            self._call(lambda: self.cache.set(key, output, ttl=self.ttl), None)
