"""The outbox relay and the consumer side of the event bus (DESIGN.md key idea 4).

Events are committed to the index outbox in the transaction that causes them; the relay copies
them to the configured bus. It publishes a batch, waits for the broker to accept it, and only
then advances its position, so a crash re-publishes at most one batch: delivery is
at-least-once and consumers deduplicate by CloudEvents id (`Deduplicator`).

The position and the right to relay are a lease in the index (`IndexRelayPosition`, ADR 0012):
of all the processes of all the replicas on one index, exactly one relays at a time, and the
others take over when it stops renewing. Earlier versions kept the position in a file under
data_dir (`RelayPosition`), which is read once on upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

import orjson

from hounsfield.ports.bus import Delivery, EventBus
from hounsfield.ports.index import Event, IndexStore
from hounsfield.services.cloudevents import event_id

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no relay lock, one process per data_dir
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class RelayPosition:
    """The last outbox sequence number the broker has accepted, in `path`, for one index.

    The file records the index URL with the number: pointing the archive at another index (a
    fresh database) starts again from the beginning instead of silently skipping its events.
    """

    def __init__(self, path: Path, index_url: str, *, durable: bool = True) -> None:
        self.path = path
        self.index_url = index_url
        self.durable = durable
        self._lock_file: IO[bytes] | None = None

    def load(self) -> int:
        try:
            doc = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return 0
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning(
                "unreadable relay position %s (%s): relaying from the start", self.path, exc
            )
            return 0
        if not isinstance(doc, dict) or doc.get("index_url") != self.index_url:
            return 0
        seq = doc.get("seq")
        return seq if isinstance(seq, int) and seq >= 0 else 0

    def save(self, seq: int) -> None:
        """Write-then-rename, so a crash leaves the old position or the new one, never half."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as f:
            f.write(orjson.dumps({"index_url": self.index_url, "seq": seq}))
            if self.durable:
                f.flush()
                os.fsync(f.fileno())
        tmp.replace(self.path)

    def try_lock(self) -> bool:
        """Become the relay of this data_dir unless another process is (non-blocking)."""
        if self._lock_file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.with_name(self.path.name + ".lock").open("ab")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
        self._lock_file = handle
        return True

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None


class LeaseLostError(RuntimeError):
    """Another process took over the relay: this one must stop and reload."""


class IndexRelayPosition:
    """The relay's position and leadership kept in the index (a named lease), shared by every
    process of every replica on that index: exactly one relays at a time, whatever data_dir
    each has, and a new process continues from where the last one stopped instead of
    relaying the outbox again from the start. The holder renews the lease at each poll; a
    holder that dies lets it expire after `lease_seconds`, and another process takes over.

    `legacy` is the position file of versions that kept it under data_dir: adopted once, when
    the index has no position yet, so that upgrading does not re-publish every event.
    """

    NAME = "outbox-relay"

    def __init__(
        self,
        index: IndexStore,
        owner: str,
        *,
        lease_seconds: float = 30.0,
        legacy: RelayPosition | None = None,
    ) -> None:
        self.index = index
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.legacy = legacy
        self._position: int | None = None

    def try_lock(self) -> bool:
        position = self.index.claim_lease(self.NAME, self.owner, self.lease_seconds)
        self._position = position
        return position is not None

    def load(self) -> int:
        position = self._position or 0
        if position == 0 and self.legacy is not None:
            return self.legacy.load()
        return position

    def save(self, seq: int) -> None:
        if not self.index.advance_lease(self.NAME, self.owner, seq):
            raise LeaseLostError("another process took over the outbox relay")
        self._position = seq

    def unlock(self) -> None:
        self.index.release_lease(self.NAME, self.owner)
        self._position = None


class Position(Protocol):
    """Where the relay stands and whether this process is the one relaying."""

    def try_lock(self) -> bool: ...

    def load(self) -> int: ...

    def save(self, seq: int) -> None: ...

    def unlock(self) -> None: ...


class OutboxRelay:
    """Copies outbox events to the bus, in sequence order, at least once."""

    def __init__(
        self, index: IndexStore, bus: EventBus, position: Position, batch: int = 500
    ) -> None:
        self.index = index
        self.bus = bus
        self.position = position
        self.batch = batch
        self._seq: int | None = None

    def relay_once(self) -> int:
        """Publish the next batch; return how many events were published (0: caught up)."""
        if self._seq is None:
            self._seq = self.position.load()
        events = self.index.events_since(self._seq, self.batch)
        if not events:
            return 0
        self.bus.publish(events)
        self.position.save(events[-1].seq)
        self._seq = events[-1].seq
        return len(events)

    def drain(self) -> int:
        """Relay until caught up (tests, `hounsfield` one-shot commands)."""
        total = 0
        while count := self.relay_once():
            total += count
        return total


class Deduplicator:
    """Remembers the ids of the last `capacity` handled events, so that a redelivered event is
    acknowledged without being handled twice. A high-water mark of `seq` would not do: after a
    failed event is nacked, later events may be handled first, and the failed one must still
    be handled when it comes back. Memory-only: consumers whose effects must be exactly-once
    across restarts make the effect itself idempotent (webhook receivers dedupe by id)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, event: Event) -> bool:
        with self._lock:
            return event_id(event) in self._seen

    def mark(self, event: Event) -> None:
        with self._lock:
            self._seen[event_id(event)] = None
            self._seen.move_to_end(event_id(event))
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)


def consume_once(
    bus: EventBus,
    group: str,
    handler: Callable[[Event], None],
    dedupe: Deduplicator,
    *,
    max_events: int = 100,
    timeout: float = 1.0,
) -> int:
    """Fetch one batch, handle each new event, ack the handled and the duplicates, nack the
    failed (the bus delivers them again). Returns the number of deliveries fetched."""
    deliveries = bus.fetch(group, max_events, timeout)
    done: list[Delivery] = []
    failed: list[Delivery] = []
    for delivery in deliveries:
        if dedupe.seen(delivery.event):
            done.append(delivery)
            continue
        try:
            handler(delivery.event)
        except Exception:
            log.exception("consumer %s failed on event %s", group, event_id(delivery.event))
            failed.append(delivery)
        else:
            dedupe.mark(delivery.event)
            done.append(delivery)
    if done:
        bus.ack(group, done)
    if failed:
        bus.nack(group, failed)
    return len(deliveries)


def consume(
    bus: EventBus,
    group: str,
    handler: Callable[[Event], None],
    stop: threading.Event,
    dedupe: Deduplicator | None = None,
    *,
    max_events: int = 100,
) -> None:
    """Run a consumer until `stop` is set (in a thread: the bus port is synchronous). Slow
    handlers (webhooks with retries) take small batches, so that fetched events are not held
    past the bus's ack_wait and redelivered to another member meanwhile."""
    dedupe = dedupe or Deduplicator()
    bus.declare(group)
    while not stop.is_set():
        try:
            consume_once(bus, group, handler, dedupe, max_events=max_events, timeout=0.5)
        except Exception:
            log.exception("consumer %s: bus error; retrying", group)
            stop.wait(1.0)


async def run_relay(
    index: IndexStore,
    open_bus: Callable[[], EventBus],
    position: Position,
    *,
    poll_seconds: float = 0.5,
    retry_seconds: float = 5.0,
) -> None:
    """The relay as a background task of `hounsfield serve` and `hounsfield worker`: wait
    for the relay lock (`IndexRelayPosition`: one relaying process per index), open the bus
    (lazily, so an unreachable broker delays events but never stops the archive), then relay
    forever. Broker errors close the bus and retry; the outbox keeps the events."""
    bus: EventBus | None = None
    relay: OutboxRelay | None = None
    try:
        while True:
            try:
                if not await asyncio.to_thread(position.try_lock):
                    relay = None  # another process relays; reload the position on take-over
                    await asyncio.sleep(retry_seconds)
                    continue
                if bus is None:
                    bus = await asyncio.to_thread(open_bus)
                if relay is None:
                    relay = OutboxRelay(index, bus, position)
                published = await asyncio.to_thread(relay.relay_once)
                if published < relay.batch:
                    await asyncio.sleep(poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event relay failed; retrying in %.0f s", retry_seconds)
                if bus is not None:
                    with contextlib.suppress(Exception):
                        bus.close()
                bus = relay = None
                await asyncio.sleep(retry_seconds)
    finally:
        if bus is not None:
            with contextlib.suppress(Exception):
                bus.close()
        with contextlib.suppress(Exception):
            position.unlock()  # brief; an await here could be cancelled again


async def run_consumer(
    open_bus: Callable[[], EventBus],
    group: str,
    handler: Callable[[Event], None],
    *,
    max_events: int = 100,
    retry_seconds: float = 5.0,
) -> None:
    """A consumer group member as a background task of `hounsfield serve` (webhooks): the
    blocking loop runs in a thread; cancelling the task stops it within one fetch."""
    stop = threading.Event()
    try:
        while not stop.is_set():
            try:
                bus = await asyncio.to_thread(open_bus)
                await asyncio.to_thread(
                    functools.partial(consume, max_events=max_events),
                    bus,
                    group,
                    handler,
                    stop,
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer %s failed; retrying in %.0f s", group, retry_seconds)
                await asyncio.sleep(retry_seconds)
    finally:
        stop.set()
