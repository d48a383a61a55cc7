"""Abort and delete of more instances than one `IN (?, ...)` list holds, on every index adapter.

SQLite bounds the parameters of a statement, so its lists are split (sql/dialect.py
`Dialect.in_list`); PostgreSQL binds one array. Either way every row goes and the counts of
the parents stay exact (PS3.4 C.3.4).
"""

from __future__ import annotations

from hounsfield.adapters.index.sql.dialect import IN_LIST
from hounsfield.domain.model import Level
from hounsfield.ports.index import BeginOutcome, IndexStore
from tests.factories import make_new_instance as make
from tests.factories import new_uid


def test_abort_drops_more_pending_rows_than_one_list(index: IndexStore) -> None:
    pending = [make() for _ in range(IN_LIST + 1)]
    index.begin(pending)
    index.abort("default", [inst.sop_uid for inst in pending])
    assert set(index.begin(pending[-2:])) == {BeginOutcome.NEW}  # the pending rows are gone


def test_delete_of_more_instances_than_one_list_keeps_counts_exact(index: IndexStore) -> None:
    study, big, small = new_uid(), new_uid(), new_uid()
    many = [make(study_uid=study, series_uid=big) for _ in range(IN_LIST + 1)]
    few = [make(study_uid=study, series_uid=small, modality="MR") for _ in range(2)]
    index.begin(many + few)
    index.commit(many + few, [])

    deleted = index.delete("default", study, big)
    assert deleted.instances == len(many)
    assert sorted(deleted.blob_keys) == sorted(inst.blob_key for inst in many)
    assert not index.level_exists("default", Level.SERIES, big)
    [stats] = index.stats()
    assert (stats.studies, stats.series, stats.instances) == (1, 1, len(few))

    assert index.delete("default", study).instances == len(few)
    assert index.stats() == []
