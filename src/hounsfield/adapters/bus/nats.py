"""NATS JetStream event bus (`nats://host:4222?name=hounsfield-events&ack_wait=30`).

Events are published to the subject `<name>.<partition>` of a file-backed stream named
`<name>` (keeping the last `maxlen` messages, default 1,000,000, fixed when the stream is
created), awaiting JetStream's PubAck, with `Nats-Msg-Id` set to the CloudEvents id so that
JetStream drops a re-published event inside its duplicate window (a relay crash between
publish and saving its position). Each consumer group is a durable pull consumer with explicit
acks, delivering from the moment it is created; a message not acked within `ack_wait` seconds,
or nacked, is delivered again (in stream order for first deliveries).

nats-py is asyncio-only and the port is synchronous, so the adapter runs one private event
loop in a daemon thread and submits every call to it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.js import api

from hounsfield.adapters.bus.options import check_group, split_url
from hounsfield.ports.bus import BusCapabilities, Delivery
from hounsfield.ports.index import Event
from hounsfield.services.cloudevents import MalformedEventError, decode, encode, event_id

T = TypeVar("T")


class NatsJetStreamBus:
    capabilities = BusCapabilities(durable=True, ordered=True, shared_groups=True)

    def __init__(self, url: str, source: str, *, connect_timeout: float = 5.0) -> None:
        broker, options = split_url(url, "hounsfield-events")
        self.stream = options.name
        self.subject = options.name
        self.ack_wait = options.ack_wait
        self.maxlen = options.maxlen
        self.source = source
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-bus", daemon=True)
        self._thread.start()
        self._subs: dict[str, Any] = {}
        try:
            self._nc = self._run(
                nats.connect(
                    broker, connect_timeout=int(connect_timeout), max_reconnect_attempts=3
                ),
                connect_timeout * 2,
            )
            self._js = self._nc.jetstream()
            self._run(self._ensure_stream(), connect_timeout)
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _ensure_stream(self) -> None:
        try:
            await self._js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(
                name=self.stream,
                subjects=[f"{self.subject}.>"],
                storage=api.StorageType.FILE,
                duplicate_window=120.0,
                max_msgs=self.maxlen or -1,
            )

    async def _publish(self, events: Sequence[Event]) -> None:
        for event in events:
            await self._js.publish(
                f"{self.subject}.{event.partition}",
                encode(event, self.source),
                stream=self.stream,
                headers={"Nats-Msg-Id": event_id(event)},
            )

    def publish(self, events: Sequence[Event]) -> None:
        if events:
            self._run(self._publish(events))

    async def _declare(self, group: str) -> Any:
        try:
            await self._js.consumer_info(self.stream, group)
        except nats.js.errors.NotFoundError:
            await self._js.add_consumer(
                self.stream,
                api.ConsumerConfig(
                    durable_name=group,
                    deliver_policy=api.DeliverPolicy.NEW,
                    ack_policy=api.AckPolicy.EXPLICIT,
                    ack_wait=self.ack_wait,
                    filter_subject=f"{self.subject}.>",
                ),
            )
        if group not in self._subs:
            self._subs[group] = await self._js.pull_subscribe_bind(
                durable=group, stream=self.stream
            )
        return self._subs[group]

    def declare(self, group: str) -> None:
        self._run(self._declare(check_group(group)))

    async def _fetch(self, group: str, max_events: int, timeout: float) -> list[Delivery]:
        sub = self._subs.get(group) or await self._declare(group)
        try:
            messages = await sub.fetch(max_events, timeout=max(timeout, 0.01))
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        out: list[Delivery] = []
        for msg in messages:
            try:
                event = decode(msg.data)
            except MalformedEventError:
                await msg.term()
                continue
            out.append(Delivery(event, msg, msg.metadata.num_delivered > 1))
        return out

    def fetch(self, group: str, max_events: int, timeout: float) -> list[Delivery]:
        return self._run(self._fetch(check_group(group), max_events, timeout), timeout + 30)

    async def _settle(self, deliveries: Sequence[Delivery], ok: bool) -> None:
        for delivery in deliveries:
            if ok:
                await delivery.token.ack_sync()
            else:
                await delivery.token.nak()
        await self._nc.flush()

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self._run(self._settle(deliveries, True))

    def nack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self._run(self._settle(deliveries, False))

    def destroy(self) -> None:
        """Delete the stream and its consumers (tests, uninstall)."""
        self._run(self._js.delete_stream(self.stream))

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._nc.close(), 10)
        finally:
            self._stop_loop()
