"""The Cache contract (ports/cache.py), run against every adapter: the in-process LRU and the
local Redis (127.0.0.1:6379, or HOUNSFIELD_TEST_REDIS_URL). Redis tests skip locally without
a server and fail in CI (`require_component`). Each test works under a key prefix of its own,
removed afterwards, so the suite runs in parallel and beside other users of the server."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from hounsfield.adapters.cache.memory import MemoryCache
from hounsfield.ports.cache import Cache
from tests.conftest import require_component
from tests.servicesupport import REDIS_URL, drop_prefix, reachable

#: Opens a cache on the test's store with extra URL query parameters ("ttl=0.3").
CacheFactory = Callable[..., Cache]


def _redis_factory(prefix: str, opened: list[Cache]) -> CacheFactory:
    from hounsfield.adapters.cache.redis import RedisCache

    def factory(query: str = "") -> Cache:
        opened.append(RedisCache(f"{REDIS_URL}?prefix={prefix}" + (f"&{query}" if query else "")))
        return opened[-1]

    return factory


@pytest.fixture(params=["memory", "redis"])
def cache_factory(request: pytest.FixtureRequest) -> Iterator[CacheFactory]:
    """Several calls are several processes' views of the same store (for Redis: the same
    server and prefix; for memory, each process has its own)."""
    opened: list[Cache] = []
    if request.param == "memory":

        def factory(query: str = "") -> Cache:
            opened.append(MemoryCache.from_url("memory://" + (f"?{query}" if query else "")))
            return opened[-1]

        yield factory
        for cache in opened:
            cache.close()
        return
    require_component("Redis", reachable(REDIS_URL))
    prefix = f"hftest-{secrets.token_hex(6)}:"
    try:
        yield _redis_factory(prefix, opened)
    finally:
        for cache in opened:
            cache.close()
        drop_prefix(prefix)


@pytest.fixture
def cache(cache_factory: CacheFactory) -> Cache:
    return cache_factory()


def test_a_missing_key_is_none(cache: Cache) -> None:
    assert cache.get("absent") is None
    assert cache.get_many(["absent", "also-absent"]) == [None, None]
    assert cache.get_many([]) == []


def test_values_are_returned_byte_for_byte(cache: Cache) -> None:
    binary = bytes(range(256)) * 40
    cache.set("binary", binary)
    cache.set("empty", b"")
    assert cache.get("binary") == binary
    assert cache.get("empty") == b""  # an empty value is a hit, not a miss


def test_get_many_answers_in_order_with_gaps(cache: Cache) -> None:
    cache.set_many([(f"k{i}", f"value {i}".encode()) for i in range(0, 300, 2)])
    keys = [f"k{i}" for i in range(300)]
    assert cache.get_many(keys) == [
        f"value {i}".encode() if i % 2 == 0 else None for i in range(300)
    ]
    cache.set_many([])  # nothing to do is not an error


def test_set_replaces_a_value(cache: Cache) -> None:
    cache.set("k", b"first")
    cache.set("k", b"second")
    cache.set_many([("k", b"third")])
    assert cache.get("k") == b"third"


def test_delete_removes_only_the_named_keys(cache: Cache) -> None:
    cache.set_many([("a", b"1"), ("b", b"2"), ("c", b"3")])
    cache.delete(["a", "c", "never-set"])
    cache.delete([])
    assert cache.get_many(["a", "b", "c"]) == [None, b"2", None]


def _expires(cache: Cache, key: str, within: float = 1.5) -> bool:
    """Whether `key` disappears within `within` seconds (polled, never a fixed long sleep)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if cache.get(key) is None:
            return True
        time.sleep(0.05)
    return cache.get(key) is None


def test_an_entry_expires_after_its_ttl(cache: Cache) -> None:
    cache.set("short", b"v", ttl=0.3)
    cache.set_many([("short-many", b"v")], ttl=0.3)
    cache.set("lasting", b"v")
    assert cache.get("short") == b"v"
    assert _expires(cache, "short")
    assert _expires(cache, "short-many")
    assert cache.get("lasting") == b"v"


def test_the_url_ttl_is_the_default_and_a_write_can_override_it(
    cache_factory: CacheFactory,
) -> None:
    cache = cache_factory("ttl=0.3")
    cache.set("default", b"v")
    cache.set("longer", b"v", ttl=60)
    assert cache.get("default") == b"v"
    assert _expires(cache, "default")
    assert cache.get("longer") == b"v"


@pytest.mark.parametrize("ttl", [0, -1])
def test_a_ttl_must_be_positive(cache: Cache, ttl: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        cache.set("k", b"v", ttl=ttl)
    with pytest.raises(ValueError, match="positive"):
        cache.set_many([("k", b"v")], ttl=ttl)


def test_the_shared_capability_says_whether_other_processes_see_entries(
    cache_factory: CacheFactory,
) -> None:
    here, there = cache_factory(), cache_factory()
    here.set("k", b"v")
    assert (there.get("k") == b"v") is here.capabilities.shared
    if here.capabilities.shared:
        there.delete(["k"])
        assert here.get("k") is None


def test_threads_share_one_cache(cache: Cache) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                cache.set(f"t{n}-{i}", f"{n}:{i}".encode())
                assert cache.get(f"t{n}-{i}") == f"{n}:{i}".encode()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert cache.get_many([f"t{n}-49" for n in range(4)]) == [f"{n}:49".encode() for n in range(4)]


def test_delete_prefix_removes_exactly_the_keys_under_it(cache: Cache) -> None:
    for key in ("r:p:1.2:a", "r:p:1.2:b", "r:p:1.20:a", "r:p:1.2*x", "m:p:1.2"):
        cache.set(key, key.encode())
    assert cache.delete_prefix("r:p:1.2:") == 2
    assert cache.get_many(["r:p:1.2:a", "r:p:1.2:b"]) == [None, None]
    assert cache.get("r:p:1.20:a") == b"r:p:1.20:a"
    assert cache.delete_prefix("r:p:1.2*") == 1  # a glob character is matched literally
    assert cache.get("r:p:1.20:a") == b"r:p:1.20:a"
    assert cache.get("m:p:1.2") == b"m:p:1.2"
    assert cache.delete_prefix("nothing:") == 0
