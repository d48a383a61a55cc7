"""Redis cache (`redis://host:6379/0?prefix=hounsfield:&ttl=86400`), shared by every process.

With several HTTP workers or replicas, one Redis holds the entries for all of them, and a
delete in one is seen by the others (`shared=True`). Reads of many keys are one MGET and
writes of many one pipeline, so the documents of a page of a series cost one round trip
each way. `prefix` (default `hounsfield:`) is put before every key, so several archives can
share a database; `ttl` (seconds, default 86400, 0 = none) is the default lifetime of an
entry. The size limit is Redis's own: set `maxmemory` and `maxmemory-policy allkeys-lru`
(README, "Scale-out: cache"). Other query parameters (socket_timeout, ...) go to redis-py;
`socket_timeout` and `socket_connect_timeout` default to 1 s here, so a Redis that stops
answering delays a request by at most that much (`services.caching` then bypasses it).
Redis Cluster is not supported (MGET across hash slots).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis

from hounsfield.adapters.cache.options import check_ttl, parse_ttl, split_options
from hounsfield.ports.cache import CacheCapabilities, CacheUnavailable

DEFAULT_PREFIX = "hounsfield:"
DEFAULT_TTL = 86400.0
#: Seconds to wait for a connection and for an answer, unless the URL says otherwise.
DEFAULT_TIMEOUT = 1.0


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise CacheUnavailable(f"redis cache: {exc}") from exc


class RedisCache:
    capabilities = CacheCapabilities(shared=True)

    def __init__(self, url: str) -> None:
        server, options = split_options(url, ("prefix", "ttl", "decode_responses"))
        if "decode_responses" in options:
            raise ValueError(
                f"cache URL {url!r}: values are bytes, decode_responses is not allowed"
            )
        self.prefix = options.get("prefix", DEFAULT_PREFIX)
        self.default_ttl = parse_ttl(options.get("ttl", str(DEFAULT_TTL)))
        self.client = redis.Redis.from_url(
            server,
            socket_timeout=DEFAULT_TIMEOUT,
            socket_connect_timeout=DEFAULT_TIMEOUT,
        )

    def _key(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str) -> bytes | None:
        with _unavailable():
            value = self.client.get(self._key(key))
        return _bytes(value)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with _unavailable():
            values = self.client.mget([self._key(k) for k in keys])
        return [_bytes(v) for v in values]

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        lifetime = check_ttl(ttl, self.default_ttl)
        with _unavailable():
            self.client.set(self._key(key), value, px=_milliseconds(lifetime))

    def set_many(self, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None) -> None:
        if not items:
            return
        px = _milliseconds(check_ttl(ttl, self.default_ttl))
        pipe = self.client.pipeline(transaction=False)
        for key, value in items:
            pipe.set(self._key(key), value, px=px)
        with _unavailable():
            pipe.execute()

    def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        with _unavailable():
            # UNLINK frees the memory in the background: a large value never stalls Redis.
            self.client.unlink(*[self._key(k) for k in keys])

    def delete_prefix(self, prefix: str) -> int:
        """SCAN (incremental, never blocks Redis like KEYS would) and UNLINK in batches."""
        pattern = _glob_escape(self._key(prefix)) + "*"
        removed = 0
        with _unavailable():
            batch: list[bytes] = []
            for key in self.client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    removed += int(self.client.unlink(*batch))
                    batch = []
            if batch:
                removed += int(self.client.unlink(*batch))
        return removed

    def close(self) -> None:
        self.client.close()


def _glob_escape(text: str) -> str:
    """Redis MATCH patterns are globs: keys may hold *, ?, [ or \\ (UIDs do not, names may)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _milliseconds(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1000))


def _bytes(value: bytes | str | None) -> bytes | None:
    """Values come back as bytes: decode_responses is refused in the URL."""
    if isinstance(value, str):
        raise TypeError("redis cache returned text; is decode_responses set?")
    return value
