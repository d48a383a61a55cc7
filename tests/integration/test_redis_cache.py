"""The Redis cache adapter against the local server: a page of documents is one round trip
each way, an unreachable server is `CacheUnavailable` (not a hang), URL options, and
bootstrap's choice of adapter by `cache_url` (with the extra to install named when redis-py is
missing)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.connection import Connection

from hounsfield.adapters.cache.memory import MemoryCache
from hounsfield.adapters.cache.redis import DEFAULT_PREFIX, DEFAULT_TTL, RedisCache
from hounsfield.bootstrap import open_cache
from hounsfield.config import ConfigError
from hounsfield.ports.cache import CacheUnavailable
from tests.conftest import free_port, require_component
from tests.servicesupport import REDIS_URL, drop_prefix, reachable


@pytest.fixture
def prefix() -> Iterator[str]:
    require_component("Redis", reachable(REDIS_URL))
    name = f"hftest-{secrets.token_hex(6)}:"
    yield name
    drop_prefix(name)


def test_many_keys_cost_one_round_trip_each_way(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = RedisCache(f"{REDIS_URL}?prefix={prefix}")
    try:
        cache.get("warm-up")  # connect (and its handshake) before counting
        sent: list[int] = []
        original = Connection.send_packed_command

        def counting(self: Connection, command: Any, check_health: bool = True) -> None:
            sent.append(1)
            original(self, command, check_health)

        monkeypatch.setattr(Connection, "send_packed_command", counting)
        cache.set_many([(f"doc-{i}", b"x" * 2000) for i in range(300)])
        assert len(sent) == 1
        values = cache.get_many([f"doc-{i}" for i in range(300)])
        assert len(sent) == 2
        assert values == [b"x" * 2000] * 300
    finally:
        cache.close()


def test_keys_carry_the_prefix_and_the_default_ttl(prefix: str) -> None:
    cache = RedisCache(f"{REDIS_URL}?prefix={prefix}&ttl=120")
    raw = redis.Redis.from_url(REDIS_URL)
    try:
        cache.set("k", b"v")
        assert raw.get(f"{prefix}k") == b"v"
        assert 0 < int(raw.pttl(f"{prefix}k")) <= 120_000
        unlimited = RedisCache(f"{REDIS_URL}?prefix={prefix}&ttl=0")
        unlimited.set("none", b"v")
        assert raw.pttl(f"{prefix}none") == -1  # no expiry
        unlimited.close()
    finally:
        raw.close()
        cache.close()


def test_url_defaults_and_refusals() -> None:
    cache = RedisCache("redis://127.0.0.1:6379/0")
    assert (cache.prefix, cache.default_ttl) == (DEFAULT_PREFIX, DEFAULT_TTL)
    assert cache.capabilities.shared
    cache.close()
    with pytest.raises(ValueError, match="decode_responses"):
        RedisCache("redis://127.0.0.1:6379/0?decode_responses=true")
    with pytest.raises(ValueError, match="ttl"):
        RedisCache("redis://127.0.0.1:6379/0?ttl=later")


def test_an_unreachable_server_is_cache_unavailable() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(CacheUnavailable):
            cache.get("k")
        with pytest.raises(CacheUnavailable):
            cache.get_many(["k"])
        with pytest.raises(CacheUnavailable):
            cache.set_many([("k", b"v")])
        with pytest.raises(CacheUnavailable):
            cache.delete(["k"])
    finally:
        cache.close()


def test_bootstrap_opens_the_cache_of_the_url() -> None:
    assert open_cache("none://") is None
    memory = open_cache("memory://?max_bytes=1000")
    assert isinstance(memory, MemoryCache)
    assert memory.max_bytes == 1000
    remote = open_cache("redis://127.0.0.1:6379/0?prefix=x:")
    assert isinstance(remote, RedisCache)
    remote.close()
    with pytest.raises(ConfigError, match="max_bytes"):
        open_cache("memory://?max_bytes=big")
    with pytest.raises(ConfigError, match="unsupported cache URL"):
        open_cache("memcached://host")


def test_a_missing_redis_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "hounsfield.adapters.cache.redis", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'hounsfield\[redis\]'"):
        open_cache("redis://127.0.0.1:6379/0")
