"""The cache port: bytes kept by key for a while, to spare the index or the pixel pipeline.

Narrow on purpose (DESIGN.md §2 ports): get, get_many, set, set_many and delete of byte
values, with a time to live, in a store bounded by size. A cache is never authoritative: it
may drop any entry at any time (eviction, expiry, a restart), so callers build keys that
identify the exact content they stand for (`services.caching` puts a version of the instance
in every key) and treat a miss, or an unreachable cache, as "compute it again".

Adapters are chosen by URL (`cache_url`, DESIGN.md key idea 7): `memory://` (in-process LRU
bounded in bytes), `redis://` (shared by every process and replica), `none://` (no cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CacheCapabilities:
    """`shared`: entries are visible to other processes and replicas using the same URL, so a
    delete here is seen there and an entry costly to build is worth keeping (rendered frames).
    Without it, every process has its own entries and a delete only reaches this process's."""

    shared: bool = False


class CacheUnavailable(Exception):  # noqa: N818 (a condition, not a programming error)
    """The cache could not be reached or answered in time. Callers carry on without it."""


class Cache(Protocol):
    """Every method is synchronous and thread-safe; services call it from worker threads.

    `ttl` is in seconds: None applies the cache's default (the `ttl` of its URL; no expiry
    unless one is set), a positive value overrides it for that write. Entries may vanish
    before their TTL (size limit, eviction); a value larger than the cache can hold is not
    kept, which is not an error."""

    capabilities: CacheCapabilities

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of `keys`, in order, None for each one absent: one round trip for the
        lot, so a series of instances costs one request to a remote cache."""

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store or replace the value of `key`."""

    def set_many(self, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None) -> None:
        """Store or replace several values in one round trip."""

    def delete(self, keys: Sequence[str]) -> None:
        """Remove the keys; a missing key is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key that starts with `prefix` (erasing a patient's rendered images,
        whose keys hold parameters no one can enumerate); returns how many. Costs a scan of
        the keys: for rare, deliberate deletions only."""

    def close(self) -> None: ...
