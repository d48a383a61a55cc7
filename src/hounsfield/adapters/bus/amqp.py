"""RabbitMQ event bus over AMQP 0-9-1 (`amqp://guest:guest@host:5672/%2F?name=hounsfield-events`).

Events go to a durable topic exchange (routing key `<partition>.<type>`) as persistent messages
with publisher confirms, so `publish` returns only once RabbitMQ has taken responsibility for
them. Each consumer group is a durable queue bound to the exchange with `#`: RabbitMQ delivers
each message once per queue, in publish order. An unacknowledged message returns to its queue
when its channel closes (the consumer crashed) or on `nack`, flagged `redelivered`; `ack_wait`
does not apply (RabbitMQ's own consumer_timeout does). Events published before a group's queue
is declared are not in it.

pika's BlockingConnection is used because the port is synchronous; it is not thread-safe, so
publishing and consuming each have their own connection, serialised by a lock, and are
reopened after a connection error.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import pika
import pika.exceptions

from hounsfield.adapters.bus.options import check_group, split_url
from hounsfield.ports.bus import BusCapabilities, Delivery
from hounsfield.ports.index import Event
from hounsfield.services.cloudevents import MalformedEventError, decode, encode, event_id

CONTENT_TYPE = "application/cloudevents+json"


class _Channel:
    """One lazily (re)opened connection and channel."""

    def __init__(self, params: Any, exchange: str, *, confirm: bool = False) -> None:
        self.params = params
        self.exchange = exchange
        self.confirm = confirm
        self.lock = threading.Lock()
        self.connection: Any = None
        self.channel: Any = None

    def get(self) -> Any:
        if self.channel is None or not self.channel.is_open:
            self.reset()
            self.connection = pika.BlockingConnection(self.params)
            self.channel = self.connection.channel()
            self.channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            if self.confirm:
                self.channel.confirm_delivery()
        return self.channel

    def reset(self) -> None:
        if self.connection is not None and self.connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                self.connection.close()
        self.connection = self.channel = None


class AmqpBus:
    capabilities = BusCapabilities(durable=True, ordered=True, shared_groups=True)

    def __init__(self, url: str, source: str) -> None:
        broker, options = split_url(url, "hounsfield-events")
        self.exchange = options.name
        self.source = source
        params = pika.URLParameters(broker)
        self._publisher = _Channel(params, self.exchange, confirm=True)
        self._consumer = _Channel(params, self.exchange)

    def _queue(self, group: str) -> str:
        return f"{self.exchange}.{check_group(group)}"

    def publish(self, events: Sequence[Event]) -> None:
        with self._publisher.lock:
            try:
                channel = self._publisher.get()
                for event in events:
                    channel.basic_publish(
                        self.exchange,
                        f"{event.partition}.{event.type}",
                        encode(event, self.source),
                        pika.BasicProperties(
                            content_type=CONTENT_TYPE,
                            delivery_mode=pika.DeliveryMode.Persistent,
                            message_id=event_id(event),
                        ),
                    )
            except pika.exceptions.AMQPError:
                self._publisher.reset()
                raise

    def declare(self, group: str) -> None:
        queue = self._queue(group)
        with self._consumer.lock:
            channel = self._consumer.get()
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, self.exchange, routing_key="#")

    def fetch(self, group: str, max_events: int, timeout: float) -> list[Delivery]:
        queue = self._queue(group)
        end = time.monotonic() + timeout
        out: list[Delivery] = []
        with self._consumer.lock:
            try:
                channel = self._consumer.get()
                while len(out) < max_events:
                    method, _props, body = channel.basic_get(queue, auto_ack=False)
                    if method is None:
                        if out or time.monotonic() >= end:
                            break
                        self._consumer.connection.process_data_events(time_limit=0.05)
                        continue
                    try:
                        out.append(Delivery(decode(body), method.delivery_tag, method.redelivered))
                    except MalformedEventError:
                        channel.basic_reject(method.delivery_tag, requeue=False)
            except pika.exceptions.AMQPError:
                self._consumer.reset()  # unacked messages return to the queue
                raise
        return out

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        with self._consumer.lock:
            channel = self._consumer.get()
            for delivery in deliveries:
                channel.basic_ack(delivery.token)

    def nack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        with self._consumer.lock:
            channel = self._consumer.get()
            for delivery in deliveries:
                channel.basic_nack(delivery.token, requeue=True)

    def destroy(self, groups: Sequence[str] = ()) -> None:
        """Delete the exchange and the named groups' queues (tests, uninstall)."""
        with self._consumer.lock:
            channel = self._consumer.get()
            for group in groups:
                channel.queue_delete(self._queue(group))
            channel.exchange_delete(self.exchange)

    def close(self) -> None:
        for side in (self._publisher, self._consumer):
            with side.lock:
                side.reset()
