"""The in-process LRU cache (`memory://`): bounded in bytes, least recently used first out,
TTL on its own clock, and its URL options."""

from __future__ import annotations

import pytest

from hounsfield.adapters.cache.memory import DEFAULT_MAX_BYTES, MemoryCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_least_recently_used_entries_leave_first_when_the_bound_is_reached() -> None:
    cache = MemoryCache(max_bytes=400)
    for name in "abcd":
        cache.set(name, b"x" * 99)  # 100 bytes with the key: the cache is full
    assert cache.size == 400
    assert cache.get("a") == b"x" * 99  # "a" is now the most recently used
    cache.set("e", b"y" * 99)
    assert cache.get("b") is None  # the least recently used went
    cache.set("f", b"z" * 149)  # 150 bytes: two more must go, oldest first (c, d)
    assert cache.get_many(["a", "b", "c", "d", "e", "f"]) == [
        b"x" * 99,
        None,
        None,
        None,
        b"y" * 99,
        b"z" * 149,
    ]
    assert cache.size == 350
    assert len(cache) == 3


def test_a_value_larger_than_the_bound_is_not_kept_and_drops_the_old_one() -> None:
    cache = MemoryCache(max_bytes=100)
    cache.set("k", b"small")
    cache.set("k", b"x" * 200)
    assert cache.get("k") is None  # never the earlier value for the key
    assert cache.size == 0


def test_replacing_and_deleting_keep_the_byte_count_exact() -> None:
    cache = MemoryCache(max_bytes=1000)
    cache.set("k", b"x" * 100)
    cache.set("k", b"x" * 10)
    assert cache.size == 11
    cache.delete(["k", "absent"])
    assert cache.size == 0
    assert len(cache) == 0


def test_ttl_follows_the_clock_and_expired_entries_are_dropped() -> None:
    clock = Clock()
    cache = MemoryCache(max_bytes=1000, default_ttl=10, clock=clock)
    cache.set("default", b"v")
    cache.set("short", b"v", ttl=1)
    clock.now += 1
    assert cache.get_many(["default", "short"]) == [b"v", None]
    assert len(cache) == 1  # the expired entry no longer counts against the bound
    clock.now += 9
    assert cache.get("default") is None
    assert cache.size == 0


def test_url_options() -> None:
    cache = MemoryCache.from_url("memory://?max_bytes=1234&ttl=5")
    assert (cache.max_bytes, cache.default_ttl) == (1234, 5)
    default = MemoryCache.from_url("memory://")
    assert (default.max_bytes, default.default_ttl) == (DEFAULT_MAX_BYTES, None)
    assert MemoryCache.from_url("memory://?ttl=0").default_ttl is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory://?max_bytes=lots", "max_bytes"),
        ("memory://?max_bytes=-1", "max_bytes"),
        ("memory://?ttl=soon", "ttl"),
        ("memory://?ttl=-1", "ttl"),
        ("memory://?size=1", "takes only"),
        ("memory://somewhere", "takes only"),
    ],
)
def test_bad_url_options_are_named(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MemoryCache.from_url(url)
