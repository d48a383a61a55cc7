"""The worklist/MPPS store shared by several processes (HTTP and DIMSE workers): creating and
changing an item are atomic. Each writer here has its own SQLite connection to one file, as a
process would, so the database's locking (not the store's in-process lock) is what is tested."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hounsfield.adapters.worklist.sqlite import SqliteWorklistStore
from hounsfield.domain.model import DicomJson
from hounsfield.domain.mpps import MppsError
from hounsfield.ports.worklist import WorklistItem
from hounsfield.services.mpps import MppsService

WRITERS = 6


def together(path: Path, work: Callable[[SqliteWorklistStore], object]) -> list[object]:
    """Run `work` once per writer, all released at the same moment; what each returned."""
    stores = [SqliteWorklistStore(path, table="mpps") for _ in range(WRITERS)]
    barrier = threading.Barrier(WRITERS)
    results: list[object] = [None] * WRITERS

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(stores[index])
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    return results


def in_progress() -> DicomJson:
    return {"00400252": {"vr": "CS", "Value": ["IN PROGRESS"]}}


def test_of_concurrent_creates_exactly_one_succeeds(tmp_path: Path) -> None:
    item = WorklistItem("default", "1.2.3", in_progress())
    results = together(tmp_path / "w.db", lambda store: store.create(item))
    assert sorted(results, key=str) == [False] * (WRITERS - 1) + [True]


def test_concurrent_changes_are_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    first = SqliteWorklistStore(path, table="mpps")
    assert first.create(WorklistItem("default", "1.2.3", {"counter": {"vr": "IS", "Value": [0]}}))

    def bump(dataset: DicomJson) -> DicomJson:
        value = dataset["counter"]["Value"][0]
        return {"counter": {"vr": "IS", "Value": [value + 1]}}

    def twenty(store: SqliteWorklistStore) -> None:
        for _ in range(20):
            store.modify("default", "1.2.3", bump)

    assert together(path, twenty) == [None] * WRITERS
    found = first.get("default", "1.2.3")
    assert found is not None and found.dataset["counter"]["Value"] == [20 * WRITERS]
    first.close()


def test_a_failed_change_writes_nothing(tmp_path: Path) -> None:
    store = SqliteWorklistStore(tmp_path / "w.db", table="mpps")
    store.create(WorklistItem("default", "1", in_progress()))

    def refuse(dataset: DicomJson) -> DicomJson:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        store.modify("default", "1", refuse)
    found = store.get("default", "1")
    assert found is not None and found.dataset == in_progress()
    assert store.modify("default", "2", refuse) is None  # no such item: `change` never runs
    store.put(WorklistItem("default", "1", {}))  # the store is still writable
    store.close()


def test_two_n_creates_of_one_instance_answer_0111_once(tmp_path: Path) -> None:
    """PS3.7 10.1.5.1.6: the second N-CREATE of an MPPS instance is a Duplicate SOP Instance,
    even when both arrive at once on different associations (or DIMSE workers)."""
    results = together(
        tmp_path / "w.db",
        lambda store: MppsService(store).create("default", "1.2.3", in_progress()),
    )
    refused = [r for r in results if isinstance(r, MppsError)]
    assert results.count(None) == 1
    assert len(refused) == WRITERS - 1 and {r.status for r in refused} == {0x0111}
