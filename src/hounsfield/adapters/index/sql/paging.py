"""Paging loops shared by the SQL index adapters: the back ends differ in how they read one
page, not in how pages follow each other."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def with_documents(
    fetch: Callable[[Sequence[int]], dict[int, bytes]],
    listing: Sequence[tuple[int, T]],
    size: int,
) -> Iterator[tuple[T, bytes]]:
    """Yield listed rows with their documents, fetching `size` documents at a time, so a large
    study is never held in memory; rows deleted since the listing are skipped."""
    for start in range(0, len(listing), size):
        part = listing[start : start + size]
        found = fetch([pk for pk, _ in part])
        for pk, row in part:
            document = found.get(pk)
            if document is not None:
                yield row, document


def keyset(fetch_page: Callable[[int], Sequence[tuple[int, T]]], size: int) -> Iterator[T]:
    """Every row in primary key order, one page (`fetch_page(after_pk)`, at most `size` rows)
    at a time, each page in its own read."""
    after = 0
    while True:
        page = fetch_page(after)
        for _, row in page:
            yield row
        if len(page) < size:
            return
        after = page[-1][0]
