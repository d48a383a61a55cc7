"""The event bus port: at-least-once delivery of outbox events to named consumer groups.

The outbox relay (services/events.py) publishes every committed event; consumers (webhooks,
forwarding, AI triggers...) read them through a *group*. Each group sees every event published
after it was declared, once per group however many processes read it, in publish order except
for redeliveries. An event that is fetched and not acknowledged (the consumer crashed, or called
`nack`) is delivered again, so handlers must be idempotent: `services.events.Deduplicator`
drops repeats by CloudEvents id. The port is synchronous like the index port: services call it
from worker threads, and adapters of asyncio-only clients (NATS) run their own loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hounsfield.ports.index import Event


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivered event. `token` is the adapter's handle for ack/nack (a stream entry id,
    an AMQP delivery tag, a JetStream message); `redelivered` says the broker knows it has
    delivered this event before (not every broker can tell)."""

    event: Event
    token: Any
    redelivered: bool = False


@dataclass(frozen=True, slots=True)
class BusCapabilities:
    """What a broker guarantees; the contract suite checks exactly these."""

    #: Events survive a broker restart once `publish` has returned.
    durable: bool = True
    #: A group receives events in publish order (first deliveries; redeliveries may interleave).
    ordered: bool = True
    #: Several buses (processes) may share one group.
    shared_groups: bool = True


class EventBus(Protocol):
    capabilities: BusCapabilities

    def publish(self, events: Sequence[Event]) -> None:
        """Publish in order; when this returns the broker has accepted (persisted) all of them.
        On error some may have been published: the relay publishes them again."""

    def declare(self, group: str) -> None:
        """Create the consumer group if it does not exist (idempotent). A group receives the
        events published after its creation."""

    def fetch(self, group: str, max_events: int, timeout: float) -> list[Delivery]:
        """Up to `max_events` deliveries for the group, waiting at most `timeout` seconds for
        the first one. Includes redeliveries of events not acknowledged in time."""

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        """The events are handled: never deliver them to this group again."""

    def nack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        """Handling failed: deliver the events again (soon, to any member of the group)."""

    def close(self) -> None: ...
