"""An in-process LRU cache bounded in bytes (`memory://?max_bytes=67108864&ttl=0`).

The default cache: it spares the index a read per document in a single process and costs no
setup. Entries are private to the process (`shared=False`): with several HTTP workers or
replicas each keeps its own, so use `redis://` to share them. The bound counts the bytes of
keys and values (Python's per-object overhead comes on top, about 100 bytes an entry).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from hounsfield.adapters.cache.options import check_ttl, parse_ttl, split_options
from hounsfield.ports.cache import CacheCapabilities

#: The bound when the URL gives none: 64 MiB, a few thousand CT metadata documents.
DEFAULT_MAX_BYTES = 64 << 20


class MemoryCache:
    capabilities = CacheCapabilities(shared=False)

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        default_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache max_bytes must not be negative, got {max_bytes}")
        self.max_bytes = max_bytes
        self.default_ttl = default_ttl
        self._clock = clock
        # key -> (value, expiry on the monotonic clock); least recently used first.
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> MemoryCache:
        rest, options = split_options(url, ("max_bytes", "ttl"))
        if rest not in ("memory://", "memory:"):
            raise ValueError(f"cache URL {url!r}: memory:// takes only max_bytes and ttl")
        raw = options.get("max_bytes", str(DEFAULT_MAX_BYTES))
        try:
            max_bytes = int(raw)
        except ValueError:
            raise ValueError(f"cache max_bytes {raw!r} is not a number of bytes") from None
        return cls(max_bytes, parse_ttl(options.get("ttl")))

    @property
    def size(self) -> int:
        """Bytes of keys and values held now (at most `max_bytes`)."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: str) -> bytes | None:
        now = self._clock()
        with self._lock:
            return self._get(key, now)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        with self._lock:
            return [self._get(key, now) for key in keys]

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self.set_many([(key, value)], ttl=ttl)

    def set_many(self, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None) -> None:
        lifetime = check_ttl(ttl, self.default_ttl)
        expires = math.inf if lifetime is None else self._clock() + lifetime
        with self._lock:
            for key, value in items:
                self._remove(key)  # a value too large to keep must not leave the old one
                cost = len(key) + len(value)
                if cost > self.max_bytes:
                    continue
                self._entries[key] = (bytes(value), expires)
                self._bytes += cost
            while self._bytes > self.max_bytes:
                key, (value, _) = self._entries.popitem(last=False)
                self._bytes -= len(key) + len(value)

    def delete(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._remove(key)

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            for key in doomed:
                self._remove(key)
        return len(doomed)

    def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _get(self, key: str, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if now >= expires:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return value

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(key) + len(entry[0])
