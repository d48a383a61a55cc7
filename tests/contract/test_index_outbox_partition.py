"""`IndexStore.events_since(..., partition=)` on every index adapter: a change feed page of one
partition is never shortened or filled by another partition's events (key idea 6)."""

from __future__ import annotations

from hounsfield.ports.index import Event, IndexStore


def test_events_since_filters_by_partition_and_pages_by_sequence(index: IndexStore) -> None:
    index.commit([], [Event("t", "a" if n % 3 else "b", {"n": n}) for n in range(1, 31)])
    every = index.events_since(0, 100)
    assert len(every) == 30
    only_b = index.events_since(0, 100, partition="b")
    assert [e.data["n"] for e in only_b] == list(range(3, 31, 3))
    assert {e.partition for e in only_b} == {"b"}
    # Paging by sequence: limit counts this partition's events only.
    first = index.events_since(0, 4, partition="b")
    second = index.events_since(first[-1].seq, 4, partition="b")
    assert [e.data["n"] for e in first + second] == [3, 6, 9, 12, 15, 18, 21, 24]
    assert index.events_since(every[-1].seq, 10, partition="a") == []
    assert index.events_since(0, 10, partition="nobody") == []
