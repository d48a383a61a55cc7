"""Paging loops shared by the SQL index adapters: the back ends differ in how they read one
page, not in how pages follow each other."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from hounsfield.ports.index import DocumentCache, InstanceKey

T = TypeVar("T")


#: One listed instance: primary key, where it sits, and the version of its stored content.
Listed = tuple[int, InstanceKey, str]


def document_version(sha256: str, created_at: object) -> str:
    """The version of an instance's stored content (`ports.index.DocumentCache`): the hash of
    its bytes and the creation time of its row, which a delete and a new store change."""
    return f"{sha256}@{created_at}"


def with_documents(
    fetch: Callable[[Sequence[int]], dict[int, bytes]],
    listing: Sequence[Listed],
    size: int,
    cache: DocumentCache | None = None,
) -> Iterator[tuple[InstanceKey, bytes]]:
    """Yield listed instances with their documents, `size` at a time, so a large study is never
    held in memory; rows deleted since the listing are skipped. With a `cache`, a page's
    documents are looked up there in one call and only the missing ones are fetched (and then
    handed to the cache)."""
    for start in range(0, len(listing), size):
        part = listing[start : start + size]
        if cache is None:
            cached: list[bytes | None] = [None] * len(part)
        else:
            cached = cache.get_many([(key, version) for _, key, version in part])
        missing = [
            pk for (pk, _, _), document in zip(part, cached, strict=True) if document is None
        ]
        found = fetch(missing) if missing else {}
        page: list[tuple[InstanceKey, bytes]] = []
        fresh: list[tuple[InstanceKey, str, bytes]] = []
        for (pk, key, version), hit in zip(part, cached, strict=True):
            document = hit if hit is not None else found.get(pk)
            if document is None:
                continue  # deleted since the listing
            if hit is None:
                fresh.append((key, version, document))
            page.append((key, document))
        if cache is not None and fresh:
            cache.set_many(fresh)
        yield from page


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
