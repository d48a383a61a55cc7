"""Adapters chosen by URL (DESIGN.md key idea 7): index, blobs, bus and cache. Optional
clients are imported only when a URL asks for them, and their absence is a configuration
error naming the extra to install."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

from hounsfield.adapters.blobs.file import FileBlobStore
from hounsfield.adapters.blobs.memory import MemoryBlobStore
from hounsfield.adapters.index.sqlite.store import SqliteIndex
from hounsfield.config import ConfigError
from hounsfield.ports.blobs import BlobStore
from hounsfield.ports.bus import EventBus
from hounsfield.ports.cache import Cache
from hounsfield.ports.index import IndexStore


def _path_from_url(url: str, scheme: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme != scheme:
        raise ConfigError(f"expected a {scheme}:// URL, got {url!r}")
    return Path(unquote((parsed.netloc or "") + parsed.path))


def open_index(url: str, *, durable: bool = True, migrate: bool = True) -> IndexStore:
    if url.startswith("sqlite://"):
        path = _path_from_url(url, "sqlite")
        path.parent.mkdir(parents=True, exist_ok=True)
        index = SqliteIndex(path, durable=durable)
        index.migrate()
        return index
    if url.startswith(POSTGRES_SCHEMES):
        return _open_postgres(url, durable=durable, migrate=migrate)
    raise ConfigError(
        f"unsupported index URL {url!r} (supported: sqlite:///path, postgresql://host/db)"
    )


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _open_postgres(url: str, *, durable: bool, migrate: bool) -> IndexStore:
    """The PostgreSQL index, migrated (safe from every replica at start-up: an advisory lock
    serialises them) or, with `migrate=False`, checked to be up to date, for deployments that
    migrate in a separate step. psycopg is an optional dependency (DESIGN.md key idea 7):
    without it, say which extra to install."""
    try:
        from hounsfield.adapters.index.postgres import PostgresIndex
    except ImportError as exc:
        if exc.name not in ("psycopg", "psycopg_pool"):
            raise
        raise ConfigError(
            "a postgresql:// index URL needs the PostgreSQL driver (psycopg 3): "
            "pip install 'hounsfield[postgresql]'"
        ) from exc
    index = PostgresIndex.from_url(url, durable=durable)
    try:
        if migrate:
            index.migrate()
        elif (pending := index.pending_migrations()) > 0:
            raise ConfigError(
                f"the index schema lacks {pending} migration(s) and index_migrate is false:"
                " run `hounsfield migrate` first"
            )
    except BaseException:
        index.close()
        raise
    return index


OBJECT_STORE_SCHEMES = ("s3://", "gs://", "az://")


def open_blobs(url: str) -> BlobStore:
    if url.startswith("file://"):
        return FileBlobStore(_path_from_url(url, "file"))
    if url.startswith("memory://"):
        return MemoryBlobStore()
    if url.startswith(OBJECT_STORE_SCHEMES):
        return _open_object_blobs(url)
    raise ConfigError(
        f"unsupported blob URL {url!r} "
        "(supported: file:///path, memory://, s3://bucket/prefix, gs://bucket/prefix, "
        "az://container/prefix)"
    )


def _open_object_blobs(url: str) -> BlobStore:
    """Object storage is an optional dependency (obstore): imported only when a URL asks for it,
    and its absence is a configuration error that says what to install."""
    try:
        from hounsfield.adapters.blobs.objectstore import open_object_blobs
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("obstore"):
            raise
        raise ConfigError(
            f"blob URL {url!r} needs the optional object storage support: "
            "pip install 'hounsfield[s3]' (obstore; it serves s3://, gs:// and az://)"
        ) from None
    try:
        return open_object_blobs(url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


_BUS_ADAPTERS = {
    # scheme: (module, class, extra, the client's top-level module)
    "redis": ("hounsfield.adapters.bus.redis", "RedisStreamBus", "redis", "redis"),
    "rediss": ("hounsfield.adapters.bus.redis", "RedisStreamBus", "redis", "redis"),
    "amqp": ("hounsfield.adapters.bus.amqp", "AmqpBus", "amqp", "pika"),
    "amqps": ("hounsfield.adapters.bus.amqp", "AmqpBus", "amqp", "pika"),
    "nats": ("hounsfield.adapters.bus.nats", "NatsJetStreamBus", "nats", "nats"),
    "tls": ("hounsfield.adapters.bus.nats", "NatsJetStreamBus", "nats", "nats"),
}


def bus_opener(url: str, source: str) -> Callable[[], EventBus]:
    """A function that connects to the bus of `url`. The adapter module is imported now, so a
    missing optional client is a start-up error naming the extra (DESIGN.md key idea 7); the
    connection is made later, by the relay, so an unreachable broker only delays events."""
    scheme = urlparse(url).scheme
    if scheme == "inprocess":
        from hounsfield.adapters.bus.inprocess import InProcessBus

        shared = InProcessBus()  # the relay and the consumers of this process share it
        return lambda: shared
    if scheme not in _BUS_ADAPTERS:
        raise ConfigError(
            f"unsupported bus URL {url!r} (supported: inprocess://, redis://, amqp://, nats://)"
        )
    module_name, class_name, extra, client = _BUS_ADAPTERS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != client:
            raise
        raise ConfigError(
            f"bus URL {url!r} needs the optional {client} client: pip install 'hounsfield[{extra}]'"
        ) from None
    adapter = getattr(module, class_name)

    def open_bus() -> EventBus:
        try:
            bus: EventBus = adapter(url, source)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return bus

    return open_bus


def open_cache(url: str) -> Cache | None:
    """The cache of `cache_url`, or None for none://. redis-py is an optional dependency:
    without it, say which extra to install (DESIGN.md key idea 7)."""
    scheme = urlparse(url).scheme
    try:
        if scheme == "none":
            return None
        if scheme == "memory":
            from hounsfield.adapters.cache.memory import MemoryCache

            return MemoryCache.from_url(url)
        if scheme in ("redis", "rediss"):
            try:
                from hounsfield.adapters.cache.redis import RedisCache
            except ModuleNotFoundError as exc:
                if exc.name is None or exc.name.split(".")[0] != "redis":
                    raise
                raise ConfigError(
                    f"cache URL {url!r} needs the optional redis client: "
                    "pip install 'hounsfield[redis]'"
                ) from None
            return RedisCache(url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    raise ConfigError(f"unsupported cache URL {url!r} (supported: memory://, redis://, none://)")
