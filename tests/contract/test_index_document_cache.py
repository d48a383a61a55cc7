"""`IndexStore.metadata(..., cache=)` against every index adapter: pages of documents are
looked up in the cache first and only misses are read, and the version an adapter lists for an
instance changes when the instance is deleted and stored again, so a cached document of the
earlier content is never answered (ports/index.py `DocumentCache`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hounsfield.ports.index import IndexStore, InstanceKey, NewInstance
from tests.factories import make_new_instance as make
from tests.factories import new_uid


class RecordingCache:
    """A DocumentCache in a dict, keyed by (SOP Instance UID, version), that records calls."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], bytes] = {}
        self.lookups: list[int] = []

    def get_many(self, entries: Sequence[tuple[InstanceKey, str]]) -> list[bytes | None]:
        self.lookups.append(len(entries))
        return [self.entries.get((key.sop_uid, version)) for key, version in entries]

    def set_many(self, entries: Sequence[tuple[InstanceKey, str, bytes]]) -> None:
        for key, version, document in entries:
            self.entries[(key.sop_uid, version)] = document


def store(index: IndexStore, *instances: NewInstance) -> None:
    index.begin(instances)
    index.commit(instances, [])


def series_of(count: int) -> list[NewInstance]:
    study, series = new_uid(), new_uid()
    return [make(study_uid=study, series_uid=series, InstanceNumber=n + 1) for n in range(count)]


def test_documents_are_read_once_then_answered_by_the_cache(index: IndexStore) -> None:
    instances = series_of(3)
    store(index, *instances)
    cache = RecordingCache()
    study = instances[0].study_uid

    first = [doc for _, doc in index.metadata("default", study, cache=cache)]
    assert first == [i.metadata for i in instances]
    assert cache.lookups == [3]  # one lookup for the page
    assert sorted(cache.entries.values()) == sorted(i.metadata for i in instances)

    for entry in cache.entries:  # prove the next answer comes from the cache
        cache.entries[entry] = b'{"cached": "' + entry[0].encode() + b'"}'
    again = [(key.sop_uid, doc) for key, doc in index.metadata("default", study, cache=cache)]
    assert again == [(i.sop_uid, b'{"cached": "' + i.sop_uid.encode() + b'"}') for i in instances]


def test_only_missing_documents_are_read_and_order_is_kept(index: IndexStore) -> None:
    instances = series_of(4)
    store(index, *instances)
    cache = RecordingCache()
    study = instances[0].study_uid
    list(index.metadata("default", study, cache=cache))
    evicted = instances[1].sop_uid
    cache.entries = {k: v for k, v in cache.entries.items() if k[0] != evicted}
    documents = [doc for _, doc in index.metadata("default", study, cache=cache)]
    assert documents == [i.metadata for i in instances]
    assert {sop for sop, _ in cache.entries} == {i.sop_uid for i in instances}


def test_a_series_larger_than_a_page_is_looked_up_page_by_page(index: IndexStore) -> None:
    instances = series_of(300)
    store(index, *instances)
    cache = RecordingCache()
    listed = [
        key.sop_uid for key, _ in index.metadata("default", instances[0].study_uid, cache=cache)
    ]
    assert listed == [i.sop_uid for i in instances]
    assert sum(cache.lookups) == 300
    assert len(cache.lookups) < 300  # batched, not one lookup per instance


def test_a_deleted_and_stored_again_instance_has_a_new_version(index: IndexStore) -> None:
    [original] = series_of(1)
    store(index, original)
    cache = RecordingCache()
    key = (original.study_uid, original.series_uid, original.sop_uid)
    assert [d for _, d in index.metadata("default", *key, cache=cache)] == [original.metadata]
    [(_, first_version)] = cache.entries

    index.delete("default", *key)
    changed = make(
        study_uid=original.study_uid,
        series_uid=original.series_uid,
        sop_uid=original.sop_uid,
        PatientName="Other^Content",
    )
    assert changed.metadata != original.metadata and changed.sha256 != original.sha256
    store(index, changed)
    assert [d for _, d in index.metadata("default", *key, cache=cache)] == [changed.metadata]

    # The same bytes stored again (their document may be built differently, e.g. under
    # another bulk_data_threshold) still get a version of their own.
    index.delete("default", *key)
    rebuilt = dataclasses.replace(changed, metadata=b'{"rebuilt": true}')
    store(index, rebuilt)
    assert [d for _, d in index.metadata("default", *key, cache=cache)] == [rebuilt.metadata]
    versions = {version for _, version in cache.entries}
    assert len(versions) == 3 and first_version in versions
