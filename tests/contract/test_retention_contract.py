"""Retention (services/erasure.RetentionService) over every index adapter: studies unchanged
for longer than their partition's period are deleted with their blobs; others, and
partitions without a period, are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hounsfield.adapters.blobs.memory import MemoryBlobStore
from hounsfield.ports.index import IndexStore
from hounsfield.services.erasure import RetentionPolicy, RetentionService
from hounsfield.services.lifecycle import LifecycleService
from tests.factories import make_new_instance as make


def test_expired_studies_are_deleted_per_partition(index: IndexStore) -> None:
    blobs = MemoryBlobStore()
    instances = [make(partition=p) for p in ("research", "research", "clinical")]
    index.begin(instances)
    index.commit(instances, [])
    retention = RetentionService(
        index, LifecycleService(index, blobs), RetentionPolicy.parse(("research=30",))
    )
    assert retention.apply_once(datetime.now(UTC)) == 0  # nothing is 30 days old yet
    later = datetime.now(UTC) + timedelta(days=31)
    assert index.studies_unchanged_since("research", later, 10) != []
    assert retention.apply_once(later, limit=1) == 1  # in batches
    assert retention.apply_once(later) == 1
    assert retention.apply_once(later) == 0
    assert index.studies_unchanged_since("research", later, 10) == []
    assert [s.partition for s in index.stats() if s.studies] == ["clinical"]


@pytest.mark.parametrize("entry", ["research", "=30", "research=0", "research=x"])
def test_bad_policies_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=r"not <partition>=<days>|at least 1 day"):
        RetentionPolicy.parse((entry,))
