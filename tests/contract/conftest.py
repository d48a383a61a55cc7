"""Fixtures of the port contract suites: each suite runs against every adapter of its port.

`index_factory` yields an `IndexHarness` per index adapter. A PostgreSQL adapter joins by
adding a parameter (and skipping via `require_component` when no server is available).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.ports.index import IndexStore


@dataclass
class IndexHarness:
    """Opens fresh, migrated, empty indexes and second handles on the same storage; closes
    them all at the end of the test."""

    name: str
    _open: Callable[[str], IndexStore]
    _fresh: Callable[[], str]
    _opened: list[tuple[str, IndexStore]] = field(default_factory=list)

    def __call__(self) -> IndexStore:
        location = self._fresh()
        index = self._open(location)
        index.migrate()
        self._opened.append((location, index))
        return index

    def reopen(self, index: IndexStore) -> IndexStore:
        """Another handle on the storage of `index`, as a restarted process would open it."""
        location = next(loc for loc, opened in self._opened if opened is index)
        again = self._open(location)
        again.migrate()
        self._opened.append((location, again))
        return again

    def discard(self, index: IndexStore) -> None:
        """Close one index now (property tests open one per example)."""
        self._opened = [(loc, opened) for loc, opened in self._opened if opened is not index]
        index.close()

    def close_all(self) -> None:
        for _, index in reversed(self._opened):
            index.close()
        self._opened.clear()


def _sqlite(tmp_path: Path) -> IndexHarness:
    counter = itertools.count()
    return IndexHarness(
        "sqlite",
        lambda location: SqliteIndex(location, durable=False),
        lambda: str(tmp_path / f"index-{next(counter)}.db"),
    )


@pytest.fixture(params=["sqlite"])
def index_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexHarness]:
    harness = {"sqlite": _sqlite}[request.param](tmp_path)
    try:
        yield harness
    finally:
        harness.close_all()


@pytest.fixture
def index(index_factory: IndexHarness) -> IndexStore:
    return index_factory()
