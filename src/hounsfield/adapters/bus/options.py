"""Bus URL options: Hounsfield's own query parameters are taken out of the broker URL, the
rest is passed to the client library unchanged (like `schema` in PostgreSQL index URLs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True, slots=True)
class BusOptions:
    #: Stream (Redis key, JetStream stream) or exchange name.
    name: str
    #: Seconds before a fetched, unacknowledged event is delivered again.
    ack_wait: float
    #: Redis and JetStream: maximum stream length kept (0 = unbounded); Redis trims
    #: approximately. RabbitMQ keeps what each group's queue has not consumed.
    maxlen: int


def split_url(url: str, default_name: str) -> tuple[str, BusOptions]:
    parts = urlsplit(url)
    keep: list[tuple[str, str]] = []
    name, ack_wait, maxlen = default_name, 30.0, 1_000_000
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "name":
            name = value
        elif key == "ack_wait":
            ack_wait = float(value)
        elif key == "maxlen":
            maxlen = int(value)
        else:
            keep.append((key, value))
    if not _NAME.match(name):
        raise ValueError(f"bus name {name!r}: use letters, digits, '_' and '-'")
    if ack_wait <= 0:
        raise ValueError(f"bus ack_wait must be positive, got {ack_wait}")
    broker = urlunsplit(parts._replace(query=urlencode(keep)))
    return broker, BusOptions(name, ack_wait, maxlen)


def check_group(group: str) -> str:
    """Group names become queue, consumer-group and durable-consumer names on every broker."""
    if not _NAME.match(group):
        raise ValueError(f"consumer group {group!r}: use letters, digits, '_' and '-'")
    return group
