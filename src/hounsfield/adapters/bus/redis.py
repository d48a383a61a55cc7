"""Redis Streams event bus (`redis://host:6379/0?name=hounsfield-events&ack_wait=30`).

One stream holds every event (XADD, trimmed to about `maxlen` entries); each consumer group is
a Redis consumer group, so events are delivered once per group and in stream order. A fetched
entry stays in the group's pending list until XACK; entries idle for `ack_wait` seconds (their
consumer crashed or nacked them) are taken over with XAUTOCLAIM by the next fetch of any
member. Durability is Redis's: with the default RDB snapshots an acknowledged XADD can be lost
in a Redis crash; run Redis with `appendonly yes` (README, "Events").
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Sequence
from typing import Any

import redis

from hounsfield.adapters.bus.options import check_group, split_url
from hounsfield.ports.bus import BusCapabilities, Delivery
from hounsfield.ports.index import Event
from hounsfield.services.cloudevents import MalformedEventError, decode, encode

log = logging.getLogger(__name__)

_FIELD = b"ce"


class RedisStreamBus:
    capabilities = BusCapabilities(durable=True, ordered=True, shared_groups=True)

    def __init__(self, url: str, source: str) -> None:
        broker, options = split_url(url, "hounsfield-events")
        self.stream = options.name
        self.ack_wait_ms = int(options.ack_wait * 1000)
        self.maxlen = options.maxlen or None
        self.source = source
        self.client = redis.Redis.from_url(broker)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(
                self.stream,
                {_FIELD: encode(event, self.source)},
                maxlen=self.maxlen,
                approximate=True,
            )
        pipe.execute()

    def declare(self, group: str) -> None:
        try:
            self.client.xgroup_create(self.stream, check_group(group), id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _deliveries(self, group: str, entries: list[Any], redelivered: bool) -> list[Delivery]:
        out: list[Delivery] = []
        poison: list[bytes] = []
        for entry in entries:
            if not entry or entry[1] is None:  # trimmed while pending
                continue
            entry_id, fields = entry
            try:
                out.append(Delivery(decode(fields[_FIELD]), entry_id, redelivered))
            except (MalformedEventError, KeyError) as exc:
                log.warning("dropping malformed stream entry %s: %s", entry_id, exc)
                poison.append(entry_id)
        if poison:
            self.client.xack(self.stream, group, *poison)
        return out

    def fetch(self, group: str, max_events: int, timeout: float) -> list[Delivery]:
        try:
            return self._fetch(check_group(group), max_events, timeout)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        self.declare(group)  # the stream was deleted or never declared: start from now
        return self._fetch(group, max_events, timeout)

    def _fetch(self, group: str, max_events: int, timeout: float) -> list[Delivery]:
        end = time.monotonic() + timeout
        while True:
            claimed: Any = self.client.xautoclaim(
                self.stream, group, self.consumer, self.ack_wait_ms, "0-0", count=max_events
            )
            if claimed[1]:
                found = self._deliveries(group, claimed[1], True)
                if found:
                    return found
            remaining = end - time.monotonic()
            block = int(min(max(remaining, 0.0), 0.5) * 1000)
            read: Any = self.client.xreadgroup(
                group, self.consumer, {self.stream: ">"}, count=max_events, block=block or None
            )
            if read:
                found = self._deliveries(group, read[0][1], False)
                if found:
                    return found
            if time.monotonic() >= end:
                return []

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self.client.xack(self.stream, group, *(d.token for d in deliveries))

    def nack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        """Mark the entries idle for longer than ack_wait: the next fetch reclaims them."""
        if deliveries:
            self.client.xclaim(
                self.stream,
                group,
                self.consumer,
                0,
                [d.token for d in deliveries],
                idle=self.ack_wait_ms + 1,
            )

    def destroy(self) -> None:
        """Delete the stream and its groups (tests, uninstall)."""
        self.client.delete(self.stream)

    def close(self) -> None:
        self.client.close()
