"""What the archive keeps in its cache (services/caching.py): metadata documents answered only
for the version they were built from, removal by UID, the rendered-output hook, and a cache
that cannot be reached turning into misses for a while instead of failed requests."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hounsfield.adapters.cache.memory import MemoryCache
from hounsfield.ports.cache import CacheCapabilities, CacheUnavailable
from hounsfield.ports.index import InstanceKey, StoredInstance
from hounsfield.services.caching import MetadataDocuments, RenderedOutputs, document_key

KEY = InstanceKey("default", "1.2.3", "1.2.3.4", "1.2.3.4.5")


def test_a_document_is_answered_only_for_its_version() -> None:
    documents = MetadataDocuments(MemoryCache())
    other = InstanceKey("other", "1.2.3", "1.2.3.4", "1.2.3.4.5")  # same UID, other partition
    documents.set_many([(KEY, "sha-a@1", b'{"a": 1}')])
    assert documents.get_many([(KEY, "sha-a@1"), (KEY, "sha-b@2"), (other, "sha-a@1")]) == [
        b'{"a": 1}',
        None,  # the instance was stored again: the earlier document is a miss
        None,
    ]
    documents.set_many([(KEY, "sha-b@2", b'{"b": 2}')])
    assert documents.get_many([(KEY, "sha-a@1"), (KEY, "sha-b@2")]) == [None, b'{"b": 2}']


def test_forget_removes_documents_by_uid() -> None:
    cache = MemoryCache()
    documents = MetadataDocuments(cache)
    documents.set_many([(KEY, "v", b"{}")])
    documents.forget("default", [KEY.sop_uid, "9.9.9"])
    documents.forget("default", [])
    assert cache.get(document_key("default", KEY.sop_uid)) is None
    assert documents.get_many([(KEY, "v")]) == [None]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class DownCache:
    """A cache whose server is gone: every call fails, and is counted."""

    capabilities = CacheCapabilities(shared=True)

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self) -> None:
        self.calls += 1
        raise CacheUnavailable("connection refused")

    def get(self, key: str) -> bytes | None:
        self._fail()
        return None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self._fail()
        return []

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._fail()

    def set_many(self, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None) -> None:
        self._fail()

    def delete(self, keys: Sequence[str]) -> None:
        self._fail()

    def close(self) -> None:
        pass


def test_an_unreachable_cache_is_a_miss_and_is_left_alone_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, down = Clock(), DownCache()
    documents = MetadataDocuments(down, retry_after=5, clock=clock)
    assert documents.get_many([(KEY, "v"), (KEY, "w")]) == [None, None]
    documents.set_many([(KEY, "v", b"{}")])
    documents.forget("default", [KEY.sop_uid])
    assert down.calls == 1  # after the first failure, nothing is tried for 5 s
    assert sum("cache unavailable" in r.getMessage() for r in caplog.records) == 1
    clock.now = 5
    assert documents.get_many([(KEY, "v")]) == [None]
    assert down.calls == 2


def _instance(sha256: str) -> StoredInstance:
    return StoredInstance(
        partition="default",
        study_uid=KEY.study_uid,
        series_uid=KEY.series_uid,
        sop_uid=KEY.sop_uid,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        blob_key="k",
        size=1,
        sha256=sha256,
        pixel=None,
        bulk_ranges={},
        number_of_frames=1,
    )


def test_rendered_outputs_are_keyed_by_the_stored_bytes_and_the_variant() -> None:
    rendered = RenderedOutputs(MemoryCache(), max_value_bytes=100)
    first, restored = _instance("aa"), _instance("bb")
    rendered.put(first, "frame=1;jpeg;q=90", b"JPEG")
    assert rendered.get(first, "frame=1;jpeg;q=90") == b"JPEG"
    assert rendered.get(first, "frame=2;jpeg;q=90") is None
    assert rendered.get(restored, "frame=1;jpeg;q=90") is None  # other content, other key
    rendered.put(first, "big", b"x" * 101)
    assert rendered.get(first, "big") is None  # larger than max_value_bytes: not kept
    assert RenderedOutputs(DownCache()).get(first, "frame=1;jpeg;q=90") is None
