"""Where the external services of the tests listen (Redis, RabbitMQ, NATS JetStream on this
machine; HOUNSFIELD_TEST_REDIS_URL, _AMQP_URL and _NATS_URL override), whether one answers,
and removal of a Redis key prefix a test worked under."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

BUS_URLS = {
    "redis": os.environ.get("HOUNSFIELD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "amqp": os.environ.get("HOUNSFIELD_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    "nats": os.environ.get("HOUNSFIELD_TEST_NATS_URL", "nats://127.0.0.1:4222"),
}
REDIS_URL = BUS_URLS["redis"]


def reachable(url: str) -> bool:
    """True when something accepts a TCP connection at the URL's host and port within 1 s."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1):
            return True
    except OSError:
        return False


def drop_prefix(prefix: str) -> None:
    """Delete every Redis key under `prefix`."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()
